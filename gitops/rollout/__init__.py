"""The executor: carries a plan out by immutable replacement, crash-safe.

Shell layer. ``executor.Executor`` reconciles level-triggered: observe, plan, carry out the
plan's ready actions through the adapters, record wave progress durably (``store``). ``drain``
holds the cordon-and-evict step; ``result`` the typed outcome each pass hands its caller.
"""
