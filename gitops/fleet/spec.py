"""The fleet repository's documents (``fleet.gitops.io/v1alpha1`` Fleet and Cluster) as frozen models.

Part of the model layer: pure, no I/O. These classes are at once the validator of what engineers
write, the immutable in-memory desired state every other layer reads, and the source of the JSON
Schema that ``gitops schema`` prints. Field names are snake_case in Python and camelCase in YAML.
Durations are held in seconds; int-or-percent budgets are resolved per pool against its replicas.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from gitops.fleet.quantities import (
    DURATION_PATTERN,
    PERCENT_PATTERN,
    parse_duration,
    parse_percent,
    resolve_int_or_percent,
)

API_VERSION = "fleet.gitops.io/v1alpha1"
KINDS = ("Fleet", "Cluster")

# Kubernetes naming rules (apimachinery validation): DNS-1123 labels and qualified label keys.
# Each pattern is written once, in the common subset of Python's and ECMA-262's regular
# expressions, and serves both the loader and the JSON Schema, so that editors and
# ``gitops validate`` judge names alike. ``[0-9]`` rather than ``\d``: in Python and in pydantic's
# Rust engine ``\d`` also matches non-ASCII digits, in an editor it does not.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_NAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
# The look-ahead bounds the optional DNS prefix to 253 characters, as Kubernetes does.
LABEL_KEY = rf"^((?=[-a-z0-9.]{{1,253}}/){_DNS_SUBDOMAIN}/)?{_NAME_PART}$"
LABEL_VALUE = rf"^({_NAME_PART})?$"
VERSION = r"^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$"
_LABEL_KEY = re.compile(LABEL_KEY)
_LABEL_VALUE = re.compile(LABEL_VALUE)


def _check_label_key(key: str) -> str:
    # fullmatch: in Python ``$`` also matches before a final newline, in an editor it does not.
    if not _LABEL_KEY.fullmatch(key):
        raise ValueError(
            f"{key!r} is not a valid label key; use an optional DNS prefix and a name of at most "
            "63 characters of letters, digits, '-', '_' and '.', e.g. example.com/tier"
        )
    return key


def _check_label_value(value: str) -> str:
    if not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid label value; use at most 63 letters, digits, '-', '_' or '.',"
            " starting and ending with a letter or digit"
        )
    return value


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _check_labels(mapping: Mapping[str, str]) -> Mapping[str, str]:
    for key, value in mapping.items():
        _check_label_key(key)
        _check_label_value(value)
    return _freeze(mapping)


def _check_annotations(mapping: Mapping[str, str]) -> Mapping[str, str]:
    for key in mapping:
        _check_label_key(key)  # annotation keys follow the label key syntax
    return _freeze(mapping)


def _duration(value: Any) -> Any:
    # Strict mode cannot tell a duration from any other string, nor say what to write instead
    # of a bare number, so this one type names its own type error.
    if not isinstance(value, str):
        raise PydanticCustomError("duration_type", "expected a duration with a unit")
    if value.isascii() and value.isdigit() and value != "0":
        raise ValueError(f"{value!r} has no unit; write {value}s or {value}m")
    return 0.0 if value == "0" else parse_duration(value)


def _int_or_percent(value: Any) -> Any:
    if isinstance(value, str):
        if value.isascii() and value.isdigit():
            raise ValueError(
                f"{value!r} is a string, not a number; write {value} without quotes for a "
                f"number of nodes or {value}% for a percentage"
            )
        parse_percent(value)
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_or_percent_type", "expected an integer or a percentage")
    if value < 0:
        raise ValueError(f"{value} is negative; use 0 or more")
    return value


def _as_tuple(value: Any) -> Any:
    """A YAML list for a tuple field: strict mode takes only tuples from Python, lists from JSON."""
    return tuple(value) if isinstance(value, list) else value


# Every list of the format is held as a tuple (the models are frozen and hashable).
_LIST = BeforeValidator(_as_tuple)

_Serialize = PlainSerializer(dict, return_type=dict)
Labels = Annotated[
    Mapping[str, str],
    AfterValidator(_check_labels),
    _Serialize,
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": LABEL_KEY},
            "additionalProperties": {"type": "string", "pattern": LABEL_VALUE},
            "description": "Kubernetes labels: qualified keys, values of at most 63 characters.",
        }
    ),
]
Annotations = Annotated[
    Mapping[str, str],
    AfterValidator(_check_annotations),
    _Serialize,
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": LABEL_KEY},
            "additionalProperties": {"type": "string"},
            "description": "Kubernetes annotations: qualified keys, any string values.",
        }
    ),
]
Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration with its unit, such as 90s, 10m or 1h30m (or 0).",
        }
    ),
]
IntOrPercent = Annotated[
    int | str,
    BeforeValidator(_int_or_percent),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": PERCENT_PATTERN},
            ],
            "description": "A number of nodes, or a percentage of the pool's replicas (e.g. 25%).",
        }
    ),
]
DnsLabel = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
LabelKey = Annotated[
    str, AfterValidator(_check_label_key), WithJsonSchema({"type": "string", "pattern": LABEL_KEY})
]
Version = Annotated[str, Field(pattern=VERSION)]


class _Model(BaseModel):
    # strict: no value changes type on the way in (true is not 1, "3" and 3.0 are not 3), as the
    # JSON Schema says. Keys are read by their YAML (camelCase) names only, pydantic's default
    # without populate_by_name; the schema knows no other.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        str_strip_whitespace=False,
    )


class ObjectMeta(_Model):
    """The metadata every document carries."""

    name: DnsLabel = Field(description="Unique name: lower-case letters, digits and '-'.")
    labels: Labels = Field(
        default_factory=lambda: _freeze({}), description="Labels used by wave selectors."
    )
    annotations: Annotated[Mapping[str, str], AfterValidator(_freeze), _Serialize] = Field(
        default_factory=lambda: _freeze({}), description="Free-form notes; never interpreted."
    )


class ImageFacts(_Model):
    """Node labels and annotations a node booted from the image must carry, with exact values.

    The facts labellers publish beyond nodeInfo: NVIDIA GPU Feature Discovery's
    ``nvidia.com/cuda.driver-version.full``, Node Feature Discovery's
    ``feature.node.kubernetes.io/kernel-version.full``, Talos's ``extensions.talos.dev/<name>``
    labels and ``extensions.talos.dev/schematic`` annotation.
    """

    labels: Labels = Field(
        default_factory=lambda: _freeze({}),
        description="Label key -> the exact value every node booted from the image reports.",
    )
    annotations: Annotations = Field(
        default_factory=lambda: _freeze({}),
        description="Annotation key -> the exact value every node booted from the image carries.",
    )


class Image(_Model):
    """An immutable OS image: what a node booted from it must report, and what a provider boots."""

    os_image: str = Field(min_length=1, description="Expected node.status.nodeInfo.osImage.")
    kernel_version: str = Field(min_length=1, description="Expected nodeInfo.kernelVersion.")
    kubelet_version: Version = Field(description="Expected nodeInfo.kubeletVersion, e.g. v1.31.4.")
    container_runtime_version: str = Field(
        min_length=1, description="Expected nodeInfo.containerRuntimeVersion."
    )
    source: str = Field(min_length=1, description="What the provider boots (AMI, installer image).")
    family: str = Field(
        default="",
        description="Images of one family replace each other; the catalog lists each family "
        "oldest first, so the image before another of its family is its predecessor.",
    )
    facts: ImageFacts = Field(
        default_factory=ImageFacts,
        description="Labels and annotations beyond nodeInfo a node booted from it must carry "
        "(GPU driver, CUDA runtime, system extensions, schematic).",
    )


class LabelSelectorRequirement(_Model):
    """One matchExpressions entry, as in Kubernetes label selectors."""

    # The rule of ``_values_match_operator``, for editors.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"operator": {"enum": ["In", "NotIn"]}}},
                    "then": {"required": ["values"], "properties": {"values": {"minItems": 1}}},
                },
                {
                    "if": {"properties": {"operator": {"enum": ["Exists", "DoesNotExist"]}}},
                    "then": {"properties": {"values": {"maxItems": 0}}},
                },
            ]
        }
    )

    key: LabelKey = Field(description="The label key the requirement applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: Annotated[tuple[str, ...], _LIST] = Field(
        default=(), description="Values for In and NotIn."
    )

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs a non-empty values list")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values; remove them")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator == "In":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


class LabelSelector(_Model):
    """A Kubernetes label selector over cluster labels; an empty selector selects every cluster."""

    match_labels: Labels = Field(
        default_factory=lambda: _freeze({}), description="Labels a cluster must carry."
    )
    match_expressions: Annotated[tuple[LabelSelectorRequirement, ...], _LIST] = Field(
        default=(), description="Set-based requirements, all of which must hold."
    )

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            req.matches(labels) for req in self.match_expressions
        )


# --- time: maintenance windows, freezes, rates and the emergency override --------------------
# The time algebra that reads these (open now? closes when? next opening?) is
# ``gitops.fleet.windows``; here they are only validated.

Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
_RFC3339 = re.compile(RFC3339)
Covers = Literal["both", "image", "drift"]


def _check_time_zone(name: str) -> str:
    # zoneinfo reads the system's (or the tzdata package's) zone files: local files only.
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(
            f"{name!r} is not an IANA time zone; write one such as Europe/Berlin or UTC"
        ) from err
    return name


def _check_cron(expr: str) -> str:
    # Six fields (seconds first) serve demos and tests, whose windows open within seconds;
    # cronsim gives them no daylight-saving fix-up, which fleets in UTC do not need.
    if len(expr.split()) not in (5, 6):
        raise ValueError(
            f"{expr!r} is not a cron schedule; write five fields: minute hour day-of-month "
            "month day-of-week, e.g. '0 22 * * Mon-Fri' (or six, seconds first)"
        )
    try:
        next(CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC)))
    except (CronSimError, StopIteration) as err:
        raise ValueError(f"{expr!r} is not a cron schedule: {err or 'it never fires'}") from err
    return expr


def _check_rfc3339(text: str) -> str:
    if not _RFC3339.fullmatch(text):
        raise ValueError(
            f"{text!r} is not an RFC 3339 time; write one with its offset, e.g. "
            "2026-12-24T00:00:00+01:00 or 2026-12-24T00:00:00Z"
        )
    try:
        datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"{text!r} is not a real time: {err}") from err
    return text


TimeZone = Annotated[str, AfterValidator(_check_time_zone), WithJsonSchema({"type": "string"})]
Cron = Annotated[
    str,
    AfterValidator(_check_cron),
    WithJsonSchema(
        {"type": "string", "description": "Cron expression: five fields, or six seconds first."}
    ),
]
ClockTime = Annotated[str, Field(pattern=CLOCK_TIME)]
Timestamp = Annotated[
    str, AfterValidator(_check_rfc3339), WithJsonSchema({"type": "string", "pattern": RFC3339})
]
Weekdays = Annotated[tuple[Weekday, ...], _LIST]

# Either form of a recurrence, for editors: the rule of ``_Recurring._one_form``.
# Each form forbids the other's keys (a property schema ``false`` rejects the key), and a zero
# duration, as the validators below do.
ZERO_DURATION = r"^(0|([0]+(\.[0]+)?(ms|h|m|s))+)$"
_CRON_KEYS, _WEEKLY_KEYS = ("schedule", "duration"), ("days", "startTime", "endTime")
_POSITIVE: dict[str, Any] = {"not": {"pattern": ZERO_DURATION}}
_RECURRENCE_FORMS: list[Any] = [
    {
        "required": list(_CRON_KEYS),
        "properties": {"duration": _POSITIVE, **dict.fromkeys(_WEEKLY_KEYS, False)},
    },
    {
        "required": list(_WEEKLY_KEYS),
        "properties": {"days": {"minItems": 1}, **dict.fromkeys(_CRON_KEYS, False)},
    },
]
_ONCE: dict[str, Any] = {
    "required": ["start", "end"],
    "properties": dict.fromkeys((*_CRON_KEYS, *_WEEKLY_KEYS), False),
}


class _Recurring(_Model):
    """A recurring period: a cron ``schedule`` of starts and a ``duration``, or ``days`` of the
    week with a ``startTime`` and an ``endTime`` (an end at or before the start is the next day).
    """

    schedule: Cron | None = Field(
        default=None, description="Cron schedule of start times, e.g. '0 22 * * Mon-Fri'."
    )
    duration: Duration | None = Field(default=None, description="How long each period lasts.")
    days: Weekdays = Field(default=(), description="Days of the week the period starts on.")
    start_time: ClockTime | None = Field(default=None, description="Local start time, HH:MM.")
    end_time: ClockTime | None = Field(
        default=None, description="Local end time, HH:MM; at or before startTime: the next day."
    )
    time_zone: TimeZone = Field(default="UTC", description="IANA time zone the times are in.")
    covers: Covers = Field(
        default="both",
        description="What it governs: image (replacements for a new image), drift "
        "(drift remediation) or both.",
    )

    def _form(self) -> str:
        cron = self.schedule is not None or self.duration is not None
        weekly = bool(self.days) or self.start_time is not None or self.end_time is not None
        if cron and weekly:
            raise ValueError("give either schedule and duration, or days, startTime and endTime")
        if cron:
            if self.schedule is None or self.duration is None:
                raise ValueError("a schedule needs a duration and a duration a schedule")
            if self.duration <= 0:
                raise ValueError("duration must be more than 0")
            return "cron"
        if weekly:
            if not self.days or self.start_time is None or self.end_time is None:
                raise ValueError("days, startTime and endTime go together; give all three")
            return "weekly"
        return ""


class Window(_Recurring):
    """A maintenance window: when new work may start."""

    model_config = ConfigDict(json_schema_extra={"oneOf": _RECURRENCE_FORMS})

    name: DnsLabel = Field(description="Window name, e.g. weeknights.")

    @model_validator(mode="after")
    def _one_form(self) -> Window:
        if not self._form():
            raise ValueError("a window needs schedule and duration, or days, startTime and endTime")
        return self


class Freeze(_Recurring):
    """A freeze: no new work starts while it holds; it always wins over a window."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                _ONCE,
                *(
                    {**form, "properties": {**form["properties"], "start": False, "end": False}}
                    for form in _RECURRENCE_FORMS
                ),
            ],
        }
    )

    name: DnsLabel = Field(description="Freeze name, e.g. peak-season.")
    reason: str = Field(min_length=1, description="Why nothing may change, shown in plans.")
    owner: str = Field(min_length=1, description="Who to ask about it.")
    start: Timestamp | None = Field(default=None, description="RFC 3339 start of a one-off freeze.")
    end: Timestamp | None = Field(default=None, description="RFC 3339 end of a one-off freeze.")

    @model_validator(mode="after")
    def _one_form(self) -> Freeze:
        once = self.start is not None or self.end is not None
        form = self._form()
        if once and form:
            raise ValueError("give either start and end, or a recurrence, not both")
        if once:
            if self.start is None or self.end is None:
                raise ValueError("start and end go together; give both")
            if self.ends_at <= self.starts_at:
                raise ValueError(f"end {self.end} is not after start {self.start}")
        elif not form:
            raise ValueError(
                "a freeze needs start and end, schedule and duration, or days, startTime and endTime"
            )
        return self

    @property
    def starts_at(self) -> float:
        """A one-off freeze's start in seconds since the epoch (0 for a recurring one)."""
        return datetime.fromisoformat(self.start).timestamp() if self.start else 0.0

    @property
    def ends_at(self) -> float:
        """A one-off freeze's end in seconds since the epoch (0 for a recurring one)."""
        return datetime.fromisoformat(self.end).timestamp() if self.end else 0.0


