"""The probe's one TLS client: every ClientHello it sends to a measured host comes from here.

A censor that fingerprints ClientHellos (JA3-style: version, cipher suites, extensions in order,
groups, ALPN) must see one client, whether it is the TLS step's measured handshake, the HTTP fetch
that follows it, a throughput transfer or a packet probe's trigger; otherwise a block keyed to
one fingerprint would show in one step and not the other, and the steps would disagree for a
reason that is not the network's. So all of them take their ``ssl.SSLContext`` from
``client_context``: OpenSSL's defaults for a TLS client (``PROTOCOL_TLS_CLIENT``, what
``ssl.create_default_context`` starts from) and one ALPN offer, ``ALPN``. Verification changes
no byte of the hello, so a non-verifying context sends the same one.

``ALPN`` is HTTP/1.1 alone because the fetch speaks HTTP/1.1 alone (docs/design/dependencies.md
says why); httpcore sets the same list on the context at each connection, so the shared contexts
never change.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

ALPN = ("http/1.1",)


def client_context(ca_file: Path | None, *, verify: bool = True) -> ssl.SSLContext:
    """A TLS client context trusting ``ca_file`` (or the system store); no checks if not verify.

    Contexts are shared (loading a trust store costs tens of milliseconds): one per trust store
    and verification. A changed ``ca_file`` (another modification time) gets a new context.
    """
    stamp = None
    if verify and ca_file is not None:
        try:
            stamp = ca_file.stat().st_mtime_ns
        except OSError:
            stamp = None  # the load below raises the error a caller expects
    return _context(ca_file if verify else None, stamp, verify)


@functools.lru_cache(maxsize=16)
def _context(ca_file: Path | None, stamp: int | None, verify: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        if ca_file is None:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            context.load_verify_locations(cafile=ca_file)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(list(ALPN))
    return context


def client_hello(sni: str) -> bytes:
    """The TLS record(s) of the ClientHello ``client_context`` sends for ``sni`` (no socket)."""
    context = client_context(None, verify=False)
    tls = context.wrap_bio(ssl.MemoryBIO(), (outgoing := ssl.MemoryBIO()), server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass  # expected: the hello is written and the handshake waits for the server
    return outgoing.read()
