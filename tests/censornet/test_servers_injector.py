"""The DNS injector's forged packets, parsed back byte by byte."""

from __future__ import annotations

import socket
import struct

import dns.flags
import dns.message
import dns.rdatatype

from censornet.policy import InjectRule
from censornet.servers.injector import _checksum, build_udp_packet, forge_response

CLIENT, RESOLVER = "198.18.11.2", "198.18.10.53"
RULES = (InjectRule(suffix="twitter.com", answer="198.18.102.10"),)


def _query_packet(name: str, rdtype: str = "A", *, dport: int = 53) -> tuple[bytes, int]:
    query = dns.message.make_query(name, rdtype)
    packet = build_udp_packet(query.to_wire(), src=CLIENT, dst=RESOLVER, sport=40123, dport=dport)
    return packet, query.id


def test_forged_answer_matches_the_query() -> None:
    """Right id and question, one A record (TTL 60), from the queried address and port 53."""
    packet, query_id = _query_packet("api.twitter.com")
    forged = forge_response(packet, RULES)
    assert forged is not None
    version_ihl, _, total, _, _, ttl, proto, _, src, dst = struct.unpack(
        "!BBHHHBBH4s4s", forged[:20]
    )
    assert (0x45, len(forged), 64, socket.IPPROTO_UDP) == (version_ihl, total, ttl, proto)
    assert (RESOLVER, CLIENT) == (socket.inet_ntoa(src), socket.inet_ntoa(dst))
    assert 0 == _checksum(forged[:20])
    sport, dport, length, _ = struct.unpack("!HHHH", forged[20:28])
    assert (53, 40123, len(forged) - 20) == (sport, dport, length)
    pseudo = forged[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
    assert 0 == _checksum(pseudo + forged[20:])
    response = dns.message.from_wire(forged[28:])
    assert query_id == response.id
    assert response.flags & dns.flags.QR
    assert "api.twitter.com." == response.question[0].name.to_text()
    assert 1 == len(response.answer)
    rrset = response.answer[0]
    assert (60, dns.rdatatype.A) == (rrset.ttl, rrset.rdtype)
    assert ["198.18.102.10"] == [r.address for r in rrset]


def test_only_covered_a_queries_to_port_53_are_forged() -> None:
    """Other names, other types, other ports and responses pass untouched."""
    assert forge_response(_query_packet("example.org")[0], RULES) is None
    assert forge_response(_query_packet("twitter.com", "AAAA")[0], RULES) is None
    assert forge_response(_query_packet("twitter.com", dport=5353)[0], RULES) is None
    assert forge_response(_query_packet("twitter.com")[0], ()) is None
    forged = forge_response(_query_packet("twitter.com")[0], RULES)
    assert forged is not None
    assert forge_response(forged, RULES) is None  # a response is never answered
    assert forge_response(b"\x45" + bytes(40), RULES) is None


def test_fragments_are_ignored() -> None:
    """A fragmented query cannot be parsed reliably and is left alone."""
    packet, _ = _query_packet("twitter.com")
    fragment = packet[:6] + struct.pack("!H", 0x2000) + packet[8:]
    assert forge_response(fragment, RULES) is None
