"""Packet evidence over packets crafted with scapy: decoding, the BPF filter, the RST comparison,
DNS responses, the CenTrace hop inference, the lab's RST injector, and the unprivileged path."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
)

from censornet.servers.clienthello import parse_sni
from censornet.servers.rst_injector import drop_rule, forge_reset
from probe.model.failures import Failure
from probe.net import capture
from probe.net.capture import Captured, host_filter
from probe.net.headers import Packet, decode
from probe.net.triggers import client_hello, http_request
from probe.steps import centrace, dnspackets, packets
from probe.steps.centrace import HopProbe, infer_censor, summarise
from probe.steps.dnspackets import DnsResponsePacket, judge_dns
from probe.steps.packets import judge_reset

ME, SERVER, ROUTER = "198.18.11.2", "198.18.100.10", "198.18.11.1"
LPORT = 40000


def _decoded(pkt: IP) -> Packet:
    packet = decode(bytes(pkt))
    assert packet is not None
    return packet


def _synack(ttl: int = 63, ip_id: int = 0) -> Packet:
    return _decoded(
        IP(src=SERVER, dst=ME, ttl=ttl, id=ip_id, flags="DF")
        / TCP(sport=443, dport=LPORT, flags="SA", seq=5000, ack=1001)
    )


def _rst(ttl: int, ip_id: int) -> Packet:
    return _decoded(
        IP(src=SERVER, dst=ME, ttl=ttl, id=ip_id)
        / TCP(sport=443, dport=LPORT, flags="RA", seq=5001, ack=1301)
    )


def _server_data(ip_id: int, ttl: int = 63) -> Packet:
    return _decoded(
        IP(src=SERVER, dst=ME, ttl=ttl, id=ip_id, flags="DF")
        / TCP(sport=443, dport=LPORT, flags="PA", seq=5001, ack=1301)
        / (b"\x16\x03\x03" + bytes(100))
    )


# --- decoding ----------------------------------------------------------------------------


def test_decode_reads_tcp_fields_and_payload() -> None:
    """TTL, IP ID, DF, ports, flags, sequence numbers and payload come out as scapy put them."""
    packet = _decoded(
        IP(src=ME, dst=SERVER, ttl=5, id=777, flags="DF")
        / TCP(sport=LPORT, dport=443, flags="PA", seq=1001, ack=5001, options=[("MSS", 1460)])
        / b"hello"
    )
    assert (ME, SERVER, 5, 777, True) == (
        packet.src,
        packet.dst,
        packet.ttl,
        packet.ip_id,
        packet.df,
    )
    assert (LPORT, 443, 1001, 5001, b"hello") == (
        packet.sport,
        packet.dport,
        packet.seq,
        packet.ack,
        packet.payload,
    )
    assert not packet.is_rst and not packet.is_synack
    assert _synack().is_synack and _rst(37, 1).is_rst


def test_decode_reads_the_segment_an_icmp_error_quotes() -> None:
    """A time-exceeded names the router and quotes our 5-tuple (IP header + 8 bytes)."""
    offending = IP(src=ME, dst=SERVER, ttl=1, id=9) / TCP(sport=LPORT, dport=443, seq=1001)
    quoted_bytes = bytes(offending)[:28]
    icmp = _decoded(IP(src=ROUTER, dst=ME, ttl=64) / ICMP(type=11, code=0) / quoted_bytes)
    assert (ROUTER, 11, 0) == (icmp.src, icmp.icmp_type, icmp.icmp_code)
    assert icmp.quoted is not None
    assert (ME, SERVER, LPORT, 443, 1001) == (
        icmp.quoted.src,
        icmp.quoted.dst,
        icmp.quoted.sport,
        icmp.quoted.dport,
        icmp.quoted.seq,
    )


def test_decode_rejects_what_is_not_a_whole_ip_packet() -> None:
    """A bare IPv6 header with a hop-by-hop header cut off, truncated headers and later
    fragments give None."""
    assert decode(b"\x60" + bytes(39)) is None
    assert decode(bytes(IP(src=ME, dst=SERVER) / TCP())[:30]) is None
    assert decode(bytes(IP(src=ME, dst=SERVER, frag=10) / UDP())) is None


# --- the kernel filter -------------------------------------------------------------------


def _run_bpf(program: list[tuple[int, int, int, int]], ethertype: int, data: bytes) -> int:
    """A classic-BPF interpreter for the instructions host_filter uses."""
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x20:  # ld word (or the ethertype)
            acc = ethertype if k == 0xFFFFF000 else struct.unpack_from("!I", data, k)[0]
        elif code == 0x30:  # ld byte
            acc = data[k]
        elif code == 0x54:  # and
            acc &= k
        elif code == 0x15:  # jeq
            pc += jt if acc == k else jf
        elif code == 0x05:  # ja
            pc += k
        elif code == 0x06:  # ret
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def test_host_filter_keeps_the_remote_host_and_icmp_only() -> None:
    """To or from the remote: kept; other hosts, IPv6, ARP: dropped; ICMP only when asked."""
    to_server = bytes(IP(src=ME, dst=SERVER) / TCP())
    from_server = bytes(IP(src=SERVER, dst=ME) / UDP())
    elsewhere = bytes(IP(src=ME, dst="198.18.101.10") / TCP())
    icmp = bytes(IP(src=ROUTER, dst=ME) / ICMP(type=11))
    plain, with_icmp = host_filter(SERVER), host_filter(SERVER, icmp=True)
    assert 0 < _run_bpf(plain, 0x0800, to_server)
    assert 0 < _run_bpf(plain, 0x0800, from_server)
    assert 0 == _run_bpf(plain, 0x0800, elsewhere)
    assert 0 == _run_bpf(plain, 0x0800, icmp)
    assert 0 < _run_bpf(with_icmp, 0x0800, icmp)
    assert 0 == _run_bpf(with_icmp, 0x0800, elsewhere)
    assert 0 == _run_bpf(plain, 0x86DD, to_server)
    assert 0 == _run_bpf(plain, 0x0800, b"\x60" + to_server[1:])


# --- injected resets ---------------------------------------------------------------------


def test_rst_with_a_distant_ttl_is_injected() -> None:
    """An RST at IP TTL 37 after a SYN-ACK at 63 is a middlebox's."""
    found = judge_reset([_synack(), _rst(37, 0x1337)], ip=SERVER, port=443, sni="twitter.com")
    assert found.injected
    assert (37, 63, 0x1337, 0) == (
        found.rst_ttl,
        found.synack_ttl,
        found.rst_ip_id,
        found.synack_ip_id,
    )
    assert "differ by 26 hops" in found.description


