"""What reports return: the query, reachability rows and incidents (frozen pydantic models)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, Field, model_validator

from probe.model.base import FrozenModel
from probe.model.verdict import VerdictKind

Grain = Literal["hour", "day"]
MAX_SPAN: dict[Grain, timedelta] = {"hour": timedelta(days=31), "day": timedelta(days=400)}
DEFAULT_SPAN: dict[Grain, timedelta] = {"hour": timedelta(days=2), "day": timedelta(days=30)}


Model = TypeVar("Model", bound=FrozenModel)


def construct(cls: type[Model], fields: dict[str, Any]) -> Model:
    """``cls.model_construct(**fields)`` for trusted ``fields`` naming every field, faster.

    The same instance as ``model_construct`` makes (``__dict__``, fields set, no extra, no
    private attributes): for report rows built by the thousand from typed columns.
    """
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", fields)
    object.__setattr__(obj, "__pydantic_fields_set__", set(fields))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def current_bucket_end(grain: Grain) -> datetime:
    """The end of the bucket that holds now: the latest ``until`` a report may ask for."""
    now = datetime.now(UTC)
    if grain == "hour":
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


class ReportQuery(FrozenModel):
    """Which cells a report covers: ``since`` inclusive, ``until`` exclusive, both UTC."""

    platform: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    asn: int | None = Field(default=None, ge=0, le=4_294_967_295)
    since: AwareDatetime
    until: AwareDatetime
    bucket: Grain = "hour"

    @model_validator(mode="after")
    def _span(self) -> ReportQuery:
        if self.since >= self.until:
            raise ValueError("since must be before until")
        if self.until > current_bucket_end(self.bucket):
            raise ValueError("until reaches past now (at most the end of the current bucket)")
        if self.until - self.since > MAX_SPAN[self.bucket]:
            days = MAX_SPAN[self.bucket].days
            raise ValueError(f"bucket={self.bucket} reports span at most {days} days")
        return self

    @classmethod
    def window(
        cls,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket: Grain = "hour",
        **filters: object,
    ) -> ReportQuery:
        """A query with the defaults filled in: until now, over ``DEFAULT_SPAN[bucket]``."""
        end = until or datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(
            hours=1
        )
        start = since or end - DEFAULT_SPAN[bucket]
        return cls.model_validate({**filters, "since": start, "until": end, "bucket": bucket})


class ReachabilityRow(FrozenModel):
    """One platform in one network (country, ASN) over one time bucket."""

    bucket_start: datetime
    platform: str
    country: str
    asn: int
    state: VerdictKind  # the cell's verdict (docs/reports.md)
    measurements: int
    probes: int  # distinct probe keys (one key per probe per ASN)
    reachable: int
    blocked: int
    throttled: int
    outage: int
    inconclusive: int
    methods: dict[str, int]
    dominant_method: str | None
    confirmed: bool  # two or more probes agreed on the state's method family within one hour
    confirmed_families: tuple[str, ...]
    network_outage: bool  # every platform and the canaries failed together in this network
    sample_digest: str  # a signed bundle behind the cell (a failing one when there is one)


IncidentKind = Literal["blocked", "throttled", "outage"]


class Incident(FrozenModel):
    """A block, throttle or outage of one platform in one network, or a whole network's outage.

    Times are the measurements' own: ``started_at`` the first failing measurement,
    ``last_seen_at`` the last one, ``last_good_before``/``first_good_after`` the probes' runs
    around them that saw the platform (or network) work.
    """

    id: str
    platform: str | None  # None: a network outage (every platform of the network)
    country: str
    asn: int
    network: str | None  # the operator's name, or the probes' label for the network
    kind: IncidentKind
    scope: Literal["platform", "network"]
    method: str | None  # the most frequent method of its failing runs
    started_at: datetime
    ended_at: datetime | None  # None: still ongoing at the end of the queried window
    last_seen_at: datetime
    last_good_before: datetime | None
    first_good_after: datetime | None
    probes: int  # distinct probe keys with a failing run
    runs: int  # failing runs (a probe's bundle, one platform)
    measurements: int  # measurements in those runs
    confirmed: bool
    confirmed_at: datetime | None  # the failing measurement that made two probes agree
    sample_digests: tuple[str, ...]  # bundles holding measurements of its kind and method
