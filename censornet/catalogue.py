"""The scenario catalogue: what each censorship scenario does to the lab and what a probe must say.

The data lives in ``censornet/scenarios/catalogue.toml`` (one ``[[scenario]]`` table each); this
module validates it into frozen models. iptables rules are iptables-restore lines that may only
append to the lab's censor chains (``BP_*``) and may name lab addresses as ``{X_IPS}``-style
placeholders (``ADDRESSES``); ``tc`` commands name the interface as ``{dev}``.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from censornet import topology
from censornet.ip6tables import NoIpv6Form, ipv6_rule
from censornet.policy import Policy
from probe.model.base import FrozenModel
from probe.model.verdict import METHODS, VerdictKind

Category = Literal["block", "throttle", "outage", "noise", "partial", "clean"]
Scope = Literal["isp", "global"]
Table = Literal["filter", "mangle", "nat"]
Family = Literal["ipv4", "ipv6"]

CATALOGUE_RESOURCE = "scenarios/catalogue.toml"
# The chains a scenario may append to, per table (censornet.lab.CENSOR_CHAINS).
CHAINS: dict[Table, tuple[str, ...]] = {
    "filter": ("BP_FWD", "BP_IN", "BP_OUT"),
    "mangle": ("BP_MANGLE_PRE", "BP_MANGLE_POST"),
    "nat": ("BP_NAT_PRE",),
}
# Placeholders usable in iptables rules: lab addresses, comma-joined where there are several.
ADDRESSES: dict[str, str] = {
    "X_IPS": ",".join(topology.X_IPS),
    "X_MEDIA_IPS": ",".join(topology.X_MEDIA_IPS),
    "X_CDN_ALT_IP": topology.X_CDN_ALT_IP,
    "X_ALL_IPS": ",".join((*topology.X_IPS, *topology.X_MEDIA_IPS, topology.X_CDN_ALT_IP)),
    "CANARY_IPS": ",".join(topology.CANARY_IPS),
    "YOUTUBE_IPS": ",".join(
        sorted({ip for name in topology.SITES["youtube"] for ip in topology.ZONE[name]})
    ),
    "BLOCKPAGE_IP": topology.BLOCKPAGE_IP,
    "MITM_IP": topology.MITM_IP,
    "AUTH_DNS_IP": topology.AUTH_DNS_IP,
    "CONTROL_RESOLVER_IP": topology.CONTROL_RESOLVER_IP,
    "CTRL_IP": topology.vantage(topology.CTRL).address,
    "HELPER_PORT": str(topology.HELPER_PORT),
}
ISP_POLICY_FIELDS = frozenset(
    {"resolver", "http_proxy", "tls_proxy", "inject", "rst_inject", "quic_filter"}
)
INET_POLICY_FIELDS = frozenset({"authoritative", "control_resolver", "web"})
_RULE = re.compile(r"^-A (?P<chain>\S+) ")
_HASHLIMIT_NAME = re.compile(r"--hashlimit-name\s+(\S+)")
MAX_HASHLIMIT_NAME = 10  # the kernel allows 15; censornet.scenario appends "-<generation>"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_NULL_METHOD: frozenset[VerdictKind] = frozenset({"reachable", "inconclusive"})


class CatalogueError(ValueError):
    """The catalogue is malformed; the message names the scenario and the key."""


def _as_tuple(value: object) -> object:
    return (value,) if isinstance(value, str) else value


class Expectation(FrozenModel):
    """What a probe must conclude for endpoints whose URL matches ``target`` (an fnmatch glob).

    ``verdict`` and ``method`` are one value or a list of acceptable ones; no method means null
    (reachable, inconclusive). A result is accepted when its verdict is listed and its method is
    listed (or null for reachable/inconclusive).
    """

    target: str
    verdict: tuple[VerdictKind, ...] = Field(min_length=1)
    method: tuple[str, ...] = ()
    # The endpoint's HTTP/3 result (its ``http3`` object), for endpoints the platform file marks
    # http3; no http3_verdict means the scenario says nothing about it.
    http3_verdict: tuple[VerdictKind, ...] = ()
    http3_method: tuple[str, ...] = ()
    # Each family's verdict, for a scenario that treats IPv4 and IPv6 differently: the result
    # must then carry ``families`` with these verdicts.
    families: dict[Family, VerdictKind] | None = None

    @field_validator("verdict", "method", "http3_verdict", "http3_method", mode="before")
    @classmethod
    def one_or_many(cls, value: object) -> object:
        return _as_tuple(value)

    @model_validator(mode="after")
    def check_methods(self) -> Expectation:
        _check_pair(self.verdict, self.method)
        if self.http3_method and not self.http3_verdict:
            raise ValueError("http3_method needs http3_verdict")
        _check_pair(self.http3_verdict, self.http3_method)
        return self

    def matches(self, target_url: str) -> bool:
        """Whether this expectation covers ``target_url``."""
        return fnmatch.fnmatchcase(target_url, self.target)

    def accepts(
        self, verdict: str, method: str | None, families: Mapping[str, str] | None = None
    ) -> bool:
        """Whether a probe result (verdict, method, each family's verdict) meets this
        expectation."""
        if self.families is not None and dict(families or {}) != self.families:
            return False
        return _accepts(self.verdict, self.method, verdict, method)

    def accepts_http3(self, http3: dict[str, object] | None) -> bool:
        """Whether a result's ``http3`` object (None: absent) meets this expectation."""
        if not self.http3_verdict:
            return True
        if http3 is None:
            return False
        method = http3.get("method")
        return _accepts(
            self.http3_verdict,
            self.http3_method,
            str(http3.get("verdict")),
            None if method is None else str(method),
        )


def _check_pair(verdicts: tuple[VerdictKind, ...], methods: tuple[str, ...]) -> None:
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"method {method!r} is not in the verdict vocabulary")
        if METHODS[method] not in verdicts:
            raise ValueError(f"method {method!r} goes with verdict {METHODS[method]!r}")
    for verdict in verdicts:
        if verdict not in _NULL_METHOD and not any(METHODS[m] == verdict for m in methods):
            raise ValueError(f"verdict {verdict!r} needs a method")