def test_rst_at_the_servers_distance_is_not_injected() -> None:
    """The SYN-ACK's distance, or one hop further (a route change): the server may have sent it."""
    for ttl in (63, 62):
        found = judge_reset([_synack(), _rst(ttl, 0)], ip=SERVER, port=443, sni="x.com")
        assert not found.injected, ttl
        assert "consistent with the server" in found.description


# --- hop distance ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "initial", "hops"),
    [
        (64, 64, 0),
        (63, 64, 1),
        (1, 64, 63),
        (0, 64, 64),
        (65, 128, 63),
        (128, 128, 0),
        (127, 128, 1),
        (129, 255, 126),
        (255, 255, 0),
        (254, 255, 1),
    ],
)
def test_hop_distance_from_the_nearest_initial_ttl(ttl: int, initial: int, hops: int) -> None:
    """The nearest common initial TTL at or above the TTL (64, 128, 255), minus the TTL."""
    assert (initial, hops) == (packets.initial_ttl(ttl), packets.hop_distance(ttl))


def test_hop_distance_rejects_what_is_not_a_ttl() -> None:
    with pytest.raises(ValueError, match="0..255"):
        packets.hop_distance(256)


def _tries(synack_ttl: int, *rst_ttls: int) -> list[packets.PacketEvidence]:
    return [
        judge_reset([_synack(synack_ttl), _rst(ttl, 0)], ip=SERVER, port=443, sni="x.com")
        for ttl in rst_ttls
    ]


def test_rst_one_hop_closer_on_every_try_is_a_device_on_the_path() -> None:
    """The censor on the first router: its RST at 64 (0 hops), the SYN-ACK at 63 (1 hop)."""
    one = _tries(63, 64)[0]
    assert (False, 1, 0, 1) == (one.injected, one.hops_closer, one.rst_hops, one.synack_hops)
    assert "1 hop closer than the server" in one.description
    assert "route change" in one.description
    found = packets.combine_tries(_tries(63, 64, 64))
    assert (True, 1, 2) == (found.injected, found.hops_closer, found.tries)
    assert (64, 64) == found.rst_ttls
    assert "1 hop closer than the server on 2 of 2 tries" in found.description
    assert "consistent with the server" not in found.description