class Rate(_Model):
    """At most ``maxReplacements`` new replacements started in any period of ``per``."""

    max_replacements: int = Field(ge=1, description="Replacements that may start per period.")
    per: Duration = Field(description="The sliding period, e.g. 1h.", json_schema_extra=_POSITIVE)

    @model_validator(mode="after")
    def _positive(self) -> Rate:
        if self.per <= 0:
            raise ValueError("per must be more than 0")
        return self


class Maintenance(_Model):
    """When work may start at one level (fleet, wave or cluster): windows, freezes, a rate.

    Where several levels declare windows, work starts only when every one of them allows it;
    any freeze at any level stops new work; every rate must have room.
    """

    windows: Annotated[tuple[Window, ...], _LIST] = Field(
        default=(), description="Windows; work may start while any of them is open."
    )
    freezes: Annotated[tuple[Freeze, ...], _LIST] = Field(
        default=(), description="Freezes; no new work while one holds."
    )
    rate: Rate | None = Field(default=None, description="At most N replacements per period.")


class Override(_Model):
    """An emergency override carried by the change that needs it: lifts windows until ``until``."""

    reason: str = Field(min_length=1, description="Why the change cannot wait; shown everywhere.")
    until: Timestamp = Field(description="RFC 3339 time the override lapses.")
    lift_freezes: bool = Field(default=False, description="Also lift freezes (default: no).")

    @property
    def until_at(self) -> float:
        """When the override lapses, in seconds since the epoch."""
        return datetime.fromisoformat(self.until).timestamp()


