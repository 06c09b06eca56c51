"""The executor: carries a plan out by immutable replacement, crash-safe.

Shell layer. ``executor.Executor`` reconciles level-triggered: observe, plan, start the plan's
due steps, record wave progress durably (``store``). ``scheduler`` decides when a step is due
(in flight, done, backoff, blocked drains, expectations, ready marks), on the one injected
``clock``; ``steps`` holds one function per step kind, each ending in a typed outcome;
``drain`` the cordon-and-evict mechanics; ``result`` the typed outcome each pass hands its
caller.
"""