def test_one_hop_closer_only_once_is_not_enough() -> None:
    """One try closer, one at the server's distance; or a single try: not a device on the path."""
    mixed = packets.combine_tries(_tries(63, 64, 63))
    assert not mixed.injected
    assert "not consistent" in mixed.description
    single = packets.combine_tries(_tries(63, 64))
    assert not single.injected


@pytest.mark.parametrize(
    ("synack_ttl", "rst_ttl", "closer"),
    [(126, 127, 1), (253, 254, 1), (62, 63, 1), (61, 64, 3)],
)
def test_closer_by_hops_at_every_initial_ttl(synack_ttl: int, rst_ttl: int, closer: int) -> None:
    """Windows-like (128) and router-like (255) senders are judged by hops the same way."""
    found = packets.combine_tries(_tries(synack_ttl, rst_ttl, rst_ttl))
    assert (True, closer) == (found.injected, found.hops_closer)
    plural = "hop" if closer == 1 else "hops"
    assert f"{closer} {plural} closer than the server" in found.description


def test_a_different_initial_ttl_at_the_first_router_is_one_hop_closer() -> None:
    """An RST at 128 (a box starting at 128, 0 hops) after a SYN-ACK at 63: injected at once."""
    found = packets.combine_tries(_tries(63, 128))
    assert (True, 1) == (found.injected, found.hops_closer)
    assert "1 hop closer than the server" in found.description


def test_rst_with_an_unrelated_ip_id_is_injected() -> None:
    """Same TTL, but an IP ID far from the server's own counter: injected."""
    base = [_synack(), _server_data(ip_id=21000)]
    near = judge_reset([*base, _rst(63, 21001)], ip=SERVER, port=443, sni="x.com")
    far = judge_reset([*base, _rst(63, 0x1337)], ip=SERVER, port=443, sni="x.com")
    assert (False, False) == (near.injected, near.ip_id_unrelated)
    assert (True, True) == (far.injected, far.ip_id_unrelated)
    assert "IP ID is unrelated" in far.description


def test_ip_id_is_not_judged_without_a_server_counter() -> None:
    """Linux SYN-ACKs carry IP ID 0: alone they say nothing about a RST's IP ID."""
    found = judge_reset([_synack(ip_id=0), _rst(63, 54321)], ip=SERVER, port=443, sni="x.com")
    assert found.ip_id_unrelated is None
    assert not found.injected


def test_several_rsts_any_mismatch_counts() -> None:
    """The server's own RST and a forged one: the forged one decides and both TTLs are listed."""
    found = judge_reset([_synack(), _rst(63, 0), _rst(37, 7)], ip=SERVER, port=443, sni="x.com")
    assert found.injected
    assert (63, 37) == found.rst_ttls
    assert "2 RSTs" in found.description


def test_no_rst_or_no_synack_is_not_injection() -> None:
    """Server data without RST, or a RST without a SYN-ACK to compare with: not injected."""
    answered = judge_reset([_synack(), _server_data(100)], ip=SERVER, port=443, sni="x.com")
    assert not answered.injected and "server answered" in answered.description
    refused = judge_reset([_rst(63, 0)], ip=SERVER, port=443, sni="x.com")
    assert not refused.injected and "before any SYN-ACK" in refused.description
    other = judge_reset([_synack(), _rst(37, 1)], ip=SERVER, port=8443, sni="x.com")
    assert other.rst_ttl is None  # packets of another port are not this connection's


# --- DNS responses -----------------------------------------------------------------------


def test_conflicting_dns_answers_with_their_ip_ttls() -> None:
    """Two answers to one query are injection; the one not at the resolver's TTL is suspect."""
    forged = DnsResponsePacket(
        ip_ttl=64, ip_id=1, delay=0.001, rcode="NOERROR", addresses=("198.18.102.10",)
    )
    real = DnsResponsePacket(
        ip_ttl=63,
        ip_id=0,
        delay=0.002,
        rcode="NOERROR",
        addresses=("198.18.100.10", "198.18.100.11"),
    )
    found = judge_dns("twitter.com", "198.18.103.53", [forged, real], reference_ttl=63)
    assert (True, True, True, (0,)) == (
        found.injected,
        found.conflicting,
        found.ttls_differ,
        found.suspect,
    )
    assert "IP TTL 64" in found.description and "came from elsewhere" in found.description
    without_reference = judge_dns("twitter.com", "198.18.103.53", [forged, real])
    assert () == without_reference.suspect
    assert "different IP TTLs (63, 64)" in without_reference.description
    single = judge_dns("example.org", "198.18.103.53", [real], reference_ttl=63)
    assert (False, ()) == (single.injected, single.suspect)