class Wave(_Model):
    """A fleet-level ring of clusters; waves roll in the order they are listed."""

    name: DnsLabel = Field(description="Wave name, e.g. canary.")
    clusters: LabelSelector = Field(description="Which clusters belong to this wave.")
    soak: Duration = Field(
        default=0.0, description="Time the wave must stay healthy before the next starts."
    )
    max_clusters_in_parallel: int | None = Field(
        default=None, ge=1, description="Clusters of this wave rolled at once (default: all)."
    )
    maintenance: Maintenance | None = Field(
        default=None, description="Windows, freezes and a rate for this wave's clusters."
    )


class Rollout(_Model):
    """How changes travel through the fleet."""

    waves: Annotated[tuple[Wave, ...], _LIST] = Field(
        min_length=1, description="Rings in order; every cluster in exactly one."
    )
    max_failed_nodes: int = Field(
        default=1, ge=0, description="Failure budget per wave; exceeding it halts the rollout."
    )
    max_drifted_fraction: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Refuse to act when a larger share of the fleet's nodes has drifted at once.",
    )
    maintenance: Maintenance | None = Field(
        default=None, description="Windows, freezes and a rate for every cluster of the fleet."
    )
    override: Override | None = Field(
        default=None, description="Emergency override: lifts windows for this change."
    )