def _accepts(
    verdicts: tuple[VerdictKind, ...], methods: tuple[str, ...], verdict: str, method: str | None
) -> bool:
    if verdict not in verdicts:
        return False
    if verdict in _NULL_METHOD:
        return method is None
    return method in methods


class IptablesRules(FrozenModel):
    """iptables-restore lines per table (``-A BP_... ...``), one rule a line."""

    filter: str = ""
    mangle: str = ""
    nat: str = ""

    @model_validator(mode="after")
    def check_rules(self) -> IptablesRules:
        for table, chains in CHAINS.items():
            for line in _lines(getattr(self, table)):
                match = _RULE.match(line)
                if match is None or match["chain"] not in chains:
                    raise ValueError(
                        f"{table}: {line!r}: a rule must start with -A and one of "
                        + ", ".join(chains)
                    )
                hashlimit = _HASHLIMIT_NAME.search(line)
                if hashlimit and len(hashlimit[1]) > MAX_HASHLIMIT_NAME:
                    raise ValueError(
                        f"{table}: hashlimit name {hashlimit[1]!r}: at most "
                        f"{MAX_HASHLIMIT_NAME} characters (the applier adds a suffix)"
                    )
                for name in _PLACEHOLDER.findall(line):
                    if name not in ADDRESSES:
                        raise ValueError(
                            f"{table}: unknown placeholder {{{name}}}; known: "
                            + ", ".join(ADDRESSES)
                        )
        return self

    def rules(self, table: Table) -> list[str]:
        """The rules of ``table`` with placeholders replaced by lab addresses."""
        return [
            _PLACEHOLDER.sub(lambda m: ADDRESSES[m[1]], line)
            for line in _lines(getattr(self, table))
        ]


