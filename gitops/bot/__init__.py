"""The pull-request bot: plans on pull requests, drift PRs, revert PRs, commit statuses.

Shell layer, report phase (issue 7; DESIGN sections 1 and 4). It talks to a forge only through
``gitops.forge.base.Forge`` and to git only through ``gitops.gitrepo`` (never ``git`` itself).
The decisions are pure functions in their own modules, tested without a network:

``markers``   hidden HTML-comment markers that let the bot find its own comments and PR bodies
``plans``     the sticky plan comment's body (truncated truthfully), per-cluster plan statuses
``driftpr``   which findings to report (persistence, acknowledgement), the drift file and body
``revert``    which pools to pin back after a halt, and the minimal edit of the cluster files
``deploy``    the per-cluster deployment status of the fleet revision in force
``links``     web addresses of a repository's files on each platform

The effects live in ``prplan`` (``gitops plan --pr`` and the controller's sweep of open pull
requests) and ``service`` (the controller's collaborator, called once per reconcile from the
report phase). Nothing here may stop the reconcile loop: forge and git errors are logged,
counted and retried on a later pass.
"""