class DriftPolicy(_Model):
    """What to do about drift (nodes that differ from their pool's declaration)."""

    remediate: Literal["replace", "report"] = Field(
        default="replace", description="replace drifted nodes, or only report them."
    )
    fact_grace_period: Duration = Field(
        default=600.0,
        description="How long a node may be Ready without reporting an image fact (its "
        "labeller has not run yet) before the missing fact counts as drift.",
    )


class StatusSpec(_Model):
    """Where status is written back to git."""

    branch: str = Field(
        default="gitops/status",
        min_length=1,
        description="Status branch; never the branch you merge to.",
    )


class FleetSpec(_Model):
    """Fleet-wide settings: the image catalog and the rollout policy."""

    images: Annotated[
        Mapping[str, Image],
        AfterValidator(_freeze),
        PlainSerializer(
            lambda m: {k: v.model_dump(by_alias=True) for k, v in m.items()}, return_type=dict
        ),
    ] = Field(min_length=1, description="Image catalog by name, each family listed oldest first.")
    rollout: Rollout = Field(description="Waves and budgets.")
    drift: DriftPolicy = Field(default_factory=DriftPolicy, description="Drift policy.")
    status: StatusSpec = Field(default_factory=StatusSpec, description="Status write-back.")


class FleetDocument(_Model):
    """The one Fleet document of a repository."""

    api_version: Literal["fleet.gitops.io/v1alpha1"] = Field(
        description="Always fleet.gitops.io/v1alpha1."
    )
    kind: Literal["Fleet"] = Field(description="Fleet.")
    metadata: ObjectMeta = Field(description="Name of the fleet.")
    spec: FleetSpec = Field(description="Fleet settings.")