class Scenario(FrozenModel):
    """One censorship (or noise) scenario: how to apply it and what the probe must conclude.

    ``families`` says which address families its iptables rules apply to: both by default, as a
    national censor's usually do (the rules' IPv6 form is derived, ``censornet.ip6tables``), except
    that a scenario whose rules have no IPv6 form in the lab applies over IPv4 only and leaves the
    IPv6 path open (``ipv6_applied``). Policies (resolvers, web servers) and ``tc`` act on both.
    """

    id: str
    title: str
    description: str
    category: Category
    scope: Scope
    # The platforms the lab tests measure under this scenario (`blockprobe run --platform ...`);
    # `blockprobe lab check` always measures X, whose endpoints every expectation covers too.
    platforms: tuple[str, ...] = Field(default=("x",), min_length=1)
    families: tuple[Family, ...] = Field(default=("ipv4", "ipv6"), min_length=1)
    iptables: IptablesRules = Field(default_factory=IptablesRules)
    tc: tuple[str, ...] = ()  # run per vantage-facing interface of the ISP, ``{dev}`` replaced
    policy: Policy = Field(default_factory=Policy)
    expect: tuple[Expectation, ...] = Field(min_length=1)
    expect_not_blocked: bool = False

    @field_validator("id")
    @classmethod
    def check_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"{value!r} is not kebab-case")
        return value

    @field_validator("tc")
    @classmethod
    def check_tc(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for command in value:
            if "{dev}" not in command or command.split()[0] not in ("qdisc", "class", "filter"):
                raise ValueError(
                    f"{command!r}: a tc command is 'qdisc|class|filter ... {{dev}} ...'"
                )
        return value

    @model_validator(mode="after")
    def check_scenario(self) -> Scenario:
        if self.expect[-1].target != "*":
            raise ValueError('expect: the last entry must have target = "*"')
        used = {name for name in Policy.model_fields if getattr(self.policy, name)}
        wrong = used & (INET_POLICY_FIELDS if self.scope == "isp" else ISP_POLICY_FIELDS)
        if wrong:
            raise ValueError(
                f"policy: {', '.join(sorted(wrong))} cannot be used with scope {self.scope!r}"
            )
        if self.tc and self.scope != "isp":
            raise ValueError("tc: only scope 'isp' shapes (the ISP's vantage-facing interfaces)")
        if self.expect_not_blocked and any(
            v in ("blocked", "throttled") for e in self.expect for v in e.verdict
        ):
            raise ValueError("expect_not_blocked: yet an expectation allows blocked or throttled")
        return self

    @model_validator(mode="after")
    def check_families(self) -> Scenario:
        if self.families == ("ipv6",) and not self.ipv6_applied:
            raise ValueError("families = ['ipv6']: yet a rule has no IPv6 form in the lab")
        return self

    @property
    def ipv6_applied(self) -> bool:
        """Whether the iptables rules are applied over IPv6 too (or only there)."""
        if "ipv6" not in self.families:
            return False
        try:
            for table in CHAINS:
                for rule in self.iptables.rules(table):
                    ipv6_rule(rule)
        except NoIpv6Form:
            return False
        return True

    def rules_for(self, table: Table, family: Family) -> list[str]:
        """The iptables-restore lines of ``table`` for ``family`` (none where it does not apply)."""
        if family == "ipv4":
            return self.iptables.rules(table) if "ipv4" in self.families else []
        if not self.ipv6_applied:
            return []
        return [ipv6_rule(rule) for rule in self.iptables.rules(table)]

    def expected_for(self, target_url: str) -> Expectation:
        """The first expectation whose glob matches ``target_url`` (the list ends with ``*``)."""
        for expectation in self.expect:
            if expectation.matches(target_url):
                return expectation
        raise LookupError(f"scenario {self.id!r} has no expectation for {target_url!r}")

    def policy_for(self, role: str) -> Policy:
        """The part of this scenario's policy that the servers of ``role`` follow."""
        fields = INET_POLICY_FIELDS if role == topology.INET else ISP_POLICY_FIELDS
        return Policy(**{name: getattr(self.policy, name) for name in fields})


def parse_catalogue(text: str) -> list[Scenario]:
    """Validate catalogue TOML ``text`` (raises CatalogueError naming the scenario and key)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"catalogue: {exc}") from None
    extra = set(data) - {"scenario"}
    if extra:
        raise CatalogueError(f"catalogue: unknown top-level keys {sorted(extra)}; use [[scenario]]")
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    for index, raw in enumerate(data.get("scenario", []), start=1):
        label = f"scenario {raw.get('id', f'#{index}')!r}"
        try:
            scenario = Scenario.model_validate(raw)
        except ValidationError as exc:
            raise CatalogueError(f"{label}: {_describe(exc)}") from None
        if scenario.id in seen:
            raise CatalogueError(f"{label}: id: duplicate id")
        seen.add(scenario.id)
        scenarios.append(scenario)
    if not scenarios:
        raise CatalogueError("catalogue: no [[scenario]] tables")
    return scenarios


@cache
def _packaged() -> tuple[Scenario, ...]:
    try:
        resource = resources.files("censornet").joinpath(CATALOGUE_RESOURCE)
        text = resource.read_text(encoding="utf-8")
    except (NotADirectoryError, FileNotFoundError):
        # An editable install made before censornet had an __init__.py maps it as a namespace
        # package with a non-directory path entry, which importlib.resources refuses.
        text = (Path(__file__).parent / CATALOGUE_RESOURCE).read_text(encoding="utf-8")
    return tuple(parse_catalogue(text))


def load_catalogue() -> list[Scenario]:
    """Every scenario of the packaged catalogue, in file order."""
    return list(_packaged())


def scenario_ids() -> list[str]:
    """The ids of the packaged catalogue, in file order."""
    return [s.id for s in _packaged()]


def get_scenario(scenario_id: str) -> Scenario:
    """The scenario called ``scenario_id`` (raises KeyError naming the known ids)."""
    for scenario in _packaged():
        if scenario.id == scenario_id:
            return scenario
    raise KeyError(f"unknown scenario {scenario_id!r}; known: {', '.join(scenario_ids())}")


def _lines(text: str) -> list[str]:
    stripped = (line.strip() for line in text.splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


def _describe(exc: ValidationError) -> str:
    errors = exc.errors()
    locations = [tuple(error["loc"]) for error in errors]
    parts = []
    for error in errors:
        loc = tuple(error["loc"])
        # A list that failed inside is also reported "too short": the inner error says why.
        if error["type"] == "too_short" and any(o[: len(loc)] == loc != o for o in locations):
            continue
        where = ".".join(str(p) for p in loc) or "(scenario)"
        message: Any = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
