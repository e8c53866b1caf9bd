"""What to measure and how: the plan a flow follows for one endpoint, built from the config.

These are plain frozen dataclasses (not wire formats): ``probe.config`` builds them from the TOML
files, ``probe.flows`` executes them, ``probe.classify`` reads them for context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Timeouts:
    """Per-step time limits, in seconds, applied by the caller around each step."""

    dns: float = 3.0
    tcp_connect: float = 4.0
    tls_handshake: float = 4.0
    http_total: float = 8.0
    throughput: float = 2.5  # wall-clock budget of one throughput transfer


@dataclass(frozen=True)
class EndpointPlan:
    """One endpoint of a platform, with what the platform file says about it."""

    platform: str
    url: str  # e.g. "https://twitter.com/" or "http://x.com/"
    domain: str
    platform_domains: tuple[str, ...]  # redirects to these (and subdomains) are the platform's own
    throughput_url: str | None = None  # a large object on this endpoint's host to stream
    upload_url: str | None = None  # where a budgeted POST body may be sent
    cert_names: tuple[str, ...] = ()  # names the platform's certificates are expected to carry
    # The platform measures throughput but this https host has no large object to stream: its
    # verdict can show a throttle only through the platform's other endpoints.
    no_large_object: bool = False
    # The platform file says this https endpoint speaks HTTP/3: the flow adds a QUIC handshake
    # (and its controls) beside the TCP path; its result is the endpoint's ``http3`` verdict.
    http3: bool = False


NO_LARGE_OBJECT_NOTE = (
    "this host has no large object to stream, so a throttle cannot show here: "
    "the platform's throughput verdict rests on its endpoints that have one"
)


@dataclass(frozen=True)
class MeasureSettings:
    """How to measure: resolvers, trust, controls, limits. Built from the probe config."""

    system_resolver: str | None = None  # an IP; None means the one /etc/resolv.conf names
    control_resolvers: tuple[str, ...] = ("https://dns.google/dns-query",)  # DoH URLs or udp:IP
    ca_file: Path | None = None  # trust store for TLS; None means the system store
    benign_sni: str = "example.org"  # SNI for the same-IP control handshake
    canaries: tuple[str, ...] = ("https://example.org/",)  # URLs on the same path
    throughput_canary: str | None = None  # a large object elsewhere: the run's throughput control
    upload_canary: str | None = None  # where the run's upload control POSTs its body
    helper_url: str | None = None  # control vantage ("test helper"); None disables it
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: int = 1  # extra tries on a fresh connection before a failure counts
    throughput_bytes: int = 256 * 1024  # byte budget of one throughput transfer
    upload_bytes: int = 64 * 1024  # byte budget of one upload transfer
    page_bytes: int = 32 * 1024  # byte budget of one endpoint's page (all its tries)
    concurrency: int = 16  # endpoints measured at once
    user_agent: str = "blockprobe/0.1"
    packet_evidence: bool = True  # packet-level evidence after a failure, when raw sockets allow
    ipv6: bool | None = None  # measure over IPv6 too; None: look the vantage's route up


def transfer_bytes(settings: MeasureSettings, *, up: bool, control: bool) -> int:
    """The byte budget of one endpoint transfer, or of its same-path control.

    A download's control (benign SNI, or the benign name as Host) only has to show the path's
    rate beside the endpoint's own transfer, so it gets half the bytes: a rate is judged from the
    samples, not from the total. An upload's control gets the whole (small) upload budget: a
    shorter upload would still be leaving slow start when it ends.
    """
    if up:
        return settings.upload_bytes
    return settings.throughput_bytes // 2 if control else settings.throughput_bytes


def other_family_page(settings: MeasureSettings) -> int:
    """The most the fetch over the second address family may read of the endpoint's page budget
    (what the first family left): a quarter of it, enough for a blockpage or the platform's page
    head (throttling is judged on the first family)."""
    return settings.page_bytes // 4