def test_dns_response_packets_are_matched_to_the_query() -> None:
    """Captured UDP packets that answer the query id are read; others are ignored."""
    import dns.message

    query = dns.message.make_query("twitter.com", "A")
    answer = (
        IP(src="198.18.103.53", dst=ME, ttl=63, id=5)
        / UDP(sport=53, dport=LPORT)
        / DNS(
            id=query.id,
            qr=1,
            qd=DNSQR(qname="twitter.com"),
            an=DNSRR(rrname="twitter.com", rdata="198.18.100.10"),
        )
    )
    stray = (
        IP(src="198.18.103.53", dst=ME) / UDP(sport=53, dport=LPORT) / DNS(id=query.id ^ 1, qr=1)
    )
    seen = [Captured(1.001, False, _decoded(answer)), Captured(1.002, False, _decoded(stray))]
    found = dnspackets._responses(seen, query, "198.18.103.53", 53, LPORT, sent=1.0)
    assert 1 == len(found)
    assert (63, ("198.18.100.10",), "NOERROR") == (
        found[0].ip_ttl,
        found[0].addresses,
        found[0].rcode,
    )


# --- CenTrace ----------------------------------------------------------------------------


def _time_exceeded(router: str, sport: int = LPORT) -> Packet:
    quoted = bytes(IP(src=ME, dst=SERVER, ttl=0) / TCP(sport=sport, dport=443, seq=1001))[:28]
    return _decoded(IP(src=router, dst=ME, ttl=64) / ICMP(type=11) / quoted)


def _probe(ttl: int, items: list[Captured], *, control: bool = False) -> HopProbe:
    return summarise(
        items,
        ip=SERVER,
        port=443,
        local_port=LPORT,
        host="twitter.com",
        ttl=ttl,
        sent=1.0,
        control=control,
    )


def test_summarise_reads_each_reaction_from_packets() -> None:
    """ICMP quoting our segment, a RST, a server answer, or nothing."""
    handshake = [Captured(0.9, False, _synack())]
    icmp = _probe(1, [*handshake, Captured(1.01, False, _time_exceeded(ROUTER))])
    assert ("icmp", ROUTER, 11) == (icmp.reaction, icmp.router, icmp.icmp_type)
    other_flow = _probe(1, [*handshake, Captured(1.01, False, _time_exceeded(ROUTER, 1234))])
    assert "silence" == other_flow.reaction
    reset = _probe(
        1,
        [
            *handshake,
            Captured(1.001, False, _time_exceeded(ROUTER)),
            Captured(1.002, False, _rst(37, 0x1337)),
        ],
    )
    assert ("reset", ROUTER, 37) == (reset.reaction, reset.router, reset.reset_ttl)
    assert 0.001 == pytest.approx(reset.elapsed)
    answered = _probe(2, [*handshake, Captured(1.003, False, _server_data(5))])
    assert "server" == answered.reaction
    acked = _decoded(
        IP(src=SERVER, dst=ME, ttl=63) / TCP(sport=443, dport=LPORT, flags="A", seq=5001, ack=1301)
    )
    assert "server" == _probe(2, [*handshake, Captured(1.002, False, acked)]).reaction
    assert "silence" == _probe(3, handshake).reaction


def test_infer_an_on_path_injector_at_its_routers_hop() -> None:
    """RST and the router's ICMP at TTL 1: the censor is at hop 1, tapping 198.18.11.1."""
    hops = [HopProbe(ttl=1, host="t", router=ROUTER, reset=True, reset_ttl=37)]
    assert ("reset", 1, ROUTER, None) == infer_censor(hops)


def test_infer_an_in_path_device_after_a_router() -> None:
    """ICMP at TTL 1, RST (no ICMP) at TTL 2: the device acts right after router 1."""
    hops = [
        HopProbe(ttl=1, host="t", router=ROUTER),
        HopProbe(ttl=2, host="t", reset=True, reset_ttl=64),
    ]
    assert ("reset", 2, None, ROUTER) == infer_censor(hops)


def test_infer_a_drop_only_where_the_control_goes_further() -> None:
    """Silence at TTL 2 is a drop only when the control host draws an answer there."""
    silent = [HopProbe(ttl=1, host="t", router=ROUTER), HopProbe(ttl=2, host="t")]
    assert ("unknown", None, None, None) == infer_censor(silent)
    with_control = [*silent, HopProbe(ttl=2, host="example.org", control=True, server=True)]
    assert ("drop", 2, None, ROUTER) == infer_censor(with_control)
    silent_control = [*silent, HopProbe(ttl=2, host="example.org", control=True)]
    assert "unknown" == infer_censor(silent_control)[0]


