"""The fleet dashboard: the page at ``/`` of the controller's HTTP address, read-only.

Sits between the controller (which feeds it after every pass and serves it) and the pure core
it reads (plans, findings, the fleet). ``view`` is the pure view model and the JSON served at
``/api/v1/fleet``; ``timeline`` and ``svg`` keep and draw nodes on target over time; ``board``
holds the latest page for the HTTP threads; ``assets`` serves the HTML, CSS and JavaScript
shipped in ``static/`` (no CDN, no build step, nothing fetched at run time). Nothing here can
change the fleet: it only reads what the loop already holds.
"""
