"""quic.handshake against the lab's HTTP/3 origin (aioquic's server) on 127.0.0.1, and against UDP
servers that answer the way censors do: silence, an ICMP port unreachable, a forged
CONNECTION_CLOSE in an Initial packet, a Version Negotiation packet."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme

from censornet.servers.h3origin import Binding, H3Origin
from censornet.servers.quicinitial import forge_close, read_client_initial
from probe.model.failures import Failure
from probe.model.observations import QUICObservation
from probe.net.clock import Clock, deadline_in
from probe.steps import quic

pytestmark = pytest.mark.anyio

NAME = "www.youtube.test"
PAGE = b"<html><title>YouTube</title></html>" * 20


@pytest.fixture
async def origin(ca: trustme.CA, tmp_path: Path) -> AsyncIterator[int]:
    """The HTTP/3 origin serving a front page and a large object, on a free UDP port."""
    leaf = ca.issue_cert(NAME)
    cert, key, www = tmp_path / "site.pem", tmp_path / "site.key", tmp_path / "www"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    www.mkdir()
    (www / "index.html").write_bytes(PAGE)
    (www / "_large.bin").write_bytes(b"\0" * 200_000)
    server = H3Origin([Binding("127.0.0.1", 0, cert, key, www)])
    await server.start()
    yield server.ports[0]
    await server.close()


async def _shake(port: int, sni: str = NAME, **options: object) -> QUICObservation:
    return await quic.handshake(
        "127.0.0.1",
        sni,
        port=port,
        deadline=deadline_in(float(options.pop("wait", 2.0))),  # type: ignore[arg-type]
        clock=Clock(),
        **options,  # type: ignore[arg-type]
    )


async def test_handshake_and_get(origin: int, ca_file: Path) -> None:
    """A valid certificate for the SNI: handshake, h3, the page over HTTP/3, bytes both ways."""
    seen = await _shake(origin, ca_file=ca_file, path="/")
    assert seen.failure is None and seen.alpn == "h3" and seen.version == "0x00000001"
    assert seen.cert_valid is True and seen.status == 200 and seen.body_length == len(PAGE)
    assert seen.handshake_seconds is not None and 0 < seen.handshake_seconds < seen.t - seen.t0
    assert seen.sent >= 1200 and seen.received > len(PAGE)


async def test_large_object_is_capped(origin: int, ca_file: Path) -> None:
    """Any other path is the large object: the GET stops after the body cap."""
    seen = await _shake(origin, ca_file=ca_file, path="/video", body_cap=4096)
    assert seen.status == 200 and 4096 <= (seen.body_length or 0) < 200_000


async def test_benign_control_needs_no_valid_certificate(origin: int) -> None:
    """The benign SNI: the server answers QUIC with its own certificate; the control is ok."""
    seen = await _shake(origin, "example.org", control=True)
    assert seen.failure is None and seen.server_answered and seen.cert_valid is None


async def test_wrong_name_is_a_certificate_failure(origin: int, ca_file: Path) -> None:
    """A name the certificate does not carry: refused by the client, not a censor's close."""
    seen = await _shake(origin, "other.test", ca_file=ca_file, path="/")
    assert seen.failure is Failure.SSL_INVALID_HOSTNAME and seen.close is None


async def test_unknown_authority(origin: int, tmp_path: Path) -> None:
    """A chain from a CA the probe does not trust."""
    other_file = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_file))
    seen = await _shake(origin, ca_file=other_file, path="/")
    assert seen.failure in (Failure.SSL_UNKNOWN_AUTHORITY, Failure.SSL_INVALID_CERTIFICATE)


async def _udp_server(
    answer: Callable[[bytes], bytes | None],
) -> tuple[asyncio.DatagramTransport, int]:
    class Protocol(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            reply = answer(data)
            if reply is not None:
                self.transport.sendto(reply, addr)  # type: ignore[attr-defined]

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Protocol, local_addr=("127.0.0.1", 0)
    )
    return transport, int(transport.get_extra_info("sockname")[1])


async def test_silence_is_a_timeout() -> None:
    """Initials dropped: nothing comes back before the deadline."""
    transport, port = await _udp_server(lambda data: None)
    try:
        seen = await _shake(port, wait=0.6)
    finally:
        transport.close()
    assert seen.failure is Failure.TIMEOUT and seen.received == 0 and seen.sent >= 1200
    assert seen.close is None and 0.5 < seen.t - seen.t0 < 1.5