def test_infer_no_censor_when_the_trigger_reaches_the_server() -> None:
    """ICMP at 1, the server's answer at 2: nothing blocks."""
    hops = [HopProbe(ttl=1, host="t", router=ROUTER), HopProbe(ttl=2, host="t", server=True)]
    assert ("none", None, None, ROUTER) == infer_censor(hops)
    failed = [HopProbe(ttl=1, host="t", failure=Failure.CONNECTION_REFUSED)]
    assert ("unknown", None, None, None) == infer_censor(failed)


# --- triggers and the lab's injector -----------------------------------------------------


def test_triggers_carry_the_host() -> None:
    """The ClientHello is a real one with the SNI; the HTTP request names the Host."""
    hello = client_hello("twitter.com")
    assert 0x16 == hello[0]
    assert "twitter.com" == parse_sni(hello)
    assert b"\r\nHost: x.com\r\n" in http_request("x.com")


def _client_hello_segment(sni: str, *, seq: int = 1001, ack: int = 5001) -> bytes:
    return bytes(
        IP(src=ME, dst=SERVER, ttl=1, id=3)
        / TCP(sport=LPORT, dport=443, flags="PA", seq=seq, ack=ack)
        / client_hello(sni)
    )


def test_forged_reset_is_what_the_client_accepts() -> None:
    """From the server's address and port, seq = the client's ack, TTL 37, fixed IP ID."""
    segment = _client_hello_segment("api.twitter.com")
    forged = forge_reset(segment, ("twitter.com",))
    assert forged is not None
    reset = decode(forged)
    assert reset is not None
    hello_length = len(client_hello("api.twitter.com"))
    assert (SERVER, 443, ME, LPORT) == reset.flow()
    assert reset.is_rst
    assert (5001, 1001 + hello_length, 37, 0x1337) == (reset.seq, reset.ack, reset.ttl, reset.ip_id)
    checked = IP(forged)
    del checked.chksum, checked[TCP].chksum
    assert bytes(IP(bytes(checked))) == forged  # valid IP and TCP checksums


def test_forged_reset_only_for_covered_client_hellos() -> None:
    """Other SNIs, other ports, data that is not a handshake: nothing forged."""
    assert forge_reset(_client_hello_segment("example.org"), ("twitter.com",)) is None
    assert forge_reset(_client_hello_segment("twitter.com"), ()) is None
    other_port = bytes(
        IP(src=ME, dst=SERVER) / TCP(sport=LPORT, dport=8443) / client_hello("twitter.com")
    )
    assert forge_reset(other_port, ("twitter.com",)) is None
    http = bytes(IP(src=ME, dst=SERVER) / TCP(sport=LPORT, dport=443) / http_request("x"))
    assert forge_reset(http, ("twitter.com",)) is None
    assert ["BP_FWD", "-p", "tcp", "--dport", "443"] == drop_rule("twitter.com")[:5]


# --- without the capability --------------------------------------------------------------


@pytest.fixture
def _no_raw_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BLOCKPROBE_PACKETS", "off")
    capture.raw_sockets_available.cache_clear()
    yield
    capture.raw_sockets_available.cache_clear()


def _allow_all(host: str, ip: str) -> bool:
    return True


@pytest.mark.anyio
@pytest.mark.usefixtures("_no_raw_sockets")
async def test_without_capability_every_probe_says_not_available() -> None:
    """No exception and no packet: each result is available=False with a clear description."""
    from probe.net.clock import deadline_in

    reset = await packets.reset_evidence("127.0.0.1", "x.com", port=9, deadline=deadline_in(1))
    dns_found = await dnspackets.dns_evidence("x.com", "127.0.0.1", deadline=deadline_in(1))
    located = await centrace.locate_censor(
        "127.0.0.1", "x.com", allow=_allow_all, deadline=deadline_in(1)
    )
    for result in (reset, dns_found, located):
        assert not result.available
        assert "not available" in result.description
        assert "CAP_NET_RAW" in result.description
    assert () == located.hops


@pytest.mark.anyio
async def test_tracing_a_host_that_is_not_configured_is_refused() -> None:
    """The allow check runs first: a refused endpoint raises before any packet."""
    from probe.net.clock import deadline_in

    with pytest.raises(ValueError, match="not a configured endpoint"):
        await centrace.locate_censor(
            SERVER, "evil.example", allow=lambda host, ip: False, deadline=deadline_in(1)
        )


