"""Status write-back: what the controller tells people in git.

Shell layer, the report phase. ``status`` turns a plan, the fleet and the observed inventory
into the status branch's files (one YAML per cluster, a README summary). It decides what to
write; ``gitops.gitrepo`` writes it.
"""
