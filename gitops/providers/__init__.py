"""Machine providers: how a pool gets a new machine and loses an old one.

Adapter layer. ``clusterapi`` creates and deletes Cluster API Machines, cloning the pool's
provider templates as a MachineSet does, so it works with any infrastructure provider.
"""