class Machines(_Model):
    """Which machine provider manages the cluster's nodes and where its objects live."""

    provider: Literal["clusterapi"] = Field(default="clusterapi", description="Machine provider.")
    namespace: DnsLabel | None = Field(
        default=None,
        description="Namespace of the Machines in the management cluster (default: cluster name).",
    )


class ObjectReference(_Model):
    """A reference to a provider template object in the management cluster."""

    api_version: str = Field(min_length=1, description="apiVersion of the template.")
    kind: str = Field(min_length=1, description="Kind of the template, e.g. AWSMachineTemplate.")
    name: str = Field(min_length=1, description="Name of the template.")
    namespace: str | None = Field(
        default=None, description="Namespace (default: the machines namespace)."
    )


class MachineTemplate(_Model):
    """Provider templates a new Machine is cloned from, passed through to the provider."""

    infrastructure_ref: ObjectReference = Field(description="Infrastructure machine template.")
    bootstrap_ref: ObjectReference | None = Field(
        default=None, description="Bootstrap config template."
    )
    image_field: str = Field(
        default="spec.template.spec.image",
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description="Dotted path in the cloned infrastructure template where the image source goes.",
    )


class MachineDeploymentRef(_Model):
    """The Cluster API MachineDeployment a pool is rolled through, instead of standalone Machines.

    Either ``name`` (a MachineDeployment in the cluster's machines namespace, whose template
    gitops swaps) or ``topology`` (a worker of ``Cluster.spec.topology``, ClusterClass-managed:
    gitops writes only that worker entry, the image going in through ``imageVariable``).
    """

    # The rule of ``_one_target``, for editors. A key given as null counts as absent, as it does
    # for the loader, hence "present" means "present as a string".
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["name"], "properties": {"name": {"type": "string"}}},
                {"required": ["topology"], "properties": {"topology": {"type": "string"}}},
            ],
            "if": {
                "required": ["imageVariable"],
                "properties": {"imageVariable": {"type": "string"}},
            },
            "then": {"required": ["topology"], "properties": {"topology": {"type": "string"}}},
        }
    )

    name: DnsLabel | None = Field(
        default=None,
        description="A MachineDeployment in the cluster's machines namespace.",
    )
    topology: DnsLabel | None = Field(
        default=None,
        description="A worker of Cluster.spec.topology.workers.machineDeployments[] of the "
        "Cluster named like the fleet cluster, in the machines namespace.",
    )
    image_variable: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Only with topology: the ClusterClass variable (a topology override on the "
        'worker) that receives the image\'s source (default "image").',
    )

    @model_validator(mode="after")
    def _one_target(self) -> MachineDeploymentRef:
        if (self.name is None) == (self.topology is None):
            which = "both" if self.name is not None else "neither"
            raise ValueError(
                f"machineDeployment has {which} of name and topology; give exactly one: name for "
                "a MachineDeployment, topology for a ClusterClass worker"
            )
        if self.image_variable is not None and self.topology is None:
            raise ValueError(
                "machineDeployment.imageVariable is only used with topology; remove it, or name "
                "the topology worker instead of the MachineDeployment"
            )
        if self.topology is not None and self.image_variable is None:
            # Resolved here so that every reader sees the variable a topology pool uses.
            object.__setattr__(self, "image_variable", "image")
        return self


