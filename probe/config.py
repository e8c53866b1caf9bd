"""The probe's configuration file (``probe.toml``): what to measure, with which controls, how.

``load_config`` reads and validates the file (frozen pydantic models, unknown keys refused, every
problem reported with the file and the key); ``ProbeConfig.to_settings`` gives the flows their
``MeasureSettings``. Relative paths in the file are relative to the file's directory. Every key is
documented in docs/config.md and shown in config/probe.example.toml.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
)

from probe import __version__
from probe.configfile import ConfigError, KeyedValueError, load_toml
from probe.flows.plan import MeasureSettings, Timeouts
from probe.model.base import FrozenModel
from probe.platforms import (
    BUILTIN_DIR,
    Domain,
    Platform,
    Url,
    check_url,
    load_platforms,
    select,
)
from probe.steps import resolvers

DEFAULT_CONTROL_RESOLVERS = ("https://dns.google/dns-query", "https://cloudflare-dns.com/dns-query")
DEFAULT_CANARIES = ("https://example.org/", "https://example.com/")
# A large object on an unrelated site, downloaded once per run as the throughput control: a
# speed-test endpoint that serves as many bytes as asked (the transfer stops at its byte budget).
DEFAULT_THROUGHPUT_CANARY = "https://speed.cloudflare.com/__down?bytes=1048576"
# Where the run's upload control sends its body: the same speed test's upload endpoint.
DEFAULT_UPLOAD_CANARY = "https://speed.cloudflare.com/__up"
MiB = 1024 * 1024
KiB = 1024


def _not_an_address(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return value
    raise ValueError("a vantage label, never an IP address")


def _resolver_address(value: str) -> str:
    """Accept ``IP``, ``IP:PORT``, ``[IPv6]:PORT``, or a path to a resolv.conf-style file."""
    if "/" in value:
        return value
    try:
        resolvers.system_resolver(value)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is neither IP[:PORT] nor a path to a resolv.conf file ({exc})"
        ) from None
    return value


def _control_resolver(value: str) -> str:
    """Accept what ``probe.steps.resolvers.parse_resolver`` accepts (DoH URL, udp:/tcp:/tls:IP)."""
    if value.startswith("https://"):
        check_url(value.partition("#")[0])
    try:
        resolvers.parse_resolver(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return value


Seconds = Annotated[float, Field(gt=0.0, le=300.0)]


class TimeoutsConfig(FrozenModel):
    """Per-step time limits in seconds."""

    dns: Seconds = 3.0
    tcp_connect: Seconds = 4.0
    tls_handshake: Seconds = 4.0
    http_total: Seconds = 8.0
    throughput: Seconds = 2.5
    helper: Seconds | None = None  # the control vantage's answer; None: the sum of the above

    def helper_limit(self, with_throughput: bool) -> float:
        """How long to wait for the control vantage's observations of one endpoint."""
        if self.helper is not None:
            return self.helper
        steps = self.dns + self.tcp_connect + self.tls_handshake + self.http_total
        return steps + (self.throughput if with_throughput else 0.0) + 1.0


class BudgetConfig(FrozenModel):
    """Data limits, in bytes."""

    run_bytes: int = Field(default=MiB, ge=0)  # all transfers of one run
    throughput_bytes: int = Field(default=256 * KiB, ge=0)  # one throughput transfer
    upload_bytes: int = Field(default=64 * KiB, ge=0)  # one upload transfer
    page_bytes: int = Field(default=32 * KiB, ge=1024)  # one endpoint's page body, all tries


class VantageConfig(FrozenModel):
    """Coarse, user-set labels for where the probe runs; never its address."""

    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    asn: int | None = Field(default=None, ge=0, le=4294967295)
    network: Annotated[str, AfterValidator(_not_an_address)] | None = Field(
        default=None, min_length=1, max_length=64
    )


