"""The simulated world: what a fleet does on its own, behind the API machinery.

Tool layer (``gitops.sim``), above the API machinery (``gitops.sim.api``), which it reads and
writes through the store like any controller. ``world.py`` seeds a fleet (``seed.py``, drift
from ``drift.py``) and runs the physics (``physics.py``), which wires one module per controller
it plays: ``machines.py`` (Cluster API's machine controller and the infrastructure provider),
``kubelet.py`` (node readiness, heartbeats, Leases, pod termination), ``scheduling.py`` (the
scheduler), ``workloads.py`` (Deployments, ReplicaSets, DaemonSets) and ``disruption.py`` (PDB
status and the eviction subresource's decision), over the state they share (``base.py``).
``clock.py`` is its time; ``synthetic.py`` writes large fleets for tests and benchmarks.
"""