class Taint(_Model):
    """A taint every node of the pool must carry."""

    key: LabelKey = Field(description="Taint key.")
    value: str | None = Field(default=None, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        description="Taint effect."
    )


class UpdatePolicy(_Model):
    """How a pool's nodes are replaced."""

    max_surge: IntOrPercent = Field(
        default=1, description="Extra nodes allowed during replacement (percent rounds up)."
    )
    max_unavailable: IntOrPercent = Field(
        default=0, description="Nodes allowed to be unavailable (percent rounds down)."
    )
    node_startup_timeout: Duration = Field(
        default=600.0, description="A new node not Ready by then has failed."
    )
    drain_timeout: Duration = Field(default=600.0, description="How long a drain may be blocked.")
    on_drain_timeout: Literal["fail", "quarantine", "force"] = Field(
        default="fail",
        description="fail (stop), quarantine (leave cordoned, go on) or force (delete pods).",
    )
    soak: Duration = Field(
        default=0.0, description="Time a new batch must stay healthy before the next."
    )


class NodePool(_Model):
    """A set of identical nodes booted from one image."""

    name: DnsLabel = Field(description="Pool name, unique in the cluster.")
    image: str = Field(min_length=1, description="Name of an image in the fleet's catalog.")
    replicas: int = Field(ge=0, description="Number of nodes.")
    zones: Annotated[tuple[str, ...], _LIST] = Field(
        min_length=1,
        description="Failure domains nodes are spread over, each listed once.",
        json_schema_extra={"uniqueItems": True},
    )
    labels: Labels = Field(
        default_factory=lambda: _freeze({}), description="Labels every node must carry."
    )
    taints: Annotated[tuple[Taint, ...], _LIST] = Field(
        default=(), description="Taints every node must carry."
    )
    machine_template: MachineTemplate | None = Field(
        default=None, description="Provider templates for new Machines."
    )
    machine_deployment: MachineDeploymentRef | None = Field(
        default=None,
        description="Roll the pool through a Cluster API MachineDeployment (by name or as a "
        "ClusterClass topology worker) instead of standalone Machines.",
    )
    update: UpdatePolicy = Field(default_factory=UpdatePolicy, description="Replacement policy.")

    @property
    def surge(self) -> int:
        """maxSurge resolved against replicas (percentages round up)."""
        return resolve_int_or_percent(self.update.max_surge, self.replicas, round_up=True)

    @property
    def unavailable(self) -> int:
        """maxUnavailable resolved against replicas (percentages round down)."""
        return resolve_int_or_percent(self.update.max_unavailable, self.replicas, round_up=False)


class ClusterSpec(_Model):
    """What one cluster must run."""

    kubernetes_version: Version = Field(
        description="The control plane's version; Machines get it as spec.version."
    )
    paused: bool = Field(default=False, description="Stops all new actions on this cluster.")
    machines: Machines = Field(default_factory=Machines, description="Machine provider settings.")
    maintenance: Maintenance | None = Field(
        default=None, description="Windows, freezes and a rate for this cluster."
    )
    node_pools: Annotated[tuple[NodePool, ...], _LIST] = Field(
        min_length=1, description="The cluster's node pools."
    )


class ClusterDocument(_Model):
    """One Cluster document per cluster."""

    api_version: Literal["fleet.gitops.io/v1alpha1"] = Field(
        description="Always fleet.gitops.io/v1alpha1."
    )
    kind: Literal["Cluster"] = Field(description="Cluster.")
    metadata: ObjectMeta = Field(description="Name and labels of the cluster.")
    spec: ClusterSpec = Field(description="Cluster settings.")

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """Namespace of the cluster's Machines and kubeconfig Secret in the management cluster."""
        return self.spec.machines.namespace or self.metadata.name

    def pool(self, name: str) -> NodePool | None:
        return next((p for p in self.spec.node_pools if p.name == name), None)
