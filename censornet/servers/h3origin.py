"""The lab's HTTP/3 origin: aioquic's QUIC and HTTP/3 server on UDP 443 of the HTTP/3 sites.

The lab's nginx (Debian's 1.22) has no QUIC, so the platforms that speak HTTP/3
(``topology.HTTP3_SITES``) get this server beside it, on the same addresses, serving the same
files from the state directory's ``www/SITE`` tree with the same lab-CA certificate: ``/`` is the
front page, a listed object is itself, and any other path is the large object, as nginx's
``try_files`` does. Each address presents its site's certificate whatever name the client asks
(the ``own-cert`` answer of ``censornet.origins``; aioquic has no SNI callback), so a benign-SNI
QUIC handshake completes without a valid certificate, as on real platform fronts.

Run as ``python -m censornet.servers.h3origin --state STATE_DIR`` in inet; it writes
``ready/h3origin`` once every address listens. ``H3Origin`` serves any (address, certificate,
root) list, so tests run it on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import mimetypes
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent

from censornet import topology
from censornet.pki import pki_paths
from censornet.servers.ready import write_ready

log = logging.getLogger(__name__)

LARGE_OBJECT = "_large.bin"  # censornet.content.LARGE_OBJECT
READY_NAME = "h3origin"
SERVER = b"blockprobe-lab-h3"


@dataclass(frozen=True)
class Binding:
    """One address the origin listens on, with the certificate it presents and its files."""

    host: str
    port: int
    cert: Path
    key: Path
    root: Path


def lab_bindings(state_dir: Path, port: int = 443) -> list[Binding]:
    """The lab's HTTP/3 addresses: every address of every site in ``topology.HTTP3_SITES``."""
    pki = pki_paths(state_dir)
    found: list[Binding] = []
    for site in topology.HTTP3_SITES:
        ips = sorted({ip for name in topology.SITES[site] for ip in topology.ZONE.get(name, ())})
        found += [
            Binding(ip, port, pki.cert(site), pki.key(site), state_dir / "www" / site) for ip in ips
        ]
    return found


def resolve(root: Path, path: str) -> Path:
    """The file that answers ``path`` under ``root``: the front page, an object, or the large
    object (never a file outside ``root``)."""
    clean = path.split("?", 1)[0].lstrip("/")
    if clean in ("", "index.html"):
        return root / "index.html"
    candidate = (root / clean).resolve()
    if root.resolve() in candidate.parents and candidate.is_file():
        return candidate
    return root / LARGE_OBJECT


class _Http3Protocol(QuicConnectionProtocol):
    """One QUIC connection: HTTP/3 GET and HEAD of the binding's files."""

    root: Path = Path()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._h3: H3Connection | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if self._h3 is None:
            if self._quic.tls is None or self._quic.tls.alpn_negotiated not in H3_ALPN:
                return
            self._h3 = H3Connection(self._quic)
        for h3_event in self._h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                self._answer(h3_event)

    def _answer(self, request: HeadersReceived) -> None:
        assert self._h3 is not None
        fields = dict(request.headers)
        method = fields.get(b":method", b"")
        path = fields.get(b":path", b"/").decode("ascii", errors="replace")
        if method not in (b"GET", b"HEAD"):
            self._h3.send_headers(
                request.stream_id, [(b":status", b"405"), (b"server", SERVER)], end_stream=True
            )
        else:
            target = resolve(self.root, path)
            body = target.read_bytes()
            media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if target.name == "index.html":
                media = "text/html; charset=utf-8"
            headers = [
                (b":status", b"200"),
                (b"server", SERVER),
                (b"content-type", media.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ]
            head_only = method == b"HEAD"
            self._h3.send_headers(request.stream_id, headers, end_stream=head_only)
            if not head_only:
                self._h3.send_data(request.stream_id, body, end_stream=True)
        self.transmit()


class H3Origin:
    """aioquic HTTP/3 servers on every binding; ``start`` once, ``close`` once."""

    def __init__(self, bindings: Sequence[Binding]) -> None:
        self.bindings = tuple(bindings)
        self.ports: list[int] = []  # the UDP port of each binding, once started (0 picks one)
        self._servers: list[QuicServer] = []

    async def start(self) -> None:
        """Listen on every binding (raises OSError when an address cannot be bound)."""
        for binding in self.bindings:
            configuration = QuicConfiguration(
                is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=None
            )
            configuration.load_cert_chain(binding.cert, binding.key)
            protocol = type("Http3Site", (_Http3Protocol,), {"root": binding.root})
            transport, server = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda c=configuration, p=protocol: QuicServer(  # type: ignore[misc]
                    configuration=c, create_protocol=p
                ),
                local_addr=(binding.host, binding.port),
            )
            self.ports.append(int(transport.get_extra_info("sockname")[1]))
            self._servers.append(server)

    async def close(self) -> None:
        """Stop listening."""
        for server in self._servers:
            server.close()
        self._servers.clear()


async def _serve(state_dir: Path) -> None:
    origin = H3Origin(lab_bindings(state_dir))
    ready = state_dir / "ready" / READY_NAME
    ready.unlink(missing_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await origin.start()
    try:
        write_ready(ready)
        log.info("HTTP/3 origin listening on %d addresses", len(origin.bindings))
        await stop.wait()
    finally:
        await origin.close()
        ready.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m censornet.servers.h3origin --state STATE_DIR``."""
    parser = argparse.ArgumentParser(prog="python -m censornet.servers.h3origin")
    parser.add_argument("--state", type=Path, required=True, help="the lab's state directory")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s h3origin %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(_serve(args.state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
