"""The simulator's API machinery: what a Kubernetes API server does, for any writer.

Tool layer (``gitops.sim``), the bottom of the simulator. The store (``store.py``) holds the
objects of every simulated cluster with resourceVersions, watches, finalizers and validation;
``handler.py`` serves it over HTTP with patches (``patch.py``, ``apply.py``), write validation
(``schema.py``, ``schemas.py``), selectors, tables, discovery, OpenAPI, authz, audit and
injected faults. It never imports the world (``gitops.sim.world``) nor the forges: the world
hooks itself in through the store (subscribers, subresource handlers such as pods/eviction).
"""
