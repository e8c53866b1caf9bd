"""Platform definitions: one TOML file per platform (``config/platforms/x.toml``), as frozen models.

A platform file names the platform's domains (redirects to them and their subdomains are the
platform's own), the certificate names it is expected to present, its ASNs and the endpoints to
measure. Dropping a file into a platforms directory adds a platform; a later directory overrides
an earlier one by name. ``Platform.plans()`` turns a platform into the ``EndpointPlan``s the flows
execute.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
)

from probe.configfile import ConfigError, KeyedValueError, Problem, load_toml
from probe.flows.plan import EndpointPlan
from probe.model.base import FrozenModel


def _builtin_dir() -> Path:
    """The shipped platform files: the source tree's, or the installed copy under share/."""
    source = Path(__file__).resolve().parent.parent / "config" / "platforms"
    installed = Path(sys.prefix) / "share" / "blockprobe" / "platforms"
    return source if source.is_dir() or not installed.is_dir() else installed


BUILTIN_DIR = _builtin_dir()

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = rf"(?:{_LABEL}\.)*{_LABEL}"
DOMAIN_PATTERN = rf"^{_DOMAIN}$"
CERT_NAME_PATTERN = rf"^(?:\*\.)?{_DOMAIN}$"


def check_url(value: str) -> str:
    """Accept an absolute ``http``/``https`` URL with a host and no credentials."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{value!r} carries credentials; remove them")
    if port == 0:
        raise ValueError(f"{value!r} has port 0")
    if any(c.isspace() for c in value):
        raise ValueError(f"{value!r} contains whitespace")
    return value


Url = Annotated[str, AfterValidator(check_url)]
Domain = Annotated[str, Field(pattern=DOMAIN_PATTERN, max_length=253)]
CertName = Annotated[str, Field(pattern=CERT_NAME_PATTERN, max_length=255)]


def host_of(url: str) -> str:
    """The lower-case host name of ``url``."""
    return (urlsplit(url).hostname or "").lower()


def within(host: str, domains: Iterable[str]) -> bool:
    """Whether ``host`` is one of ``domains`` or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in domains)


class EndpointConfig(FrozenModel):
    """One endpoint: the URL fetched, and optional objects for budgeted transfers on its host."""

    url: Url
    throughput_url: Url | None = None  # a large object to stream (download throughput)
    upload_url: Url | None = None  # where a budgeted POST body may be sent (upload throughput)
    http3: bool = False  # the host also answers HTTP/3 over QUIC (UDP 443): measure that too


class Platform(FrozenModel):
    """A platform file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    title: str = Field(min_length=1)
    asns: tuple[Annotated[int, Field(ge=1, le=4294967295)], ...] = ()
    domains: tuple[Domain, ...] = Field(min_length=1)
    cert_names: tuple[CertName, ...] = ()
    endpoints: tuple[EndpointConfig, ...] = Field(min_length=1)
    throughput: bool = False  # may the probe stream ``throughput_url`` objects?
    upload: bool = False  # may the probe POST a budgeted body to ``upload_url``?

    @field_validator("endpoints")
    @classmethod
    def _hosts_are_the_platforms(
        cls, endpoints: tuple[EndpointConfig, ...], info: ValidationInfo
    ) -> tuple[EndpointConfig, ...]:
        domains = info.data.get("domains")
        if domains is None:  # domains itself was refused; that error is reported
            return endpoints
        seen: set[str] = set()
        for i, endpoint in enumerate(endpoints):
            for key in ("url", "throughput_url", "upload_url"):
                url = getattr(endpoint, key)
                if url is not None and not within(host_of(url), domains):
                    raise KeyedValueError(
                        (i, key),
                        f"host {host_of(url)!r} is not among the platform's domains "
                        f"({', '.join(domains)})",
                    )
            if endpoint.http3 and urlsplit(endpoint.url).scheme != "https":
                raise KeyedValueError((i, "http3"), "only an https:// endpoint can speak HTTP/3")
            if endpoint.url in seen:
                raise KeyedValueError((i, "url"), f"{endpoint.url!r} is listed twice")
            seen.add(endpoint.url)
        return endpoints

    def owns(self, host: str) -> bool:
        """Whether ``host`` is one of the platform's domains or a subdomain of one."""
        return within(host.lower(), self.domains)

    def plans(self) -> tuple[EndpointPlan, ...]:
        """The endpoints as plans for the flows (transfers only where the flags allow them)."""
        return tuple(
            EndpointPlan(
                platform=self.name,
                url=e.url,
                domain=host_of(e.url),
                platform_domains=self.domains,
                throughput_url=e.throughput_url if self.throughput else None,
                upload_url=e.upload_url if self.upload else None,
                cert_names=self.cert_names,
                no_large_object=self.throughput
                and e.throughput_url is None
                and e.upload_url is None
                and e.url.startswith("https://"),
                http3=e.http3,
            )
            for e in self.endpoints
        )


class UnknownPlatformError(LookupError):
    """A platform was asked for by name and no platform file defines it."""

    def __init__(self, names: Sequence[str], known: Iterable[str]) -> None:
        self.names = tuple(names)
        self.known = tuple(sorted(known))
        which = ", ".join(repr(n) for n in self.names)
        plural = "s" if len(self.names) > 1 else ""
        super().__init__(
            f"unknown platform{plural} {which}; known: {', '.join(self.known) or '(none)'}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def load_platform(path: Path) -> Platform:
    """The platform defined by the file at ``path`` (its ``name`` must be the file's stem)."""
    platform = load_toml(Platform, path)
    if platform.name != path.stem:
        raise ConfigError.single(
            path, "name", f"{platform.name!r} does not match the file name {path.stem!r}"
        )
    return platform


def load_platforms(directories: Iterable[Path]) -> dict[str, Platform]:
    """Every ``*.toml`` platform in ``directories``, by name; later directories win."""
    platforms: dict[str, Platform] = {}
    problems: list[Problem] = []
    for directory in directories:
        if not directory.is_dir():
            raise ConfigError.single(directory, "(directory)", "no such platforms directory")
        for path in sorted(directory.glob("*.toml")):
            try:
                platforms[path.stem] = load_platform(path)
            except ConfigError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return platforms


def select(platforms: dict[str, Platform], names: Sequence[str]) -> list[Platform]:
    """The platforms called ``names``, in order; all of them (sorted) when ``names`` is empty."""
    if not names:
        return [platforms[n] for n in sorted(platforms)]
    unknown = [n for n in names if n not in platforms]
    if unknown:
        raise UnknownPlatformError(unknown, platforms)
    return [platforms[n] for n in dict.fromkeys(names)]
