"""gitops: a GitOps reconciliation controller for fleets of Kubernetes clusters on immutable node images.

The package is layered (see README "Architecture"): ``fleet`` (desired state) and ``inventory``
(observed state) are models; ``drift`` and ``plan`` are the pure core; ``kube``, ``providers``,
``gitrepo`` and ``forge`` are adapters; ``rollout``, ``report`` and ``controller`` are the shell;
``sim`` is the fleet simulator; ``cli`` is the entry point.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gitops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
