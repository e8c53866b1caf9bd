"""The classifier's scenario table: one named Case per censorship pattern or false positive.

Each case is recorded-style observations (tests/probe/observation_builders.py) with the verdict
and method the contract (shared/spec/verdicts.md) expects. Every bug fix adds a case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from probe.flows.plan import EndpointPlan
from probe.model.failures import Failure
from probe.model.measurement import Observations
from probe.model.observations import HTTPObservation, ThroughputObservation
from probe.model.verdict import VerdictKind
from tests.probe.observation_builders import (
    BLOCKPAGE_IP,
    CANARY_IP,
    CDN_IP,
    TWITTER,
    X_HTTP,
    X_IP,
    X_IP2,
    Item,
    benign,
    benign_answer,
    canaries_down,
    canaries_ok,
    control_dns,
    dns,
    http,
    obs,
    resolved,
    tcp,
    tls,
    transfer,
    twice,
    vantage_ok,
    x_clean,
    x_http_clean,
)

F = Failure
BLOCKPAGE_TITLE = "Surf Safely! This site is restricted"
HTTP_VANTAGE = vantage_ok("x.com", "http://x.com/")


@dataclass(frozen=True)
class Case:
    """One scenario: what was observed, and what the classifier must say."""

    name: str
    plan: EndpointPlan
    local: Observations
    control: Observations | None
    canaries: dict[str, Observations] = field(default_factory=dict)
    verdict: VerdictKind = "reachable"
    method: str | None = None
    one_shot: bool = False  # a measurement made elsewhere with one try per step (OONI's)


def _x(*items: Item | Iterable[Item], ip: str = X_IP) -> Observations:
    """twitter.com resolved consistently, TCP ok to ``ip``, then ``items``."""
    return obs(*resolved("twitter.com", ip), tcp(ip), *items)


def _xh(*items: Item | Iterable[Item]) -> Observations:
    """x.com resolved consistently, TCP ok on port 80, then ``items``."""
    return obs(*resolved("x.com"), tcp(X_IP, 80), *items)


def _sampled(
    samples: Iterable[tuple[float, int]],
    *,
    read: int,
    seconds: float,
    completed: bool = False,
    failure: Failure | None = None,
    direction: str = "down",
) -> ThroughputObservation:
    """A platform transfer with recorded samples (wire bytes) and ``read`` application bytes."""
    return ThroughputObservation(
        url="https://twitter.com/large",
        direction="up" if direction == "up" else "down",
        ip=X_IP,
        sni="twitter.com",
        bytes=read,
        seconds=seconds,
        ttfb=0.05,
        samples=tuple(samples),
        completed=completed,
        failure=failure,
        t0=1.0,
        t=1.0 + seconds,
    )


def _policed(last_gap: float = 0.0) -> tuple[tuple[float, int], ...]:
    """The lab's 16 kB/s policer seen on the wire: a 42 KB burst, then ~2.9 KB every 0.2 s with
    the retransmission gaps in between (the sample after each arrival repeats it), and
    ``last_gap`` s of silence at the end (a retransmission back-off)."""
    samples = [(0.1, 42169), (0.2, 42169), (0.3, 42169)]
    count = 42169
    t = 0.3
    while t < 2.4 - last_gap:
        t = round(t + 0.1, 2)
        count += 2896 if round(t * 10) % 2 == 0 else 0
        samples.append((t, count))
    while t < 2.4:
        t = round(t + 0.1, 2)
        samples.append((t, count))
    return tuple(samples)


def _stalled_page(url: str) -> HTTPObservation:
    """A fetch whose status line and first bytes came, then nothing until the deadline."""
    return HTTPObservation(
        url=url,
        ip=X_IP,
        status=200,
        title=None,
        body_length=1200,
        body_truncated=True,
        failure=Failure.TIMEOUT,
        t0=0.03,
        t=8.03,
    )


def _page_stopped(url: str) -> HTTPObservation:
    """A fetch whose body came at a good pace for 13 KB, then nothing for 3.7 s until the
    deadline (sni-throttle-stall: the connection freezes after about 16 KB)."""
    samples = tuple((round(0.1 * i, 1), 3300 * i) for i in range(5))
    return _stalled_page(url).model_copy(
        update={"body_length": 13200, "body_samples": samples, "body_seconds": 4.1}
    )


def _page_arriving(url: str) -> HTTPObservation:
    """Recorded-style under the 16 kB/s policer: a 240 KB page whose body arrives a TLS record
    (16 KiB) about every second until the 4 s deadline, the last one 0.3 s before it."""
    samples = ((0.0, 0), (0.1, 32768), (1.1, 49152), (2.0, 65536), (3.1, 81920), (3.8, 98304))
    return _stalled_page(url).model_copy(
        update={"body_length": 98304, "body_samples": samples, "body_seconds": 4.1}
    )


def _page_one_burst(url: str) -> HTTPObservation:
    """Recorded in the lab (sni-throttle-shape, t.co): one 16 KB burst at once, then nothing
    for the 0.7 s left before the deadline (a shaper's deep queue)."""
    return _stalled_page(url).model_copy(
        update={
            "body_length": 16123,
            "body_samples": ((0.0, 0), (0.002, 16123)),
            "body_seconds": 0.7,
        }
    )


def _benign_transfer_refused() -> ThroughputObservation:
    """The same-IP control transfer with the benign SNI, refused by the server's TLS alert."""
    return ThroughputObservation(
        url="https://twitter.com/large",
        ip=X_IP,
        sni="example.org",
        control=True,
        seconds=0.02,
        failure=F.SSL_FAILED_HANDSHAKE,
        t0=1.0,
        t=1.02,
    )


def _benign_transfer_page(size: int, status: int = 200) -> ThroughputObservation:
    """The same-IP benign-SNI control transfer answered with a page: the server's default page
    (nginx's is 615 bytes) or an error page (not 2xx), fast."""
    return ThroughputObservation(
        url="https://twitter.com/large",
        ip=X_IP,
        sni="example.org",
        control=True,
        bytes=size,
        seconds=0.004,
        ttfb=0.003,
        samples=((0.004, size),),
        completed=200 <= status < 300,
        status=status,
        t0=1.0,
        t=1.004,
    )


def _unfinished(t: ThroughputObservation) -> ThroughputObservation:
    """``t`` cut by its time budget while still moving (not completed, no failure)."""
    return t.model_copy(update={"completed": False})


def _canary_transfer(kbps: float, **options: float | str) -> dict[str, Observations]:
    """Working canaries plus the run's canary control transfer at ``kbps`` (same path)."""
    canaries = canaries_ok()
    download = transfer(kbps, control=True, **options).model_copy(
        update={"url": "https://example.org/large-object", "ip": None, "status": 200}
    )
    canaries["example.org"] = canaries["example.org"].model_copy(update={"throughput": (download,)})
    return canaries


def _tls_block(failure: Failure) -> Observations:
    return _x(twice(tls(X_IP, failure=failure)), benign(X_IP))


# What real servers answer for a name they do not host: every one is a working benign-SNI control.
SERVER_ANSWERS = ("default_cert", "own_cert", "alert:unrecognized_name", "alert:handshake_failure")
# What a path that does not carry TLS to the address gives: every one is a failed control.
NO_TLS_ANSWERS = (F.CONNECTION_RESET, F.TIMEOUT, F.EOF)


def _tls_against(failure: Failure, answer: str) -> Observations:
    """The platform SNI failing twice, the server answering the benign SNI as real ones do."""
    return _x(twice(tls(X_IP, failure=failure)), twice(benign_answer(X_IP, answer)))


def _benign_controls() -> list[Case]:
    """The benign-SNI control judged by what it proves, for each real server behaviour."""
    cases = []
    for answer in SERVER_ANSWERS:
        tag = answer.replace("alert:", "alert_")
        for failure, method in ((F.CONNECTION_RESET, "tls.reset"), (F.EOF, "tls.eof")):
            cases.append(
                Case(
                    f"{method.replace('.', '_')}_benign_{tag}",
                    TWITTER,
                    _tls_against(failure, answer),
                    vantage_ok(),
                    canaries_ok(),
                    "blocked",
                    method,
                )
            )
        # The benign answer is the only control: still enough for the floor.
        cases.append(
            Case(
                f"rule_benign_{tag}_alone_is_a_working_control",
                TWITTER,
                _tls_against(F.CONNECTION_RESET, answer),
                None,
                {},
                "blocked",
                "tls.reset",
            )
        )
        cases.append(
            Case(
                f"tls_timeout_benign_{tag}",
                TWITTER,
                _tls_against(F.TIMEOUT, answer),
                vantage_ok(),
                canaries_ok(),
                "blocked",
                "tls.timeout",
            )
        )
    cases.extend(
        Case(
            f"fp_benign_{failure.value}_is_a_failed_control",
            TWITTER,
            _x(twice(tls(X_IP, failure=F.CONNECTION_RESET)), twice(benign(X_IP, failure))),
            None,
            {},
            "inconclusive",
        )
        for failure in NO_TLS_ANSWERS
    )
    return cases


def _http_block(failure: Failure) -> Observations:
    return _xh(twice(http("http://x.com/", failure=failure)))


CASES: tuple[Case, ...] = (
    # --- reachable --------------------------------------------------------------------------
    Case(
        "reachable_https",
        TWITTER,
        obs(x_clean(), transfer(20_000), transfer(21_000, control=True)),
        vantage_ok(),
        canaries_ok(),
    ),
    Case("reachable_http", X_HTTP, obs(x_http_clean()), HTTP_VANTAGE, canaries_ok()),
    Case("reachable_up_to_tls", TWITTER, _x(tls(X_IP), benign(X_IP)), None, canaries_ok()),
    Case("reachable_up_to_tcp", X_HTTP, obs(resolved("x.com"), tcp(X_IP, 80)), None, {}),
    # --- DNS --------------------------------------------------------------------------------
    Case(
        "dns_nxdomain",
        TWITTER,
        obs(twice(dns("twitter.com", failure=F.DNS_NXDOMAIN)), control_dns("twitter.com", X_IP)),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "dns.nxdomain",
    ),
    Case(
        "dns_nodata_is_nxdomain",
        TWITTER,
        obs(twice(dns("twitter.com", failure=F.DNS_NO_ANSWER)), control_dns("twitter.com", X_IP)),
        None,
        canaries_ok(),
        "blocked",
        "dns.nxdomain",
    ),
    Case(
        "dns_nxdomain_without_canaries",
        TWITTER,
        obs(twice(dns("twitter.com", failure=F.DNS_NXDOMAIN)), control_dns("twitter.com", X_IP)),
        None,
        {},
        "blocked",
        "dns.nxdomain",
    ),
    Case(
        "dns_servfail",
        TWITTER,
        obs(twice(dns("twitter.com", failure=F.DNS_SERVFAIL)), control_dns("twitter.com", X_IP)),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "dns.servfail",
    ),
    Case(
        "dns_refused",
        TWITTER,
        obs(twice(dns("twitter.com", failure=F.DNS_REFUSED)), control_dns("twitter.com", X_IP)),
        None,
        canaries_ok(),
        "blocked",
        "dns.refused",
    ),
    Case(
        "dns_timeout_for_this_name_only",
        TWITTER,
        obs(twice(dns("twitter.com", failure=F.TIMEOUT)), control_dns("twitter.com", X_IP)),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "dns.timeout",
    ),
    Case(
        "dns_bogon_private",
        TWITTER,
        obs(
            dns("twitter.com", "10.10.34.34"),
            control_dns("twitter.com", X_IP),
            twice(tcp("10.10.34.34", failure=F.TIMEOUT)),
        ),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "dns.bogon",
    ),
    Case(
        "dns_bogon_loopback_control_resolver_blocked",
        TWITTER,
        obs(dns("twitter.com", "127.0.0.1"), control_dns("twitter.com", failure=F.TIMEOUT)),
        None,
        canaries_ok(),
        "blocked",
        "dns.bogon",
    ),
    Case(
        "dns_spoofed_to_blockpage_server",
        TWITTER,
        obs(
            dns("twitter.com", BLOCKPAGE_IP),
            control_dns("twitter.com", X_IP),
            tcp(BLOCKPAGE_IP),
            twice(tls(BLOCKPAGE_IP, failure=F.SSL_UNKNOWN_AUTHORITY)),
            tcp(X_IP),
            tls(X_IP),
        ),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "dns.spoofed",
    ),
    Case(
        "dns_spoofed_http_blockpage",
        X_HTTP,
        obs(
            dns("x.com", BLOCKPAGE_IP),
            control_dns("x.com", X_IP),
            tcp(BLOCKPAGE_IP, 80),
            http("http://x.com/", ip=BLOCKPAGE_IP, title=BLOCKPAGE_TITLE, length=600),
        ),
        HTTP_VANTAGE,
        canaries_ok(),
        "blocked",
        "dns.spoofed",
    ),
    Case(
        "dns_spoofed_page_differs_from_control",
        X_HTTP,
        obs(
            dns("x.com", BLOCKPAGE_IP),
            control_dns("x.com", X_IP),
            tcp(BLOCKPAGE_IP, 80),
            http("http://x.com/", ip=BLOCKPAGE_IP, title="Access restricted", length=400),
        ),
        HTTP_VANTAGE,
        canaries_ok(),
        "blocked",
        "dns.spoofed",
    ),
    Case(
        "dns_spoofed_to_dead_address",
        TWITTER,
        obs(
            dns("twitter.com", "198.18.104.1"),
            control_dns("twitter.com", X_IP),
            twice(tcp("198.18.104.1", failure=F.TIMEOUT)),
            tcp(X_IP),
        ),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "dns.spoofed",
    ),
    Case(
        "different_answer_judged_by_its_tls_failure",
        TWITTER,
        obs(
            dns("twitter.com", "198.18.104.9"),
            control_dns("twitter.com", X_IP),
            tcp("198.18.104.9"),
            twice(tls("198.18.104.9", failure=F.TIMEOUT)),
            twice(http(ip="198.18.104.9", failure=F.TIMEOUT)),
        ),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tls.timeout",
    ),
    Case(
        "dns_injected_forged_answer_first",
        TWITTER,
        obs(
            dns("twitter.com", BLOCKPAGE_IP, late=((X_IP,),)),
            dns("twitter.com", BLOCKPAGE_IP, qtype="A", late=((X_IP,),)),
            control_dns("twitter.com", X_IP),
        ),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "dns.injected",
    ),
    Case(
        "dns_injected_every_answer_forged",
        TWITTER,
        obs(
            dns("twitter.com", "198.18.104.1", late=(("198.18.104.2",),)),
            control_dns("twitter.com", X_IP),
        ),
        None,
        canaries_ok(),
        "blocked",
        "dns.injected",
    ),
    # --- TCP --------------------------------------------------------------------------------
    Case(
        "tcp_timeout_ip_blackhole",
        TWITTER,
        obs(
            resolved("twitter.com", X_IP, X_IP2),
            twice(tcp(X_IP, failure=F.TIMEOUT)),
            twice(tcp(X_IP2, failure=F.TIMEOUT)),
        ),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tcp.timeout",
    ),
    Case(
        "tcp_refused_rst_on_syn",
        TWITTER,
        obs(resolved(), twice(tcp(X_IP, failure=F.CONNECTION_REFUSED))),
        None,
        canaries_ok(),
        "blocked",
        "tcp.reset",
    ),
    Case(
        "tcp_unreachable_icmp",
        TWITTER,
        obs(resolved(), twice(tcp(X_IP, failure=F.HOST_UNREACHABLE))),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tcp.unreachable",
    ),
    # --- TLS --------------------------------------------------------------------------------
    Case(
        "tls_reset_after_client_hello",
        TWITTER,
        _tls_block(F.CONNECTION_RESET),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tls.reset",
    ),
    Case(
        "tls_reset_no_vantage",
        TWITTER,
        _tls_block(F.CONNECTION_RESET),
        None,
        canaries_ok(),
        "blocked",
        "tls.reset",
    ),
    Case(
        "tls_timeout_sni_drop",
        TWITTER,
        _tls_block(F.TIMEOUT),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tls.timeout",
    ),
    Case("tls_eof", TWITTER, _tls_block(F.EOF), vantage_ok(), canaries_ok(), "blocked", "tls.eof"),
    Case(
        "tls_alert",
        TWITTER,
        _tls_block(F.SSL_FAILED_HANDSHAKE),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tls.alert",
    ),
    Case(
        "tls_reset_without_benign_sni_but_vantage_ok",
        TWITTER,
        _x(twice(tls(X_IP, failure=F.CONNECTION_RESET))),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tls.reset",
    ),
    Case(
        "tls_mitm_unknown_authority",
        TWITTER,
        _x(
            twice(tls(X_IP, failure=F.SSL_UNKNOWN_AUTHORITY)),
            benign(X_IP, failure=F.SSL_UNKNOWN_AUTHORITY),
        ),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tls.mitm",
    ),
    Case(
        "tls_mitm_handshake_completed_invalid_certificate",
        TWITTER,
        _x(twice(tls(X_IP, valid=False, issuer="Kazakhstan Root CA"))),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tls.mitm",
    ),
    # --- HTTP -------------------------------------------------------------------------------
    Case(
        "http_reset_on_host",
        X_HTTP,
        _http_block(F.CONNECTION_RESET),
        HTTP_VANTAGE,
        canaries_ok(),
        "blocked",
        "http.reset",
    ),
    Case(
        "http_timeout_on_host",
        X_HTTP,
        _http_block(F.TIMEOUT),
        None,
        canaries_ok(),
        "blocked",
        "http.timeout",
    ),
    Case(
        "http_eof_on_host",
        X_HTTP,
        _http_block(F.EOF),
        HTTP_VANTAGE,
        {},
        "blocked",
        "http.eof",
    ),
    Case(
        "http_blockpage_fingerprint",
        X_HTTP,
        _xh(http("http://x.com/", title=BLOCKPAGE_TITLE, length=600)),
        HTTP_VANTAGE,
        canaries_ok(),
        "blocked",
        "http.blockpage",
    ),
    Case(
        "http_blockpage_differs_from_control",
        X_HTTP,
        _xh(http("http://x.com/", title="Access denied by your operator", length=300)),
        HTTP_VANTAGE,
        canaries_ok(),
        "blocked",
        "http.blockpage",
    ),
    Case(
        "http_blockpage_status_451",
        X_HTTP,
        _xh(http("http://x.com/", 451, title=None, length=120)),
        HTTP_VANTAGE,
        canaries_ok(),
        "blocked",
        "http.blockpage",
    ),
    Case(
        "http_blockpage_server_header_fingerprint",
        X_HTTP,
        _xh(http("http://x.com/", 403, headers={"Server": "Protected by WireFilter 8000"})),
        None,
        canaries_ok(),
        "blocked",
        "http.blockpage",
    ),
    Case(
        "http_redirect_to_warning_page",
        X_HTTP,
        _xh(
            http(
                "http://x.com/",
                title=BLOCKPAGE_TITLE,
                redirects=("http://warning.pta.lab/?host=x.com",),
            )
        ),
        HTTP_VANTAGE,
        canaries_ok(),
        "blocked",
        "http.redirect",
    ),
    Case(
        "http_redirect_to_unknown_host",
        X_HTTP,
        _xh(http("http://x.com/", 302, headers={"Location": "http://stop.isp.example/"})),
        HTTP_VANTAGE,
        canaries_ok(),
        "blocked",
        "http.redirect",
    ),
    Case(
        "http_redirect_fingerprint_without_vantage",
        X_HTTP,
        _xh(http("http://x.com/", 302, headers={"Location": "http://warning.pta.lab/"})),
        None,
        canaries_ok(),
        "blocked",
        "http.redirect",
    ),
    Case(
        "https_reset_after_handshake",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), twice(http(failure=F.CONNECTION_RESET))),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "http.reset",
    ),
    # --- throttling -------------------------------------------------------------------------
    Case(
        "throttle_rate_download_policer",
        TWITTER,
        obs(x_clean(), transfer(140), transfer(60_000, control=True)),
        obs(vantage_ok().http, transfer(40_000)),
        canaries_ok(),
        "throttled",
        "throttle.rate",
    ),
    Case(
        "throttle_rate_upload_only",
        TWITTER,
        obs(
            x_clean(),
            transfer(50_000),
            transfer(52_000, control=True),
            transfer(140, direction="up"),
            transfer(30_000, control=True, direction="up"),
        ),
        vantage_ok(),
        canaries_ok(),
        "throttled",
        "throttle.rate",
    ),
    Case(
        "throttle_rate_without_control_vantage",
        TWITTER,
        obs(x_clean(), transfer(140), transfer(60_000, control=True)),
        None,
        canaries_ok(),
        "throttled",
        "throttle.rate",
    ),
    Case(
        "throttle_stall_nothing_after_handshake",
        TWITTER,
        obs(x_clean(), twice(transfer(2_000, stall_after=0)), transfer(60_000, control=True)),
        None,
        canaries_ok(),
        "throttled",
        "throttle.stall",
    ),
    Case(
        "throttle_stall_after_16k",
        TWITTER,
        obs(x_clean(), transfer(2_000, stall_after=16_384), transfer(60_000, control=True)),
        vantage_ok(),
        canaries_ok(),
        "throttled",
        "throttle.stall",
    ),
    Case(
        # Recorded in the lab (sni-throttle-police): policing drops make TCP back off, so bytes
        # arrive in steps with gaps; on the wire it is still a plateau at ~120 kbps.
        "throttle_rate_policer_with_retransmission_gaps",
        TWITTER,
        obs(
            x_clean(),
            _sampled(_policed(), read=65536, seconds=2.47),
            transfer(30_000, control=True, seconds=0.07, step=0.07),
        ),
        vantage_ok(),
        canaries_ok(),
        "throttled",
        "throttle.rate",
    ),
    Case(
        # A retransmission back-off of 0.7 s at the end of a policed transfer is not a stall.
        "throttle_rate_policer_gap_at_the_end_is_not_a_stall",
        TWITTER,
        obs(
            x_clean(),
            _sampled(_policed(last_gap=0.7), read=49152, seconds=2.47),
            transfer(30_000, control=True, seconds=0.07, step=0.07),
        ),
        vantage_ok(),
        canaries_ok(),
        "throttled",
        "throttle.rate",
    ),
    Case(
        # Recorded in the lab (sni-throttle-upload): the body is handed to the socket at once,
        # but the server acknowledges it at the policer's rate; it completes, slowly.
        "throttle_rate_upload_acknowledged_slowly",
        TWITTER,
        obs(
            x_clean(),
            transfer(50_000),
            transfer(52_000, control=True),
            _sampled(
                [(0.15, 0), (0.26, 44705), (0.36, 44705), (0.46, 47601), (0.56, 47601)]
                + [(0.66, 51005), (0.76, 51005), (0.86, 55349), (0.96, 55349), (1.06, 58245)]
                + [(1.16, 58245), (1.26, 61141), (1.36, 61141), (1.46, 64037), (1.56, 64037)]
                + [(1.66, 65536)],
                read=65536,
                seconds=1.655,
                completed=True,
                direction="up",
            ),
            transfer(3_200, control=True, direction="up", seconds=0.16, step=0.16),
        ),
        vantage_ok(),
        canaries_ok(),
        "throttled",
        "throttle.rate",
    ),
    Case(
        # Recorded in the lab (sni-throttle-stall): 13 KB reach the socket, the 16 KiB TLS
        # record never completes, so the application reads nothing; the retry is the same.
        "throttle_stall_inside_a_tls_record",
        TWITTER,
        obs(
            x_clean(),
            twice(
                _sampled(
                    [(round(0.1 * i, 2), 13209) for i in range(1, 17)],
                    read=0,
                    seconds=1.61,
                    failure=F.TIMEOUT,
                )
            ),
            transfer(30_000, control=True, seconds=0.07, step=0.07),
        ),
        None,
        canaries_ok(),
        "throttled",
        "throttle.stall",
    ),
    # --- throttling against real servers: which control transfer counts -------------------
    Case(
        # The server refuses the benign SNI with an alert (many CDN fronts): no same-IP control
        # transfer; the run's canary control moved its large object fast through the same path.
        "throttle_rate_benign_alert_canary_control",
        TWITTER,
        obs(x_clean(), transfer(140), _benign_transfer_refused()),
        obs(vantage_ok().http, transfer(40_000)),
        _canary_transfer(60_000),
        "throttled",
        "throttle.rate",
    ),
    Case(
        "throttle_stall_benign_alert_canary_control",
        TWITTER,
        obs(x_clean(), twice(transfer(2_000, stall_after=0)), _benign_transfer_refused()),
        None,
        _canary_transfer(60_000),
        "throttled",
        "throttle.stall",
    ),
    Case(
        # nginx's default server answers the benign name with its 615-byte page, fast: a page
        # is not a large object, so its "rate" is no control; the canary control is.
        "throttle_rate_benign_default_page_canary_control",
        TWITTER,
        obs(x_clean(), transfer(140), _benign_transfer_page(615)),
        vantage_ok(),
        _canary_transfer(60_000),
        "throttled",
        "throttle.rate",
    ),
    Case(
        "fp_benign_default_page_is_not_a_throughput_control",
        TWITTER,
        obs(x_clean(), _unfinished(transfer(140)), _benign_transfer_page(615)),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "fp_benign_error_page_is_not_a_throughput_control",
        TWITTER,
        obs(x_clean(), _unfinished(transfer(140)), _benign_transfer_page(40_000, status=421)),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        # The canary control crawls as slowly as the platform: a slow network, not throttling.
        "fp_canary_control_slow_too_is_a_slow_network",
        TWITTER,
        obs(x_clean(), _unfinished(transfer(140)), _benign_transfer_refused()),
        obs(vantage_ok().http, transfer(40_000)),
        _canary_transfer(150),
        "reachable",
    ),
    Case(
        # No control transfer worked (alert, and the canary control stalled): cannot tell
        # throttling from a slow path, and it is not "reachable" either.
        "no_working_throughput_control_is_inconclusive",
        TWITTER,
        obs(x_clean(), _unfinished(transfer(140)), _benign_transfer_refused()),
        obs(vantage_ok().http, transfer(40_000)),
        _canary_transfer(2_000, stall_after=0),
        "inconclusive",
    ),
    Case(
        # Upload-only policing, the benign SNI refused: the run's upload canary went fast.
        "throttle_rate_upload_benign_alert_upload_canary",
        TWITTER,
        obs(
            x_clean(),
            transfer(50_000),
            _benign_transfer_refused(),
            transfer(140, direction="up"),
            _benign_transfer_refused().model_copy(update={"direction": "up"}),
        ),
        vantage_ok(),
        _canary_transfer(30_000, direction="up"),
        "throttled",
        "throttle.rate",
    ),
    Case(
        # A fast canary download says nothing about uploads (links upload slower than they
        # download): with no upload control, a finished slow upload is no call.
        "fp_download_canary_is_no_upload_control",
        TWITTER,
        obs(
            x_clean(),
            transfer(50_000),
            _benign_transfer_refused(),
            transfer(140, direction="up"),
            _benign_transfer_refused().model_copy(update={"direction": "up"}),
        ),
        vantage_ok(),
        _canary_transfer(60_000),
        "reachable",
    ),
    Case(
        # A CDN that serves its large object to the benign SNI stays the preferred control.
        "throttle_rate_benign_large_object_is_a_control",
        TWITTER,
        obs(x_clean(), transfer(140), transfer(60_000, control=True)),
        vantage_ok(),
        _canary_transfer(150),
        "throttled",
        "throttle.rate",
    ),
    Case(
        # Recorded in the lab (sni-throttle-police, real-sized 240 KB front page): the page
        # fetch times out while still arriving; the endpoint's own transfer shows the plateau.
        "throttle_rate_large_page_times_out_while_arriving",
        TWITTER,
        _x(
            tls(X_IP),
            benign(X_IP),
            twice(_stalled_page("https://twitter.com/")),
            transfer(140),
            _benign_transfer_refused(),
        ),
        vantage_ok(),
        _canary_transfer(60_000),
        "throttled",
        "throttle.rate",
    ),
    Case(
        # sni-throttle-police on api.x.com, which has no large object of its own: its 240 KB
        # page still arrives, a record a second, when the deadline hits: a rate, not a stall.
        "throttle_rate_page_still_arriving_without_a_transfer",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), twice(_page_arriving("https://twitter.com/"))),
        vantage_ok(),
        _canary_transfer(60_000),
        "throttled",
        "throttle.rate",
    ),
    Case(
        # The same page whose bytes stopped for the last 3.7 s: a stall.
        "throttle_stall_page_stopped_without_a_transfer",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), twice(_page_stopped("https://twitter.com/"))),
        vantage_ok(),
        _canary_transfer(60_000),
        "throttled",
        "throttle.stall",
    ),
    Case(
        # One burst, then a silence shorter than the stall interval: no rate can be told from
        # it (not 1.5 Gbit/s "still arriving"); the timeout after the status line is a stall.
        "throttle_stall_page_one_burst_then_the_deadline",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), twice(_page_one_burst("https://twitter.com/"))),
        vantage_ok(),
        _canary_transfer(4_000),
        "throttled",
        "throttle.stall",
    ),
    Case(
        # Still arriving, at the canary control's own pace: a large page on a slow path.
        "page_still_arriving_as_fast_as_the_control_is_no_throttle",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), twice(_page_arriving("https://twitter.com/"))),
        vantage_ok(),
        _canary_transfer(200),
        "inconclusive",
        None,
    ),
    Case(
        "https_timeout_after_handshake_is_throttling",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), twice(http(failure=F.TIMEOUT))),
        vantage_ok(),
        canaries_ok(),
        "throttled",
        "throttle.stall",
    ),
    # --- outages ----------------------------------------------------------------------------
    Case(
        "outage_local_everything_down",
        TWITTER,
        obs(
            twice(dns("twitter.com", failure=F.TIMEOUT)),
            control_dns("twitter.com", failure=F.TIMEOUT),
        ),
        None,
        canaries_down(),
        "outage",
        "outage.local",
    ),
    Case(
        "outage_local_no_route",
        TWITTER,
        obs(
            dns("twitter.com", X_IP),
            control_dns("twitter.com", failure=F.NETWORK_UNREACHABLE),
            twice(tcp(X_IP, failure=F.NETWORK_UNREACHABLE)),
        ),
        None,
        canaries_down(F.NETWORK_UNREACHABLE),
        "outage",
        "outage.local",
    ),
    Case(
        "outage_local_without_canaries",
        TWITTER,
        obs(
            dns("twitter.com", X_IP),
            control_dns("twitter.com", failure=F.TIMEOUT),
            twice(tcp(X_IP, failure=F.TIMEOUT)),
        ),
        None,
        {},
        "outage",
        "outage.local",
    ),
    Case(
        "outage_local_canaries_only",
        TWITTER,
        obs(dns("twitter.com", X_IP), twice(tcp(X_IP, failure=F.TIMEOUT))),
        None,
        {**canaries_down(), "example.net": obs()},
        "outage",
        "outage.local",
    ),
    Case(
        "outage_platform_refused_everywhere",
        TWITTER,
        obs(resolved(), twice(tcp(X_IP, failure=F.CONNECTION_REFUSED))),
        obs(tcp(X_IP, failure=F.CONNECTION_REFUSED)),
        canaries_ok(),
        "outage",
        "outage.platform",
    ),
    Case(
        "outage_platform_5xx_everywhere",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), http(status=503, title="Something went wrong", length=90)),
        obs(tcp(X_IP), tls(X_IP), http(status=503, title="Something went wrong", length=90)),
        canaries_ok(),
        "outage",
        "outage.platform",
    ),
    Case(
        "outage_platform_certificate_broken_everywhere",
        TWITTER,
        _x(twice(tls(X_IP, failure=F.SSL_INVALID_HOSTNAME)), benign(X_IP)),
        obs(tcp(X_IP), tls(X_IP, failure=F.SSL_INVALID_HOSTNAME), benign(X_IP)),
        canaries_ok(),
        "outage",
        "outage.platform",
    ),
    Case(
        "outage_platform_server_hangs_for_everyone",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), twice(http(failure=F.TIMEOUT))),
        obs(tcp(X_IP), tls(X_IP), http(failure=F.TIMEOUT)),
        canaries_ok(),
        "outage",
        "outage.platform",
    ),
    Case(
        "outage_dns_servfail_from_every_resolver",
        TWITTER,
        obs(
            twice(dns("twitter.com", failure=F.DNS_SERVFAIL)),
            control_dns("twitter.com", failure=F.DNS_SERVFAIL),
        ),
        obs(dns("twitter.com", resolver="system:helper", failure=F.DNS_SERVFAIL)),
        canaries_ok(),
        "outage",
        "outage.dns",
    ),
    Case(
        "outage_dns_control_resolver_says_nxdomain_too",
        TWITTER,
        obs(
            twice(dns("twitter.com", failure=F.DNS_NXDOMAIN)),
            control_dns("twitter.com", failure=F.DNS_NXDOMAIN),
        ),
        None,
        canaries_ok(),
        "outage",
        "outage.dns",
    ),
    Case(
        "outage_dns_control_vantage_fails_too",
        TWITTER,
        obs(
            twice(dns("twitter.com", failure=F.DNS_NXDOMAIN)),
            control_dns("twitter.com", failure=F.TIMEOUT),
        ),
        obs(dns("twitter.com", resolver="system:helper", failure=F.DNS_NXDOMAIN)),
        canaries_ok(),
        "outage",
        "outage.dns",
    ),
    # --- false positives that must not be blocks ----------------------------------------------
    Case(
        "fp_random_loss_one_connect_lost",
        TWITTER,
        obs(
            x_clean(),
            tcp(X_IP, failure=F.TIMEOUT),
            transfer(16_000),
            transfer(20_000, control=True),
        ),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "fp_uniformly_slow_network",
        TWITTER,
        obs(x_clean(), transfer(300), transfer(320, control=True)),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "fp_flapping_dns",
        TWITTER,
        obs(dns("twitter.com", failure=F.TIMEOUT), x_clean()),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "fp_slow_platform_server",
        TWITTER,
        obs(x_clean(), transfer(140), transfer(60_000, control=True)),
        obs(vantage_ok().http, transfer(150)),
        canaries_ok(),
    ),
    Case(
        "fp_control_resolver_blocked",
        TWITTER,
        obs(
            dns("twitter.com", X_IP),
            control_dns("twitter.com", failure=F.CONNECTION_RESET),
            tcp(X_IP),
            tls(X_IP),
            http(),
        ),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "fp_cdn_different_valid_answer",
        TWITTER,
        obs(
            dns("twitter.com", CDN_IP),
            control_dns("twitter.com", X_IP),
            tcp(CDN_IP),
            tls(CDN_IP),
            benign(CDN_IP),
            http(ip=CDN_IP),
        ),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "fp_dynamic_page_shorter_same_title",
        X_HTTP,
        _xh(http("http://x.com/", length=900)),
        HTTP_VANTAGE,
        canaries_ok(),
    ),
    Case(
        "fp_path_mtu_blackhole",
        TWITTER,
        _x(twice(tls(X_IP, failure=F.TIMEOUT)), twice(benign(X_IP, failure=F.TIMEOUT))),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "fp_partial_ip_blocking",
        TWITTER,
        obs(
            resolved("twitter.com", X_IP, X_IP2),
            twice(tcp(X_IP, failure=F.TIMEOUT)),
            tcp(X_IP2),
            tls(X_IP2),
            http(ip=X_IP2),
        ),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "fp_partial_tls_blocking",
        TWITTER,
        obs(
            resolved("twitter.com", X_IP, X_IP2),
            tcp(X_IP),
            tcp(X_IP2),
            twice(tls(X_IP, failure=F.CONNECTION_RESET)),
            tls(X_IP2),
            http(ip=X_IP2),
        ),
        vantage_ok(),
        canaries_ok(),
    ),
    # --- the contract's rules ------------------------------------------------------------------
    Case(
        "rule_no_control_no_block",
        TWITTER,
        _x(twice(tls(X_IP, failure=F.CONNECTION_RESET))),
        None,
        {},
        "inconclusive",
    ),
    Case(
        "rule_single_failed_tls_try",
        TWITTER,
        _x(tls(X_IP, failure=F.CONNECTION_RESET), benign(X_IP)),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_single_failed_dns_try",
        TWITTER,
        obs(dns("twitter.com", failure=F.DNS_NXDOMAIN), control_dns("twitter.com", X_IP)),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_single_failed_connect",
        TWITTER,
        obs(resolved(), tcp(X_IP, failure=F.TIMEOUT)),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_single_failed_http_try",
        X_HTTP,
        _xh(http("http://x.com/", failure=F.CONNECTION_RESET)),
        HTTP_VANTAGE,
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_mixed_tls_tries_reachable",
        TWITTER,
        _x(tls(X_IP, failure=F.CONNECTION_RESET), tls(X_IP), benign(X_IP), http()),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "rule_mixed_http_tries_reachable",
        X_HTTP,
        _xh(http("http://x.com/", failure=F.CONNECTION_RESET), http("http://x.com/")),
        HTTP_VANTAGE,
        canaries_ok(),
    ),
    Case(
        "rule_bogon_also_from_control_is_not_tampering",
        TWITTER,
        obs(resolved("twitter.com", "10.0.0.5"), tcp("10.0.0.5"), tls("10.0.0.5"), http()),
        None,
        canaries_ok(),
    ),
    Case(
        "rule_bogon_mixed_with_real_answer",
        TWITTER,
        obs(
            dns("twitter.com", "10.0.0.5"),
            dns("twitter.com", "2001:db9::10", qtype="AAAA"),
            tcp("2001:db9::10"),
            tls("2001:db9::10"),
            http(ip="2001:db9::10"),
        ),
        None,
        canaries_ok(),
    ),
    Case(
        "rule_bogon_without_any_control",
        TWITTER,
        obs(dns("twitter.com", "127.0.0.1"), control_dns("twitter.com", failure=F.TIMEOUT)),
        None,
        {},
        "inconclusive",
    ),
    Case(
        "rule_nxdomain_without_dns_control",
        TWITTER,
        obs(
            twice(dns("twitter.com", failure=F.DNS_NXDOMAIN)),
            control_dns("twitter.com", failure=F.TIMEOUT),
        ),
        None,
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_dns_timeout_without_canary_names",
        TWITTER,
        obs(twice(dns("twitter.com", failure=F.TIMEOUT)), control_dns("twitter.com", X_IP)),
        vantage_ok(),
        {},
        "inconclusive",
    ),
    Case(
        "rule_dns_unknown_failure",
        TWITTER,
        obs(twice(dns("twitter.com", failure=F.UNKNOWN)), control_dns("twitter.com", X_IP)),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_resolver_broken_for_canaries_too",
        TWITTER,
        obs(twice(dns("twitter.com", failure=F.DNS_SERVFAIL)), control_dns("twitter.com", X_IP)),
        None,
        {"example.org": obs(twice(dns("example.org", failure=F.DNS_SERVFAIL)))},
        "inconclusive",
    ),
    Case(
        "rule_injection_without_control_answer",
        TWITTER,
        obs(
            dns("twitter.com", BLOCKPAGE_IP, late=((X_IP,),)),
            control_dns("twitter.com", failure=F.TIMEOUT),
        ),
        None,
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_duplicate_answers_that_agree",
        TWITTER,
        obs(
            dns("twitter.com", X_IP, late=((X_IP2,),)),
            control_dns("twitter.com", X_IP, X_IP2),
            tcp(X_IP),
            tls(X_IP),
            http(),
        ),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "rule_different_answer_unproved_is_not_spoofing",
        TWITTER,
        obs(
            dns("twitter.com", "198.18.104.7"),
            control_dns("twitter.com", X_IP),
            tcp("198.18.104.7"),
            http(ip="198.18.104.7"),
        ),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "rule_tcp_block_needs_a_working_canary",
        TWITTER,
        obs(resolved(), twice(tcp(X_IP, failure=F.TIMEOUT))),
        vantage_ok(),
        {},
        "inconclusive",
    ),
    Case(
        "rule_tcp_unknown_failure",
        TWITTER,
        obs(resolved(), twice(tcp(X_IP, failure=F.UNKNOWN))),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_tls_unknown_failure",
        TWITTER,
        _tls_block(F.UNKNOWN),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_mitm_needs_control_vantage",
        TWITTER,
        _x(twice(tls(X_IP, failure=F.SSL_UNKNOWN_AUTHORITY))),
        None,
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_http_block_needs_a_control_page",
        X_HTTP,
        _http_block(F.CONNECTION_RESET),
        None,
        {},
        "inconclusive",
    ),
    Case(
        "rule_http_unknown_failure",
        X_HTTP,
        _http_block(F.UNKNOWN),
        HTTP_VANTAGE,
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_https_timeout_without_path_control",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), twice(http(failure=F.TIMEOUT))),
        vantage_ok(),
        {},
        "inconclusive",
    ),
    Case(
        "rule_redirect_within_platform",
        X_HTTP,
        _xh(http("http://x.com/", redirects=("https://x.com/",))),
        HTTP_VANTAGE,
        canaries_ok(),
    ),
    Case(
        "rule_redirect_out_for_control_vantage_too",
        X_HTTP,
        _xh(http("http://x.com/", redirects=("https://news.example.net/a",))),
        obs(http("http://x.com/", redirects=("https://news.example.net/a",))),
        canaries_ok(),
    ),
    Case(
        "rule_redirect_out_without_vantage",
        X_HTTP,
        _xh(http("http://x.com/", 302, headers={"Location": "http://stop.isp.example/"})),
        None,
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_blockpage_on_one_try_only",
        X_HTTP,
        _xh(http("http://x.com/", title=BLOCKPAGE_TITLE, length=600), http("http://x.com/")),
        HTTP_VANTAGE,
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_server_error_here_only",
        TWITTER,
        _x(tls(X_IP), benign(X_IP), http(status=502, title=None, length=0)),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_control_vantage_server_error_local_ok",
        TWITTER,
        obs(x_clean()),
        obs(tcp(X_IP), tls(X_IP), http(status=503, title="Something went wrong", length=90)),
        canaries_ok(),
    ),
    Case(
        "rule_throttle_needs_a_steady_rate",
        TWITTER,
        obs(x_clean(), transfer(140, pattern="bursty"), transfer(60_000, control=True)),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        # Random loss on a fast path: one retransmission time-out leaves the transfer flat for a
        # while, so its average falls below a quarter of the control's; it is no plateau.
        "rule_loss_back_off_is_not_a_policer",
        TWITTER,
        obs(
            x_clean(),
            _sampled(
                [(0.1, 90_000), (0.2, 120_000)]
                + [(round(0.1 * i, 2), 120_000) for i in range(3, 14)]
                + [(1.4, 262_144)],
                read=262_144,
                seconds=1.4,
                completed=True,
            ),
            transfer(30_000, control=True, seconds=0.07, step=0.07),
        ),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        # Slow to start (a long wait for the first byte), then as fast as the control: the
        # average is low but no low plateau follows.
        "rule_slow_start_then_fast_is_not_a_policer",
        TWITTER,
        obs(
            x_clean(),
            _sampled(
                [(round(0.1 * i, 2), 0) for i in range(1, 19)]
                + [(1.9, 60_000), (2.0, 120_000), (2.1, 180_000), (2.2, 240_000)]
                + [(2.3, 300_000), (2.4, 360_000), (2.5, 420_000)],
                read=420_000,
                seconds=2.5,
            ),
            transfer(6_000, control=True, seconds=0.5, step=0.1),
        ),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        # A shaper's deep queue: the handshake bytes trickle in (wire samples grow steadily) but
        # none of the object arrives in the time budget, while the control completes.
        "throttle_stall_when_the_object_is_held_back",
        TWITTER,
        obs(
            x_clean(),
            _sampled([(round(0.1 * i, 2), 300 * i) for i in range(1, 25)], read=0, seconds=2.5),
            transfer(60_000, control=True),
        ),
        vantage_ok(),
        canaries_ok(),
        "throttled",
        "throttle.stall",
    ),
    Case(
        "rule_throttle_needs_enough_samples",
        TWITTER,
        obs(x_clean(), transfer(140, step=1.0), transfer(60_000, control=True)),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_slow_without_same_path_control_is_not_throttling",
        TWITTER,
        obs(x_clean(), transfer(140)),
        vantage_ok(),
        canaries_ok(),
    ),
    Case(
        "rule_stall_needs_the_control_to_complete",
        TWITTER,
        obs(
            x_clean(),
            transfer(2_000, stall_after=16_384),
            transfer(2_000, control=True, stall_after=16_384),
        ),
        vantage_ok(),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_stall_for_the_control_vantage_too",
        TWITTER,
        obs(x_clean(), transfer(2_000, stall_after=16_384), transfer(60_000, control=True)),
        obs(vantage_ok().http, transfer(2_000, stall_after=16_384)),
        canaries_ok(),
        "inconclusive",
    ),
    Case(
        "rule_unmeasured_canary_is_no_evidence_of_outage",
        TWITTER,
        obs(dns("twitter.com", X_IP), twice(tcp(X_IP, failure=F.TIMEOUT))),
        None,
        {"example.org": obs()},
        "inconclusive",
    ),
    Case("rule_nothing_observed", TWITTER, obs(), None, {}, "inconclusive"),
    *_benign_controls(),
    Case(
        "tls_alert_benign_default_cert",
        TWITTER,
        _tls_against(F.SSL_FAILED_HANDSHAKE, "default_cert"),
        None,
        {},
        "blocked",
        "tls.alert",
    ),
    Case(
        "tls_alert_benign_alert_vantage_ok",
        TWITTER,
        _tls_against(F.SSL_FAILED_HANDSHAKE, "alert:unrecognized_name"),
        vantage_ok(),
        canaries_ok(),
        "blocked",
        "tls.alert",
    ),
    Case(
        "fp_tls_alert_benign_alert_server_refuses_both",
        TWITTER,
        _tls_against(F.SSL_FAILED_HANDSHAKE, "alert:handshake_failure"),
        None,
        {},
        "inconclusive",
    ),
    Case(
        "fp_tls_timeout_benign_alert_only_small_answers_cross",
        TWITTER,
        _tls_against(F.TIMEOUT, "alert:unrecognized_name"),
        None,
        {"example.org": obs(dns("example.org", CANARY_IP), tcp(CANARY_IP))},
        "inconclusive",
    ),
    Case(
        # The control vantage's path is another path: it cannot show large packets cross this one.
        "fp_tls_timeout_benign_alert_vantage_is_not_this_path",
        TWITTER,
        _tls_against(F.TIMEOUT, "alert:unrecognized_name"),
        vantage_ok(),
        {"example.org": obs(dns("example.org", CANARY_IP), tcp(CANARY_IP))},
        "inconclusive",
    ),
    Case(
        "fp_benign_non_tls_reply_is_a_failed_control",
        TWITTER,
        _x(
            twice(tls(X_IP, failure=F.CONNECTION_RESET)),
            twice(benign(X_IP, failure=F.SSL_FAILED_HANDSHAKE)),
        ),
        None,
        {},
        "inconclusive",
    ),
    Case("rule_only_dns_observed", TWITTER, obs(resolved()), None, canaries_ok(), "inconclusive"),
    # --- found by judging OONI's measurements ----------------------------------------------
    Case(
        "dns_name_missing_everywhere_is_outage_dns_not_local",
        TWITTER,
        obs(
            twice(dns("twitter.com", failure=F.DNS_NXDOMAIN)),
            control_dns("twitter.com", failure=F.DNS_NXDOMAIN),
        ),
        obs(dns("twitter.com", resolver="system:helper", failure=F.DNS_NXDOMAIN)),
        {},
        "outage",
        "outage.dns",
    ),
    Case(
        "http_stall_after_status_line_and_part_of_body",
        X_HTTP,
        _xh(twice(_stalled_page("http://x.com/"))),
        HTTP_VANTAGE,
        canaries_ok(),
        "throttled",
        "throttle.stall",
    ),
    Case(
        "dns_answer_for_a_name_the_controls_say_does_not_exist",
        X_HTTP,
        obs(
            dns("x.com", "198.18.104.1"),
            control_dns("x.com", failure=F.DNS_NXDOMAIN),
            tcp("198.18.104.1", 80),
            http("http://x.com/", ip="198.18.104.1", title="Welcome", length=300),
        ),
        obs(dns("x.com", resolver="system:helper", failure=F.DNS_NXDOMAIN)),
        canaries_ok(),
        "blocked",
        "dns.spoofed",
    ),
    Case(
        "dns_answer_is_a_known_censor_address",
        TWITTER,
        obs(dns("twitter.com", "203.82.48.83"), control_dns("twitter.com", X_IP)),
        None,
        canaries_ok(),
        "blocked",
        "dns.spoofed",
    ),
    Case(
        "http_blockpage_of_a_regulator_by_body",
        X_HTTP,
        _xh(
            HTTPObservation(
                url="http://x.com/",
                ip=X_IP,
                status=200,
                title="Internet Positif",
                body_length=900,
                blockpage="ooni.id_6",
                t0=0.03,
                t=0.05,
            )
        ),
        None,
        canaries_ok(),
        "blocked",
        "http.blockpage",
    ),
    Case(
        "http_broad_fingerprint_on_the_control_s_page_is_no_block",
        X_HTTP,
        _xh(
            HTTPObservation(
                url="http://x.com/",
                ip=X_IP,
                status=200,
                title="X. It's what's happening / X",
                body_length=2400,
                blockpage="cp.a_prod_ddos_guard",
                t0=0.03,
                t=0.05,
            )
        ),
        HTTP_VANTAGE,
        canaries_ok(),
    ),
    Case(
        "http_redirect_to_a_regulator_without_control_page",
        X_HTTP,
        _xh(http("http://x.com/", 302, redirects=("http://internetpositif.uzone.id/?u=x.com",))),
        None,
        canaries_ok(),
        "blocked",
        "http.redirect",
    ),
    Case(
        "one_try_tls_reset_with_vantage_ok",
        TWITTER,
        _x(tls(X_IP, failure=F.CONNECTION_RESET)),
        vantage_ok(),
        {},
        "blocked",
        "tls.reset",
        one_shot=True,
    ),
    Case(
        "one_try_tls_reset_of_our_own_is_not_enough",
        TWITTER,
        _x(tls(X_IP, failure=F.CONNECTION_RESET)),
        vantage_ok(),
        {},
        "inconclusive",
    ),
    Case(
        "one_try_tls_reset_without_vantage",
        TWITTER,
        _x(tls(X_IP, failure=F.CONNECTION_RESET)),
        None,
        {},
        "inconclusive",
        one_shot=True,
    ),
    Case(
        "one_try_tcp_timeout_is_not_evidence",
        TWITTER,
        obs(resolved(), tcp(X_IP, failure=F.TIMEOUT)),
        vantage_ok(),
        {},
        "inconclusive",
        one_shot=True,
    ),
    Case(
        "one_try_tcp_refused_with_vantage_ok",
        TWITTER,
        obs(resolved(), tcp(X_IP, failure=F.CONNECTION_REFUSED)),
        vantage_ok(),
        {},
        "blocked",
        "tcp.reset",
        one_shot=True,
    ),
    Case(
        "one_try_tcp_refused_at_the_vantage_too",
        TWITTER,
        obs(resolved(), tcp(X_IP, failure=F.CONNECTION_REFUSED)),
        obs(tcp(X_IP, failure=F.CONNECTION_REFUSED)),
        {},
        "outage",
        "outage.platform",
        one_shot=True,
    ),
    Case(
        "one_try_nxdomain_with_control_answer",
        TWITTER,
        obs(dns("twitter.com", failure=F.DNS_NXDOMAIN), control_dns("twitter.com", X_IP)),
        vantage_ok(),
        {},
        "blocked",
        "dns.nxdomain",
        one_shot=True,
    ),
    Case(
        "one_try_servfail_is_not_evidence",
        TWITTER,
        obs(dns("twitter.com", failure=F.DNS_SERVFAIL), control_dns("twitter.com", X_IP)),
        vantage_ok(),
        {},
        "inconclusive",
        one_shot=True,
    ),
    Case(
        "one_try_http_reset_with_vantage_page",
        X_HTTP,
        _xh(http("http://x.com/", failure=F.CONNECTION_RESET)),
        HTTP_VANTAGE,
        {},
        "blocked",
        "http.reset",
        one_shot=True,
    ),
    Case(
        "one_try_http_timeout_is_not_evidence",
        X_HTTP,
        _xh(http("http://x.com/", failure=F.TIMEOUT)),
        HTTP_VANTAGE,
        {},
        "inconclusive",
        one_shot=True,
    ),
)

assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"
_ = CANARY_IP  # the canary address is part of the builders' vocabulary
