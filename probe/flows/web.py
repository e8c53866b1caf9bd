"""The web flow: one endpoint (or canary) measured with its controls; many with bounded concurrency.

For one endpoint: DNS (A and AAAA) through the system resolver and every control resolver; then,
concurrently for every answered address (the control resolver's too, so a DNS lie can be told apart;
IPv6 addresses only when this vantage has IPv6, ``probe.flows.families``), a TCP connect, a TLS
handshake with the platform SNI and, as control, one with the benign SNI; then, on the first address
that worked, the HTTP fetch and the throughput transfers (down, and up when the plan has an upload
URL), each beside a control transfer on the same path: the same address with the benign SNI over
https, or with the benign name as Host over cleartext http; after them, one more fetch on the first
address of the other family that worked, if any (the classifier judges each family). The first
endpoint to transfer also starts the run's canary control transfer in that direction
(``probe.flows.canary_transfer``).

Every failed step is retried on a fresh connection (``settings.retries`` times) and every try is
kept. The tries of one step share that step's timeout: each try gets an equal share of what is left,
so a fast failure leaves its retry nearly the whole timeout and a blackholed endpoint still ends
within its connect timeout (plus DNS). A throughput transfer is retried only when it moved no byte
(a stall after some bytes is itself the measurement), within the same time budget.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from probe.flows import canary_transfer, http3, packets
from probe.flows.families import ipv6_enabled
from probe.flows.plan import EndpointPlan, MeasureSettings, other_family_page, transfer_bytes
from probe.model.failures import Failure
from probe.model.measurement import Observations
from probe.model.observations import (
    DNSObservation,
    HTTPObservation,
    QUICObservation,
    TCPConnectObservation,
    ThroughputObservation,
    TLSHandshakeObservation,
)
from probe.net.clock import Clock, deadline_in, remaining
from probe.net.family import family_of
from probe.steps import dns, http, tcp, throughput, tls
from probe.steps.resolvers import is_ip


class _Observation(Protocol):
    @property
    def failure(self) -> Failure | None: ...


Obs = TypeVar("Obs", bound=_Observation)
PAIRED_RECHECKS = 3  # extra queries for a timed-out name, each paired with one for a canary
RECHECK_SPACING = 0.08  # seconds between the re-check queries
PATIENT_FACTOR = 1.5  # a silent TLS timeout is tried once more with this many handshake timeouts
TransferObs = ThroughputObservation
QTYPES: tuple[dns.QType, ...] = ("A", "AAAA")


async def measure_endpoint(
    plan: EndpointPlan, settings: MeasureSettings, *, with_throughput: bool = True
) -> Observations:
    """Measure ``plan``'s endpoint from here, with the benign-SNI and same-path controls."""
    return await _Flow(settings).measure(plan, with_throughput=with_throughput, controls=True)


async def measure_canary(
    url: str, settings: MeasureSettings, *, with_throughput: bool = False
) -> Observations:
    """Measure a canary URL: DNS, TCP, TLS, HTTP and, if asked, a download of the URL itself."""
    host = urllib.parse.urlsplit(url).hostname or ""
    plan = EndpointPlan(
        platform="canary",
        url=url,
        domain=host,
        platform_domains=(host,),
        throughput_url=url if with_throughput else None,
    )
    return await _Flow(settings).measure(plan, with_throughput=with_throughput, controls=False)


async def measure_many(
    plans: Iterable[EndpointPlan], settings: MeasureSettings
) -> dict[str, Observations]:
    """Measure every plan, at most ``settings.concurrency`` at once; keyed by endpoint URL."""
    gate = asyncio.Semaphore(settings.concurrency)

    async def one(plan: EndpointPlan) -> tuple[str, Observations]:
        async with gate:
            return plan.url, await measure_endpoint(plan, settings)

    return dict(await asyncio.gather(*(one(plan) for plan in plans)))


async def retry(step: Callable[[float], Awaitable[Obs]], within: float, retries: int) -> list[Obs]:
    """Run ``step(deadline)`` until it succeeds or ``1 + retries`` tries failed, in ``within`` s.

    Each try's deadline is an equal share of the time left for the tries still to come.
    """
    stage_deadline = deadline_in(within)
    tries: list[Obs] = []
    for left in range(retries + 1, 0, -1):
        share = remaining(stage_deadline) / left
        obs = await step(deadline_in(share))
        tries.append(obs)
        if obs.failure is None:
            break
    return tries


