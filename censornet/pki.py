"""The lab's certificates: a trusted lab CA, per-site leaves, and an untrusted interception CA.

``ensure_pki(state_dir)`` creates everything once under ``state_dir/pki/`` and is idempotent: files
that exist and chain to the current CA are kept. The probe trusts ``lab-ca.pem`` only; the
interception CA (``mitm-ca.pem``) signs certificates minted on the fly by the MITM server, and the
blockpage server's HTTPS certificate is self-signed, so both fail validation. Keys are ECDSA P-256
(fast to generate) and written with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from censornet import topology

LAB_CA_NAME = "blockprobe lab CA"
MITM_CA_NAME = "blockprobe interception CA"
CONTROL_LABEL = "control"
BLOCKPAGE_LABEL = "blockpage"
SELF_SIGNED_LABEL = "blockpage-selfsigned"
# The certificate of the origins' default server: valid (lab CA) but for a name no site hosts.
ORIGIN_DEFAULT_LABEL = "origin-default"
ORIGIN_DEFAULT_NAME = "origin-default.hosting.lab"
_VALIDITY = datetime.timedelta(days=3650)
_BACKDATE = datetime.timedelta(days=1)

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Pki:
    """Where the lab's certificates and keys live (all PEM)."""

    directory: Path
    lab_ca: Path
    lab_ca_key: Path
    mitm_ca: Path
    mitm_ca_key: Path

    def cert(self, label: str) -> Path:
        """The PEM chain (leaf, then issuer) of leaf ``label`` (a site name, "control", ...)."""
        return self.directory / f"{label}.pem"

    def key(self, label: str) -> Path:
        """The private key of leaf ``label``."""
        return self.directory / f"{label}.key"

    @property
    def control_cert(self) -> Path:
        """Certificate of the control resolver (DoH/DoT), DNS and IP SANs."""
        return self.cert(CONTROL_LABEL)

    @property
    def self_signed_cert(self) -> Path:
        """The blockpage server's self-signed certificate (issued by no CA)."""
        return self.cert(SELF_SIGNED_LABEL)


def pki_paths(state_dir: Path) -> Pki:
    """The paths of the PKI of the lab whose state lives in ``state_dir`` (nothing is created)."""
    directory = state_dir / "pki"
    return Pki(
        directory=directory,
        lab_ca=directory / "lab-ca.pem",
        lab_ca_key=directory / "lab-ca.key",
        mitm_ca=directory / "mitm-ca.pem",
        mitm_ca_key=directory / "mitm-ca.key",
    )


def leaf_names() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every leaf the lab CA issues: label -> (DNS SANs, IP SANs)."""
    leaves: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
        site: (site_san_names(names), ()) for site, names in topology.SITES.items()
    }
    leaves[CONTROL_LABEL] = ((topology.CONTROL_RESOLVER_NAME,), (topology.CONTROL_RESOLVER_IP,))
    leaves[BLOCKPAGE_LABEL] = ((topology.BLOCKPAGE_NAME,), (topology.BLOCKPAGE_IP,))
    leaves[ORIGIN_DEFAULT_LABEL] = ((ORIGIN_DEFAULT_NAME,), ())
    return leaves


def site_san_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names of a site plus a ``*.`` wildcard per parent domain (``*.x.com``, ``*.t.co``)."""
    wildcards: list[str] = []
    for name in names:
        labels = name.split(".")
        parent = name if len(labels) == 2 else ".".join(labels[1:])
        wildcard = f"*.{parent}"
        if wildcard not in wildcards:
            wildcards.append(wildcard)
    return (*names, *wildcards)


def ensure_pki(state_dir: Path) -> Pki:
    """Create the lab's CAs and certificates under ``state_dir/pki`` unless already there."""
    pki = pki_paths(state_dir)
    pki.directory.mkdir(parents=True, exist_ok=True)
    lab_cert, lab_key = _ensure_ca(pki.lab_ca, pki.lab_ca_key, LAB_CA_NAME)
    _ensure_ca(pki.mitm_ca, pki.mitm_ca_key, MITM_CA_NAME)
    for label, (dns_names, ips) in leaf_names().items():
        if not _leaf_is_current(pki.cert(label), pki.key(label), lab_cert):
            key = generate_key()
            cert = issue_certificate(key, dns_names, lab_cert, lab_key, ips=ips)
            _write_key(pki.key(label), key)
            _write_chain(pki.cert(label), (cert, lab_cert))
    if not (pki.self_signed_cert.exists() and pki.key(SELF_SIGNED_LABEL).exists()):
        key = generate_key()
        name = _name(topology.BLOCKPAGE_NAME)
        cert = _builder(name, name, key, (topology.BLOCKPAGE_NAME,), ()).sign(key, hashes.SHA256())
        _write_key(pki.key(SELF_SIGNED_LABEL), key)
        _write_chain(pki.self_signed_cert, (cert,))
    return pki


def generate_key() -> PrivateKey:
    """A fresh ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def issue_certificate(
    key: PrivateKey,
    dns_names: tuple[str, ...],
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    ips: tuple[str, ...] = (),
) -> x509.Certificate:
    """A TLS server certificate for ``dns_names``/``ips``, signed by ``ca_cert``."""
    subject = _name(dns_names[0] if dns_names else ips[0])
    builder = _builder(subject, ca_cert.subject, key, dns_names, ips)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
    )
    return builder.sign(ca_key, hashes.SHA256())


def load_ca(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, PrivateKey]:
    """Read a CA certificate and its private key."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: expected an EC private key")
    return cert, key


def key_pem(key: PrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """``cert`` as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def _ensure_ca(
    cert_path: Path, key_path: Path, common_name: str
) -> tuple[x509.Certificate, PrivateKey]:
    if cert_path.exists() and key_path.exists():
        return load_ca(cert_path, key_path)
    key = generate_key()
    name = _name(common_name)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_chain(cert_path, (cert,))
    return cert, key


def _leaf_is_current(cert_path: Path, key_path: Path, ca_cert: x509.Certificate) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        leaf = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
        leaf.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: PrivateKey,
    dns_names: tuple[str, ...],
    ips: tuple[str, ...],
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "blockprobe lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: PrivateKey) -> None:
    _write_atomically(path, key_pem(key), mode=0o600)


def _write_chain(path: Path, certs: tuple[x509.Certificate, ...]) -> None:
    _write_atomically(path, b"".join(cert_pem(c) for c in certs), mode=0o644)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
