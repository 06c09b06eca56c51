"""The Kubernetes adapter: the only package that imports ``kubernetes``.

``client`` connects to the management cluster and, through Cluster API kubeconfig Secrets, to
workload clusters; ``cache`` keeps list-then-watch caches; ``translate`` turns objects into
``gitops.inventory`` types at this boundary; ``observe`` reads the whole fleet; ``errors`` maps
API failures to the project's typed errors.
"""
