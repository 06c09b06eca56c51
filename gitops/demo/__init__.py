"""``gitops demo``: the whole story on a laptop, with no cluster and no network.

Demo layer (between the CLI and the controller), in three parts:

``stage``    the processes and repositories: a temporary fleet repository, the fleet
             simulator, the simulator's stand-in for GitHub and the real controller
             (``gitops run``) as a child process; started and stopped in order
``story``    one method per act (drift, the engineer's bump in waves, a broken image and
             its revert, the epilogue), recording a typed ``Summary``
``summary``  the frozen outcome, serialized to the JSON ``gitops demo --json FILE`` writes

The controller's dashboard shows the same story live: the story prints its address ("open
http://127.0.0.1:PORT/ to watch") as soon as the controller listens, and the page stays up
until the story ends.

Drawing is the command line's (``gitops.cli.demo_view``, with rich); nothing here imports a
terminal library. Everything the stage starts is stopped in ``finally``; ``--keep`` keeps the
temporary directory.
"""
