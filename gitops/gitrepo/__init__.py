"""The git adapter: the only package that imports ``git`` (gitpython).

``checkout`` clones a fleet repository at a ref for one-shot commands (``--repo URL#ref``);
``mirror`` keeps a cached mirror for the controller's fetch phase (cheap "unchanged" checks,
force-push detection, immutable snapshots in ``snapshots``); ``verify`` checks commit
signatures against trusted OpenPGP and SSH keys; ``status`` writes the status branch;
``auth`` carries credentials to git without writing them anywhere.
"""
