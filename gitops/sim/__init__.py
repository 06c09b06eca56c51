"""The fleet simulator: a Kubernetes-API-compatible simulated fleet for the demo and the tests.

A tool layer: it serves a management cluster at ``/`` and each workload cluster at
``/clusters/<name>/`` over HTTP, so that the official client and kubectl work against it
unchanged. The controller talks to it only over HTTP; nothing in the controller imports it.
"""
