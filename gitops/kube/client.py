"""Connections to the management cluster and, through it, to each workload cluster.

Adapter layer, the only place (with the rest of ``gitops.kube``) that imports ``kubernetes``.
The management cluster is reached from a kubeconfig file and context, or from the in-cluster
configuration (service account token, KUBERNETES_SERVICE_HOST/PORT). A workload cluster is
reached as Cluster API does: through the Secret ``<cluster>-kubeconfig`` (key ``value``) in the
cluster's namespace of the management cluster.

``GITOPS_SERVICEACCOUNT_DIR`` moves where the in-cluster configuration reads the service
account's ``token`` and ``ca.crt`` (default ``/var/run/secrets/kubernetes.io/serviceaccount``):
the deploy tests point it at a token the simulator minted and the simulator's CA.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gitops import __version__
from gitops.kube.errors import BadConfig, read_json, translate

USER_AGENT = f"gitops/{__version__}"
SERVICEACCOUNT_DIR_ENV = "GITOPS_SERVICEACCOUNT_DIR"
REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read (seconds) for ordinary requests


@dataclass
class Kube:
    """A client for one cluster: ``name`` is "" for the management cluster."""

    api: k8s.ApiClient
    name: str = ""

    @property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    @property
    def policy(self) -> k8s.PolicyV1Api:
        return k8s.PolicyV1Api(self.api)

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self.api)

    @property
    def coordination(self) -> k8s.CoordinationV1Api:
        return k8s.CoordinationV1Api(self.api)

    def label(self) -> str:
        return self.name or "management cluster"

    def close(self) -> None:
        self.api.close()


def _finish(configuration: k8s.Configuration, name: str) -> Kube:
    # Pin the proxy the environment gave at load time. Left to the environment, the client
    # resolves it again whenever the host is set, and a token kubeconfig's refresh hook sets
    # the host before every request: a scan of os.environ, ~0.4 ms of CPU per request.
    configuration.proxy = configuration.proxy
    api = k8s.ApiClient(configuration)
    api.user_agent = USER_AGENT
    return Kube(api, name)


@contextmanager
def _malformed(source: str) -> Iterator[None]:
    """A kubeconfig that is not YAML, or not shaped like one, is a BadConfig too.

    The client's loader reports only some problems as ConfigException; unparseable YAML or a
    list where it expects a mapping escape as YAMLError, TypeError and the like.
    """
    try:
        yield
    except (yaml.YAMLError, TypeError, AttributeError, KeyError, ValueError) as err:
        raise BadConfig(f"{source} is not a usable kubeconfig: {err}") from err


def connect(kubeconfig: str | None = None, context: str | None = None) -> Kube:
    """The management cluster: from ``kubeconfig`` (and ``context``), else in-cluster config.

    With neither a kubeconfig nor a service account, the default kubeconfig (``$KUBECONFIG`` or
    ``~/.kube/config``) is used, as kubectl does.
    """
    configuration = k8s.Configuration()
    with translate("loading the cluster configuration"), _malformed(kubeconfig or "kubeconfig"):
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            directory = os.environ.get(SERVICEACCOUNT_DIR_ENV)
            if directory:
                k8s_config.incluster_config.InClusterConfigLoader(
                    token_filename=os.path.join(directory, "token"),
                    cert_filename=os.path.join(directory, "ca.crt"),
                ).load_and_set(configuration)
            else:
                k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(
                config_file=kubeconfig,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    return _finish(configuration, "")


def connect_workload(management: Kube, cluster: str, namespace: str) -> Kube:
    """A workload cluster, from the Secret ``<cluster>-kubeconfig`` in ``namespace``."""
    secret_name = f"{cluster}-kubeconfig"
    secret = read_json(
        f"reading Secret {namespace}/{secret_name}",
        management.core.read_namespaced_secret,
        secret_name,
        namespace,
        _request_timeout=REQUEST_TIMEOUT,
    )
    data: dict[str, Any] = secret.get("data") or {}
    if "value" not in data:
        raise BadConfig(f"Secret {namespace}/{secret_name} has no key 'value' holding a kubeconfig")
    try:
        kubeconfig = yaml.safe_load(base64.b64decode(data["value"]))
    except (ValueError, yaml.YAMLError) as err:
        raise BadConfig(
            f"Secret {namespace}/{secret_name} does not hold a kubeconfig: {err}"
        ) from err
    configuration = k8s.Configuration()
    with (
        translate(f"loading the kubeconfig of cluster {cluster}"),
        _malformed(f"Secret {namespace}/{secret_name}"),
    ):
        loader = k8s_config.kube_config.KubeConfigLoader(config_dict=kubeconfig)
        loader.load_and_set(configuration)
    return _finish(configuration, cluster)
