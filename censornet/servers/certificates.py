"""Server TLS contexts chosen by SNI: the lab CA's site certificates, or minted interception ones.

Both choosers are plain callables ``(sni) -> SSLContext`` so a server can pick the context from a
ClientHello it peeked at before the handshake.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import ssl
from collections.abc import Callable
from pathlib import Path

from censornet import pki as lab_pki
from censornet import topology
from censornet.pki import Pki
from censornet.servers.pages import DEFAULT_SITE, primary_name, site_for_name

CertificateChooser = Callable[[str | None], ssl.SSLContext]
HTTP_ALPN = ("http/1.1",)
_HOSTNAME = re.compile(r"^[a-z0-9*]([a-z0-9-]{0,62}\.?)*[a-z0-9-]*$")


def server_context(cert: Path, key: Path, alpn: tuple[str, ...] = HTTP_ALPN) -> ssl.SSLContext:
    """A TLS server context presenting ``cert`` (a PEM chain) with ``key``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


class SiteCertificates:
    """Picks the lab-CA certificate of the site named by the SNI (no/unknown SNI: the x site)."""

    def __init__(self, pki: Pki) -> None:
        self._contexts = {
            site: server_context(pki.cert(site), pki.key(site)) for site in _sites_with_certs(pki)
        }

    def __call__(self, sni: str | None) -> ssl.SSLContext:
        site = site_for_name(sni) if sni else None
        return self._contexts.get(site or DEFAULT_SITE, self._contexts[DEFAULT_SITE])


class InterceptionCertificates:
    """Mints, per SNI, a certificate signed by the interception CA (cached for the process).

    The minted keys live in ``directory`` (inside the lab's state directory, which the lab's
    teardown removes even when the server process was killed).
    """

    def __init__(self, pki: Pki, directory: Path) -> None:
        self._ca_cert, self._ca_key = lab_pki.load_ca(pki.mitm_ca, pki.mitm_ca_key)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._dir = directory
        self._contexts: dict[str, ssl.SSLContext] = {}

    def __call__(self, sni: str | None) -> ssl.SSLContext:
        name = (sni or "").lower().rstrip(".")
        if not name or len(name) > 253 or not _HOSTNAME.match(name):
            name = primary_name(DEFAULT_SITE)
        context = self._contexts.get(name)
        if context is None:
            context = self._mint(name)
            self._contexts[name] = context
        return context

    def close(self) -> None:
        """Remove the minted keys from disk."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def _mint(self, name: str) -> ssl.SSLContext:
        key = lab_pki.generate_key()
        try:
            ipaddress.ip_address(name)
            dns_names: tuple[str, ...] = ()
            ips: tuple[str, ...] = (name,)
        except ValueError:
            dns_names, ips = (name,), ()
        cert = lab_pki.issue_certificate(key, dns_names, self._ca_cert, self._ca_key, ips=ips)
        base = self._dir / f"{len(self._contexts)}"
        cert_path, key_path = base.with_suffix(".pem"), base.with_suffix(".key")
        cert_path.write_bytes(lab_pki.cert_pem(cert) + lab_pki.cert_pem(self._ca_cert))
        key_path.touch(mode=0o600)
        key_path.write_bytes(lab_pki.key_pem(key))
        return server_context(cert_path, key_path)


def _sites_with_certs(pki: Pki) -> list[str]:
    return [site for site in topology.SITES if pki.cert(site).exists()]