class _Flow:
    """One measurement's settings and clock (the zero time of its observations)."""

    def __init__(self, settings: MeasureSettings) -> None:
        self.settings = settings
        self.clock = Clock()
        self.ipv6 = ipv6_enabled(settings)

    async def measure(
        self, plan: EndpointPlan, *, with_throughput: bool, controls: bool
    ) -> Observations:
        parts = urllib.parse.urlsplit(plan.url)
        host = parts.hostname or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)

        answered: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        resolving = asyncio.ensure_future(self._resolve(host, answered))
        quic_run: asyncio.Future[list[QUICObservation]] | None = None
        try:
            await asyncio.wait((answered, resolving), return_when=asyncio.FIRST_COMPLETED)
            if answered.done():
                addresses = answered.result()
            else:
                addresses = _addresses(host, resolving.result())
            if not self.ipv6:
                addresses = [a for a in addresses if family_of(a) != "ipv6"]
            if plan.http3 and https and addresses:  # beside the TCP path (probe.flows.http3)
                quic_run = asyncio.ensure_future(
                    http3.measure(
                        plan, addresses, self.settings, self.clock, self._retry, controls=controls
                    )
                )

            connects, handshakes = await self._connect(addresses, host, port, https, controls)
            if https:
                working = [h.ip for h in handshakes if not h.control and h.failure is None]
            else:
                working = [c.ip for c in connects if c.failure is None]
            chosen = _first_per_family(addresses, working)

            fetches: list[HTTPObservation] = []
            transfers: list[TransferObs] = []
            if chosen:
                fetches, transfers = await self._use(plan, chosen, with_throughput, controls)
            lookups = await resolving  # the UDP late windows, open meanwhile, are closed now
            shakes = await quic_run if quic_run is not None else []
        finally:
            resolving.cancel()
            if quic_run is not None:
                quic_run.cancel()
        evidence = await packets.collect(
            plan,
            self.settings,
            self.clock,
            lookups=lookups,
            connects=connects,
            handshakes=handshakes,
            fetches=fetches,
        )
        return Observations(
            dns=tuple(lookups),
            tcp=tuple(connects),
            tls=tuple(handshakes),
            http=tuple(fetches),
            throughput=tuple(transfers),
            packets=evidence,
            quic=tuple(shakes),
        )

    async def _resolve(
        self, host: str, answered: asyncio.Future[list[str]]
    ) -> list[DNSObservation]:
        """Every try of every resolver, system first (nothing for an IP-literal host).

        ``answered`` gets the addresses to test as soon as every resolver has either answered or
        given up, before the UDP late windows close: the connections need not wait for them.
        """
        if is_ip(host):
            return []
        resolvers = [dns.system_resolver(self.settings.system_resolver)]
        resolvers += [dns.parse_resolver(spec) for spec in self.settings.control_resolvers]
        # Every resolver is asked for both record types, system A first (its re-check pairs).
        asks: list[tuple[dns.Resolver, dns.QType]] = [
            (resolver, qtype) for resolver in resolvers for qtype in QTYPES
        ]
        settled: dict[int, list[DNSObservation]] = {}
        done: list[list[DNSObservation]] = [[] for _ in asks]

        def settle(i: int, observations: list[DNSObservation]) -> None:
            settled.setdefault(i, observations)
            if len(settled) == len(asks) and not answered.done():
                ordered = [obs for j in range(len(asks)) for obs in settled[j]]
                answered.set_result(_addresses(host, ordered))

        def lookup(
            i: int, resolver: dns.Resolver, qtype: dns.QType
        ) -> Callable[[float], Awaitable[DNSObservation]]:
            def early(obs: DNSObservation) -> None:
                # No retry follows an answer: its addresses are final. An AAAA query answered
                # without records is retried, but the connections need not wait for its retry.
                if obs.failure is None or (
                    qtype == "AAAA" and obs.failure is Failure.DNS_NO_ANSWER
                ):
                    settle(i, [*done[i], obs])

            async def one(deadline: float) -> DNSObservation:
                obs = await dns.resolve(
                    host,
                    resolver,
                    qtype=qtype,
                    deadline=deadline,
                    clock=self.clock,
                    ca_file=self.settings.ca_file,
                    early=early,
                )
                done[i].append(obs)
                return obs

            return one

        rechecks: list[DNSObservation] = []

        async def chain(i: int, resolver: dns.Resolver, qtype: dns.QType) -> list[DNSObservation]:
            tries = await self._retry(lookup(i, resolver, qtype), self.settings.timeouts.dns)
            if i == 0 and tries and all(q.failure is Failure.TIMEOUT for q in tries):
                rechecks.extend(await self._paired_recheck(host, resolver))
            settle(i, tries + rechecks if i == 0 else tries)
            return tries

        chains = await asyncio.gather(*(chain(i, r, q) for i, (r, q) in enumerate(asks)))
        return [obs for tries in chains for obs in tries] + rechecks

    async def _paired_recheck(self, host: str, resolver: dns.Resolver) -> list[DNSObservation]:
        """After the name timed out: more queries for it, interleaved with a canary's name.

        A censor dropping queries for one name drops all of them while the canary's are answered;
        a lossy or flapping resolver drops some of each. The queries go out staggered and
        concurrently, so the re-check costs about one DNS timeout.
        """
        canaries = [urllib.parse.urlsplit(url).hostname for url in self.settings.canaries]
        canary = next((name for name in canaries if name and not is_ip(name)), None)
        if canary is None:
            return []

        async def query(name: str, delay: float) -> DNSObservation:
            await asyncio.sleep(delay)
            deadline = asyncio.get_running_loop().time() + self.settings.timeouts.dns / 2
            return await dns.resolve(
                name, resolver, deadline=deadline, clock=self.clock, ca_file=self.settings.ca_file
            )

        names = [host, canary] * PAIRED_RECHECKS
        return list(
            await asyncio.gather(*(query(n, i * RECHECK_SPACING) for i, n in enumerate(names)))
        )

    async def _connect(
        self, addresses: Sequence[str], host: str, port: int, https: bool, controls: bool
    ) -> tuple[list[TCPConnectObservation], list[TLSHandshakeObservation]]:
        """TCP to every address and, over https, TLS with the platform SNI and the benign one."""
        timeouts = self.settings.timeouts

        def connect(ip: str) -> Callable[[float], Awaitable[TCPConnectObservation]]:
            return lambda deadline: tcp.connect(ip, port, deadline=deadline, clock=self.clock)

        def shake(ip: str, sni: str) -> Callable[[float], Awaitable[TLSHandshakeObservation]]:
            return lambda deadline: tls.handshake(
                ip,
                sni,
                port=port,
                deadline=deadline,
                clock=self.clock,
                ca_file=self.settings.ca_file,
                control=sni != host,
            )

        tcp_runs = [self._retry(connect(ip), timeouts.tcp_connect) for ip in addresses]
        tls_runs: list[Awaitable[list[TLSHandshakeObservation]]] = []
        if https:
            snis = [host, self.settings.benign_sni] if controls else [host]
            tls_runs = [
                self._retry(shake(ip, sni), timeouts.tls_handshake)
                for ip in addresses
                for sni in snis
            ]
        tcp_tries, tls_tries = await asyncio.gather(
            asyncio.gather(*tcp_runs), asyncio.gather(*tls_runs)
        )
        handshakes = [o for one in tls_tries for o in one]
        stalled = _stalled_silently(handshakes)
        if stalled:
            # Nothing came back for the platform SNI while the benign one worked: a drop, or a
            # queue so deep (a shaper) that the server's first bytes had not arrived yet. One
            # longer try after the others tells them apart.
            patient = timeouts.tls_handshake * PATIENT_FACTOR
            handshakes += await asyncio.gather(
                *(shake(ip, host)(deadline_in(patient)) for ip in stalled)
            )
        return [o for one in tcp_tries for o in one], handshakes

    async def _use(
        self, plan: EndpointPlan, ips: Sequence[str], with_throughput: bool, controls: bool
    ) -> tuple[list[HTTPObservation], list[TransferObs]]:
        """The HTTP fetch and the throughput transfers on the first of ``ips``, concurrently;
        and a fetch on each other one (another family) with what is left of the page budget (a
        quarter of it at most): beside the first fetch, or after the transfers when there are
        any, so that it cannot slow them."""
        settings = self.settings
        read: list[int] = []  # page bytes of earlier tries: every try shares one page budget

        def fetch(ip: str, cap: int) -> Callable[[float], Awaitable[HTTPObservation]]:
            async def one(deadline: float) -> HTTPObservation:
                obs = await http.fetch(
                    plan.url,
                    ip=ip,
                    deadline=deadline,
                    clock=self.clock,
                    ca_file=settings.ca_file,
                    follow_within=plan.platform_domains,
                    user_agent=settings.user_agent,
                    follow_upgrade=urllib.parse.urlsplit(plan.url).scheme != "http",
                    body_cap=max(min(cap, settings.page_bytes - sum(read)), 0),
                )
                read.append(obs.body_length or 0)
                return obs

            return one

        ip = ips[0]
        transfers: list[Awaitable[list[TransferObs]]] = []
        if with_throughput:
            jobs = [(plan.throughput_url, False)]
            jobs += [(plan.upload_url, True)] if plan.upload_url else []
            for url, up in jobs:
                if url is None:
                    continue
                transfers.append(self._transfer(url, ip, up=up, control=False))
                if controls:
                    transfers.append(self._transfer(url, ip, up=up, control=True))
        if transfers and controls:
            # The run's canary controls share the path with these transfers.
            canary_transfer.begin(
                (*(("down",) if plan.throughput_url else ()), *(("up",) if plan.upload_url else ()))
            )
        timeout = settings.timeouts.http_total
        share = other_family_page(settings)
        others = [self._retry(fetch(a, share), timeout) for a in ips[1:]]
        if transfers:  # the other families after the transfers: they must not slow them
            first = self._retry(fetch(ip, settings.page_bytes), timeout)
            fetches, moved = await asyncio.gather(first, asyncio.gather(*transfers))
            rest = await asyncio.gather(*others)
        else:  # all at once, the first leaving the others their share
            first = self._retry(fetch(ip, settings.page_bytes - share * len(others)), timeout)
            fetches, *rest = await asyncio.gather(first, *others)
            moved = []
        return fetches + [o for one in rest for o in one], [o for one in moved for o in one]

    async def _transfer(self, url: str, ip: str, *, up: bool, control: bool) -> list[TransferObs]:
        """One budgeted transfer (or its benign control), retried while it moved nothing."""
        settings = self.settings
        parts = urllib.parse.urlsplit(url)
        sni: str | None = None
        if control and parts.scheme == "https":
            sni = settings.benign_sni
        elif control:  # cleartext: the benign name goes in the Host header
            url = _with_host(parts, settings.benign_sni)
        deadline = deadline_in(settings.timeouts.throughput)
        tries: list[TransferObs] = []
        for _ in range(settings.retries + 1):
            if up:
                obs = await throughput.upload(
                    url,
                    ip=ip,
                    sni=sni,
                    control=control,
                    byte_budget=transfer_bytes(settings, up=True, control=control),
                    deadline=deadline,
                    clock=self.clock,
                )
            else:
                obs = await throughput.download(
                    url,
                    ip=ip,
                    sni=sni,
                    control=control,
                    byte_budget=transfer_bytes(settings, up=False, control=control),
                    deadline=deadline,
                    clock=self.clock,
                )
            tries.append(obs)
            moved = obs.bytes > 0 or any(count > 0 for _, count in obs.samples)  # wire bytes
            if obs.failure is None or moved or remaining(deadline) < 0.2:
                break
        return tries

    async def _retry(self, step: Callable[[float], Awaitable[Obs]], within: float) -> list[Obs]:
        return await retry(step, within, self.settings.retries)


