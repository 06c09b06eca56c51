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
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from gitops import __version__
from gitops.kube.errors import BadConfig, Unreachable, read_json, translate
from gitops.kube.ratelimit import RateLimit, TokenBucket

USER_AGENT = f"gitops/{__version__}"
SERVICEACCOUNT_DIR_ENV = "GITOPS_SERVICEACCOUNT_DIR"
REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read (seconds) for ordinary requests
DEFAULT_PROBE_TIMEOUT = 10.0  # seconds for the first answer of the management cluster
# urllib3 retries a refused or reset connection this many times, silently (its "Retrying"
# warnings are muted by the commands): bounded, so a dead server fails in seconds, while a
# blink of the network is still absorbed. The adapters' own retries (``errors.read``, the
# caches' relists) sit above this. urllib3 would also retry a GET answered 429 with a
# Retry-After, sleeping that long itself, unseen and past the rate limit; the answer comes up
# instead, and ``errors.read`` waits the Retry-After (through an injectable sleep) and asks again
# through the token bucket.
CONNECTION_RETRIES = 1
# Every watch holds a connection and the executor works several clusters at once; the client's
# default pool (5 per CPU) is smaller than that on small machines, and urllib3 then drops the
# extra connections with a "Connection pool is full" warning instead of reusing them.
POOL_SIZE = 64


@dataclass
class Kube:
    """A client for one cluster: ``name`` is "" for the management cluster."""

    api: k8s.ApiClient
    name: str = ""
    # The cluster.x-k8s.io version this server is spoken to in, once discovered
    # (``gitops.kube.capi.version``); "" until then.
    capi_version: str = ""
    # The limit this client's requests pass through (``gitops.kube.ratelimit``); a workload
    # cluster's client gets a bucket of its own under the management cluster's settings.
    rate: RateLimit | None = None
    bucket: TokenBucket | None = None

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


def _limited(request: Callable[..., Any], bucket: TokenBucket) -> Callable[..., Any]:
    """The REST layer's ``request``, taking a token before each request is sent."""

    def limited(*args: Any, **kwargs: Any) -> Any:
        bucket.take()
        return request(*args, **kwargs)

    return limited


def _finish(configuration: k8s.Configuration, name: str, rate: RateLimit | None) -> Kube:
    # Pin the proxy the environment gave at load time. Left to the environment, the client
    # resolves it again whenever the host is set, and a token kubeconfig's refresh hook sets
    # the host before every request: a scan of os.environ, ~0.4 ms of CPU per request.
    configuration.proxy = configuration.proxy
    configuration.retries = urllib3.Retry(
        total=CONNECTION_RETRIES, respect_retry_after_header=False
    )
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, POOL_SIZE)
    api = k8s.ApiClient(configuration)
    api.user_agent = USER_AGENT
    bucket = rate.bucket(name) if rate is not None else None
    if bucket is not None:
        # Every request of the official client (reads, writes, a watch as it opens) goes
        # through this one method of its REST client, whatever API class made it.
        rest = api.rest_client
        rest.request = _limited(rest.request, bucket)  # type: ignore[method-assign]
    return Kube(api, name, rate=rate, bucket=bucket)


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


def connect(
    kubeconfig: str | None = None, context: str | None = None, *, rate: RateLimit | None = None
) -> Kube:
    """The management cluster: from ``kubeconfig`` (and ``context``), else in-cluster config.

    With neither a kubeconfig nor a service account, the default kubeconfig (``$KUBECONFIG`` or
    ``~/.kube/config``) is used, as kubectl does. ``rate`` limits the requests of this client
    and of every workload cluster's client made from it (``connect_workload``), each with a
    token bucket of its own; None, no limit.
    """
    if kubeconfig is not None and not os.path.exists(kubeconfig):
        raise BadConfig(
            f"kubeconfig {kubeconfig} does not exist (check the --kubeconfig path; without the "
            "flag, $KUBECONFIG or ~/.kube/config is used)"
        )
    if kubeconfig is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        # The client's own words for this are "Invalid kube-config file": say what is wrong.
        paths = os.environ.get("KUBECONFIG") or "~/.kube/config"
        found = [p for p in paths.split(os.pathsep) if p and os.path.exists(os.path.expanduser(p))]
        if not found:
            raise BadConfig(
                f"kubeconfig {paths} does not exist (pass --kubeconfig, or set KUBECONFIG; "
                "in a pod, the in-cluster configuration is used)"
            )
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
    return _finish(configuration, "", rate)


def pod_namespace(kubeconfig: str | None = None) -> str | None:
    """The namespace this process runs in when it uses the in-cluster configuration, else None.

    Read from the service account's ``namespace`` file, as client-go does: a namespace a pod
    runs in exists, which a controller confined to it could not otherwise ask.
    """
    if kubeconfig is not None or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    directory = os.environ.get(SERVICEACCOUNT_DIR_ENV) or _SERVICEACCOUNT_DIR
    try:
        with open(os.path.join(directory, "namespace"), encoding="utf-8") as file:
            return file.read().strip() or None
    except OSError:
        return None


_SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def probe(kube: Kube, timeout: float = DEFAULT_PROBE_TIMEOUT) -> None:
    """Ask the API server for ``/version`` once; ``Unreachable`` in one line when it does not answer.

    Commands call this right after ``connect`` so that a wrong or dead server is reported in
    seconds, naming the URL, instead of after every cache has retried until its sync timeout.
    Only the absence of an answer is reported here: an HTTP error (401, 403 ...) means the
    server is there, and the requests that follow report it with their own context.
    """
    host = kube.api.configuration.host
    attempt = timeout / (CONNECTION_RETRIES + 1)  # urllib3 tries again on a failed connect
    try:
        k8s.VersionApi(kube.api).get_code(_request_timeout=(attempt, attempt))
    except ApiException:
        return
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise Unreachable(
            f"the {kube.label()} does not answer at {host}: {_cause(err)} (check that its API "
            "server is running and that --kubeconfig and --context point at it; "
            f"--request-timeout {timeout:g} bounds the wait)"
        ) from err


def _cause(err: BaseException) -> str:
    """The innermost reason of a urllib3 failure, without the retry wrapper's noise."""
    reason: BaseException = err
    while isinstance(reason, urllib3.exceptions.MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    # urllib3 prefixes the connection it used: "HTTPConnection(host='h', port=1): Failed to
    # establish a new connection: [Errno 111] Connection refused" (older: "<... object at 0x>:").
    text = _CONNECTION_PREFIX.sub("", str(reason))
    return text or reason.__class__.__name__


_CONNECTION_PREFIX = re.compile(r"^(<[^>]*>|\w+\([^)]*\)): ")


def connect_workload(management: Kube, cluster: str, namespace: str) -> Kube:
    """A workload cluster, from the Secret ``<cluster>-kubeconfig`` in ``namespace``; its
    requests are limited as the management cluster's are, by a token bucket of its own."""
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
    kube = _finish(configuration, cluster, management.rate)
    kube.api.user_agent = management.api.user_agent  # a sharded replica names itself in it
    return kube