def test_capability_check_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked once: later calls do not open sockets again."""
    capture.raw_sockets_available.cache_clear()
    monkeypatch.delenv("BLOCKPROBE_PACKETS", raising=False)
    opened: list[int] = []
    real = socket.socket

    def counting(*args: object, **kwargs: object) -> socket.socket:
        opened.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "socket", counting)
    first = capture.raw_sockets_available()
    assert first == capture.raw_sockets_available()
    assert 1 == len(opened)
    capture.raw_sockets_available.cache_clear()


# --- IPv6 --------------------------------------------------------------------------------

ME6, SERVER6, ROUTER6 = "fd00:198:18:11::2", "fd00:198:18:100::10", "fd00:198:18:11::1"


def test_decode_reads_an_ipv6_segment_with_its_hop_limit() -> None:
    """IPv6: the hop limit stands for the TTL; no IP ID (0), never fragmented by routers."""
    segment = IPv6(src=SERVER6, dst=ME6, hlim=61) / TCP(sport=443, dport=LPORT, flags="R")
    packet = _decoded(segment)
    assert (SERVER6, ME6, 61, 0, True) == (
        packet.src,
        packet.dst,
        packet.ttl,
        packet.ip_id,
        packet.df,
    )
    assert packet.is_rst and (443, LPORT) == (packet.sport, packet.dport)


def test_decode_skips_ipv6_extension_headers_and_rejects_fragments() -> None:
    """A destination-options header is skipped; a fragment gives None."""
    with_options = IPv6(src=SERVER6, dst=ME6) / IPv6ExtHdrDestOpt() / UDP(sport=53, dport=LPORT)
    assert (53, LPORT) == (_decoded(with_options).sport, _decoded(with_options).dport)
    assert decode(bytes(IPv6(src=SERVER6, dst=ME6) / IPv6ExtHdrFragment() / UDP())) is None


def test_decode_reads_the_segment_an_icmpv6_error_quotes() -> None:
    """An ICMPv6 time exceeded reads as ICMP's (type 11), naming the router and our 5-tuple."""
    offending = IPv6(src=ME6, dst=SERVER6, hlim=1) / TCP(sport=LPORT, dport=443, seq=1001)
    icmp = _decoded(IPv6(src=ROUTER6, dst=ME6) / ICMPv6TimeExceeded() / bytes(offending))
    assert (ROUTER6, socket.IPPROTO_ICMPV6, 11) == (icmp.src, icmp.proto, icmp.icmp_type)
    assert icmp.quoted is not None
    assert (ME6, SERVER6, LPORT, 443, 1001) == (
        icmp.quoted.src,
        icmp.quoted.dst,
        icmp.quoted.sport,
        icmp.quoted.dport,
        icmp.quoted.seq,
    )
    unreachable = _decoded(IPv6(src=ROUTER6, dst=ME6) / ICMPv6DestUnreach() / bytes(offending))
    assert 3 == unreachable.icmp_type


def test_host_filter_for_an_ipv6_remote() -> None:
    """To or from the IPv6 remote: kept; another IPv6 host, IPv4: dropped; ICMPv6 when asked."""
    to_server = bytes(IPv6(src=ME6, dst=SERVER6) / TCP())
    from_server = bytes(IPv6(src=SERVER6, dst=ME6) / UDP())
    # Differs from the remote in its last word only, then in its first only.
    near = bytes(IPv6(src=ME6, dst="fd00:198:18:100::11") / TCP())
    far = bytes(IPv6(src="fd01:198:18:100::10", dst=ME6) / TCP())
    icmp = bytes(IPv6(src=ROUTER6, dst=ME6) / ICMPv6TimeExceeded())
    plain, with_icmp = host_filter(SERVER6), host_filter(SERVER6, icmp=True)
    assert 0 < _run_bpf(plain, 0x86DD, to_server)
    assert 0 < _run_bpf(plain, 0x86DD, from_server)
    assert 0 == _run_bpf(plain, 0x86DD, near)
    assert 0 == _run_bpf(plain, 0x86DD, far)
    assert 0 == _run_bpf(plain, 0x86DD, icmp)
    assert 0 < _run_bpf(with_icmp, 0x86DD, icmp)
    assert 0 == _run_bpf(with_icmp, 0x86DD, near)
    assert 0 == _run_bpf(plain, 0x0800, bytes(IP(src=ME, dst=SERVER) / TCP()))