class ProbeConfig(FrozenModel):
    """The probe configuration file."""

    builtin_platforms: bool = True
    platform_dirs: tuple[Path, ...] = ()
    platforms: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    system_resolver: Annotated[str, AfterValidator(_resolver_address)] | None = None
    control_resolvers: tuple[Annotated[str, AfterValidator(_control_resolver)], ...] = Field(
        default=DEFAULT_CONTROL_RESOLVERS, min_length=1
    )
    helper_url: Url | None = None
    helper_throughput: bool = False
    ca_file: Path | None = None
    canaries: tuple[Url, ...] = Field(default=DEFAULT_CANARIES, min_length=1)
    throughput_canary: Url | None = DEFAULT_THROUGHPUT_CANARY
    upload_canary: Url | None = DEFAULT_UPLOAD_CANARY
    benign_sni: Domain = "example.org"
    retries: int = Field(default=1, ge=0, le=5)
    # Measure over IPv6 too: "auto" when this vantage has an IPv6 route (looked up once a run).
    ipv6: Literal["auto", "on", "off"] = "auto"
    concurrency: int = Field(default=16, ge=1, le=256)
    user_agent: str = Field(default=f"blockprobe/{__version__}", min_length=1)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    vantage: VantageConfig = Field(default_factory=VantageConfig)
    # The daemon's own table, validated by probe.daemon.settings.DaemonConfig (docs/daemon.md).
    daemon: dict[str, Any] = Field(default_factory=dict)

    _source: str = PrivateAttr(default="(defaults)")

    @field_validator("platform_dirs", mode="after")
    @classmethod
    def _dirs_relative_to_file(
        cls, value: tuple[Path, ...], info: ValidationInfo
    ) -> tuple[Path, ...]:
        resolved = tuple(_resolve(p, info) for p in value)
        for i, path in enumerate(resolved):
            if not path.is_dir():
                raise KeyedValueError((i,), f"{str(path)!r} is not a directory")
        return resolved

    @field_validator("ca_file", mode="after")
    @classmethod
    def _ca_relative_to_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = _resolve(value, info)
        if not path.is_file():
            raise ValueError(f"{str(path)!r} is not a file")
        return path

    @field_validator("system_resolver", mode="after")
    @classmethod
    def _resolv_conf_relative_to_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or "/" not in value:
            return value
        return str(_resolve(Path(value), info))

    @property
    def source(self) -> str:
        """The file this configuration came from, or ``(defaults)``."""
        return self._source

    def with_ca_file(self, path: Path) -> ProbeConfig:
        """This configuration with another CA file (``--ca-file`` or ``BLOCKPROBE_CA_FILE``)."""
        if not path.is_file():
            raise ConfigError.single(path, "ca_file", "no such file")
        updated = self.model_copy(update={"ca_file": path.resolve()})
        updated._source = self._source
        return updated

    def platform_directories(self) -> tuple[Path, ...]:
        """The platforms directories searched, in order (later ones override by name)."""
        return ((BUILTIN_DIR,) if self.builtin_platforms else ()) + self.platform_dirs

    def load_platforms(self) -> dict[str, Platform]:
        """Every platform the configured directories define, by name."""
        return load_platforms(self.platform_directories())

    def chosen_platforms(self, names: tuple[str, ...] | list[str] = ()) -> list[Platform]:
        """The platforms to run: ``names`` if given, else ``platforms``, else all of them."""
        return select(self.load_platforms(), list(names) or list(self.platforms))

    def system_resolver_address(self) -> str | None:
        """The system resolver's IP: as configured, read from a resolv.conf file, or None."""
        value = self.system_resolver
        if value is None or "/" not in value:
            return value
        try:
            text = Path(value).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfigError.single(
                self._source, "system_resolver", f"cannot read {value!r}: {exc.strerror}"
            ) from None
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split(";", 1)[0].split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                return fields[1].split("%")[0]
        raise ConfigError.single(self._source, "system_resolver", f"{value!r} names no nameserver")

    def to_settings(self) -> MeasureSettings:
        """The measurement settings the flows consume."""
        t = self.timeouts
        return MeasureSettings(
            system_resolver=self.system_resolver_address(),
            control_resolvers=self.control_resolvers,
            ca_file=self.ca_file,
            benign_sni=self.benign_sni,
            canaries=self.canaries,
            throughput_canary=self.throughput_canary,
            upload_canary=self.upload_canary,
            helper_url=self.helper_url,
            timeouts=Timeouts(
                dns=t.dns,
                tcp_connect=t.tcp_connect,
                tls_handshake=t.tls_handshake,
                http_total=t.http_total,
                throughput=t.throughput,
            ),
            retries=self.retries,
            throughput_bytes=self.budget.throughput_bytes,
            upload_bytes=self.budget.upload_bytes,
            page_bytes=self.budget.page_bytes,
            concurrency=self.concurrency,
            user_agent=self.user_agent,
            ipv6=None if self.ipv6 == "auto" else self.ipv6 == "on",
        )


def _resolve(path: Path, info: ValidationInfo) -> Path:
    path = path.expanduser()
    base = (info.context or {}).get("base")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def load_config(path: Path | None = None) -> ProbeConfig:
    """The configuration in the file at ``path``, or the defaults when ``path`` is None."""
    if path is None:
        return ProbeConfig()
    config = load_toml(ProbeConfig, path, base=path.resolve().parent)
    config._source = str(path)
    return config