async def test_icmp_port_unreachable() -> None:
    """Nothing listens: the kernel's ICMP port unreachable ends the try at once."""
    transport, port = await _udp_server(lambda data: None)
    transport.close()
    await asyncio.sleep(0.05)
    seen = await _shake(port)
    assert seen.failure is Failure.CONNECTION_REFUSED and seen.close == "icmp"
    assert seen.t - seen.t0 < 1.0


def _forged_close(datagram: bytes) -> bytes | None:
    """What an in-path censor that read the Initial sends: a server Initial with a
    CONNECTION_CLOSE, under the Initial keys it derived from the client's DCID."""
    initial = read_client_initial(datagram)
    assert initial is not None and initial.sni == NAME
    return forge_close(initial, 0x100 + 40, "forged")


async def test_forged_connection_close() -> None:
    """A CONNECTION_CLOSE in an Initial the client can decrypt: closed, with its code."""
    transport, port = await _udp_server(_forged_close)
    try:
        seen = await _shake(port)
    finally:
        transport.close()
    assert seen.failure is Failure.QUIC_CLOSED and seen.close == "connection_close"
    assert seen.error_code == 0x100 + 40 and seen.reason == "forged"
    assert seen.server_answered


def _version_negotiation(initial: bytes) -> bytes:
    dcid = initial[6 : 6 + initial[5]]
    scid_at = 6 + initial[5]
    scid = initial[scid_at + 1 : scid_at + 1 + initial[scid_at]]
    header = bytes([0x80]) + b"\0\0\0\0" + bytes([len(scid)]) + scid + bytes([len(dcid)]) + dcid
    return header + bytes.fromhex("babababa") + bytes.fromhex("ff00001d")


async def test_version_negotiation_without_v1() -> None:
    """A Version Negotiation packet offering no version we speak ends the try."""
    transport, port = await _udp_server(_version_negotiation)
    try:
        seen = await _shake(port)
    finally:
        transport.close()
    assert seen.failure is Failure.QUIC_INCOMPATIBLE_VERSION
    assert seen.versions == ("0xbabababa", "0xff00001d")


def test_importing_the_probe_does_not_import_aioquic() -> None:
    """The daemon, the run command, the flows (DNS steps included: dnspython would load aioquic
    for DNS over QUIC) and the step's own module load without aioquic: only a QUIC step that runs
    imports it."""
    code = (
        "import sys\n"
        "import probe.daemon.service, probe.commands.run, probe.run, probe.steps.quic\n"
        "import probe.flows.web, probe.classify, probe.steps.dns, dns.asyncquery\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aioquic'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


async def test_without_the_library_the_step_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioquic absent: no packet, an observation naming why."""
    monkeypatch.setattr(quic, "available", lambda: False)
    seen = await _shake(9)
    assert seen.skipped == quic.SKIPPED_NO_LIBRARY and seen.sent == 0


async def test_deadline_holds_while_datagrams_keep_coming() -> None:
    """A peer that never stops sending (a policed transfer, a flood of junk): the step still
    ends at its deadline. A datagram arriving just as the deadline's cancellation lands must not
    swallow it (Python 3.11's asyncio.wait_for did, and the step then ran on)."""
    loop = asyncio.get_running_loop()
    floods: list[asyncio.Task[None]] = []
    peer: list[tuple[str, int]] = []  # the newest client's address

    async def flood(transport: asyncio.DatagramTransport) -> None:
        junk = bytes([0x40]) + bytes(range(256)) * 4  # a short-header packet no one can open
        while not transport.is_closing():
            for _ in range(20):
                transport.sendto(junk, peer[-1])
            await asyncio.sleep(0.001)

    class Flooder(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            peer.append(addr)
            if not floods:
                floods.append(loop.create_task(flood(self.transport)))  # type: ignore[arg-type]

    transport, _ = await loop.create_datagram_endpoint(Flooder, local_addr=("127.0.0.1", 0))
    port = int(transport.get_extra_info("sockname")[1])
    try:
        for _ in range(5):
            started = loop.time()
            seen = await _shake(port, wait=0.3)
            assert loop.time() - started < 2.0
            assert seen.failure is Failure.TIMEOUT and seen.received > 0
    finally:
        transport.close()
        for task in floods:
            await task