def _stalled_silently(handshakes: Sequence[TLSHandshakeObservation]) -> list[str]:
    """Addresses where every platform-SNI try timed out with no byte back, but the server answered
    the benign SNI in TLS."""
    benign_ok = {h.ip for h in handshakes if h.control and h.server_answered}
    tries: dict[str, list[TLSHandshakeObservation]] = {}
    for h in handshakes:
        if not h.control:
            tries.setdefault(h.ip, []).append(h)
    return [
        ip
        for ip, hs in tries.items()
        if ip in benign_ok and all(h.failure is Failure.TIMEOUT and not h.received for h in hs)
    ]


def _first_per_family(addresses: Sequence[str], working: Sequence[str]) -> list[str]:
    """The first working address of each family, in ``addresses`` order."""
    chosen: dict[str | None, str] = {}
    for address in addresses:
        if address in working:
            chosen.setdefault(family_of(address), address)
    return list(chosen.values())


def _addresses(host: str, lookups: Sequence[DNSObservation]) -> list[str]:
    """The addresses to test: the host itself if it is an IP, else system answers then control's."""
    if is_ip(host):
        return [host]
    ordered = [o for o in lookups if not o.control] + [o for o in lookups if o.control]
    found: list[str] = []
    for obs in ordered:
        found.extend(a for a in obs.addresses if a not in found)
    return found


def _with_host(parts: urllib.parse.SplitResult, host: str) -> str:
    """``parts`` as a URL with ``host`` in place of its host (the port kept)."""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
