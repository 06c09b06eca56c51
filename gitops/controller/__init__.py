"""The long-running controller (``gitops run``): triggers, the reconcile loop, HTTP endpoints.

Shell layer. ``webhooks`` verifies and deduplicates push notifications from forges; ``http``
serves health, readiness, metrics and the webhook route; ``metrics`` declares what is
measured. The reconcile loop itself builds on ``gitops.rollout`` and ``gitops.gitrepo``.
"""
