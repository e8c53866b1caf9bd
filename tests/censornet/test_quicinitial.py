"""censornet.servers.quicinitial: RFC 9001's Initial key vectors, real aioquic client Initials
decrypted to their SNI, and a forged CONNECTION_CLOSE that aioquic's client accepts as the
server's."""

from __future__ import annotations

from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated

from censornet.servers.quicinitial import forge_close, initial_keys, read_client_initial

RFC_DCID = bytes.fromhex("8394c8f03e515708")


def test_initial_keys_match_rfc_9001_appendix_a() -> None:
    """Both directions' key, IV and header protection key for the RFC's DCID."""
    client, server = initial_keys(RFC_DCID, server=False), initial_keys(RFC_DCID, server=True)
    assert client.key.hex() == "1f369613dd76d5467730efcbe3b1a22d"
    assert client.iv.hex() == "fa044b2f42a3fd3b46fb255c"
    assert client.hp.hex() == "9f50449e04a0e810283a1e9933adedd2"
    assert server.key.hex() == "cf3a5331653c364c88f0f379b6067e37"
    assert server.iv.hex() == "0ac1493ca1905853b0bba03e"
    assert server.hp.hex() == "c206b8d9b9f0f37644430b490eeaa314"


def _client(sni: str) -> tuple[QuicConnection, bytes]:
    conn = QuicConnection(
        configuration=QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=sni)
    )
    conn.connect(("198.18.100.30", 443), now=0.0)
    return conn, conn.datagrams_to_send(now=0.0)[0][0]


def test_a_real_client_initial_decrypts_to_its_sni() -> None:
    """aioquic's first datagram: a padded Initial whose ClientHello names the SNI."""
    _, datagram = _client("www.youtube.com")
    assert len(datagram) >= 1200
    initial = read_client_initial(datagram)
    assert initial is not None
    assert initial.sni == "www.youtube.com" and initial.packet_number == 0
    assert initial.crypto[0] == 0x01  # a ClientHello


def test_what_is_not_a_client_initial_is_refused() -> None:
    """Another DCID's keys do not decrypt it; short headers and junk are not Initials."""
    _, datagram = _client("www.youtube.com")
    tampered = bytearray(datagram)
    tampered[6] ^= 0xFF  # the first byte of the DCID: other keys
    assert read_client_initial(bytes(tampered)) is None
    assert read_client_initial(b"\x40" + bytes(60)) is None
    assert read_client_initial(b"") is None


def test_a_forged_close_ends_the_client_handshake() -> None:
    """The forged server Initial decrypts under the keys the client expects: it closes."""
    conn, datagram = _client("www.facebook.com")
    initial = read_client_initial(datagram)
    assert initial is not None
    conn.receive_datagram(
        forge_close(initial, 0x100 + 40, "blocked"), ("198.18.100.30", 443), now=0.01
    )
    conn.handle_timer(now=10.0)  # past the draining period
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    closes = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert closes and closes[0].error_code == 0x128 and closes[0].reason_phrase == "blocked"
