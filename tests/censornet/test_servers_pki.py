"""The lab PKI: CAs, site leaves with the right SANs, idempotence, key modes."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from censornet import topology
from censornet.pki import Pki, ensure_pki, site_san_names


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("state"))


def _leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_every_site_has_a_leaf_with_all_its_names(pki: Pki) -> None:
    """Each site's certificate names every domain of the site, plus wildcards."""
    for site, names in topology.SITES.items():
        dns_names = set(_sans(_leaf(pki.cert(site))).get_values_for_type(x509.DNSName))
        assert set(names) <= dns_names
    x_names = _sans(_leaf(pki.cert("x"))).get_values_for_type(x509.DNSName)
    assert "*.x.com" in x_names and "*.twitter.com" in x_names


def test_wildcards_cover_parent_domains() -> None:
    """Wildcards are one per parent domain, never a bare TLD."""
    sans = site_san_names(("abs.twimg.com", "pbs.twimg.com", "t.co"))
    assert ("abs.twimg.com", "pbs.twimg.com", "t.co", "*.twimg.com", "*.t.co") == sans


def test_control_certificate_has_dns_and_ip_sans(pki: Pki) -> None:
    """DoH/DoT clients may address the control resolver by name or by IP."""
    sans = _sans(_leaf(pki.control_cert))
    assert [topology.CONTROL_RESOLVER_NAME] == sans.get_values_for_type(x509.DNSName)
    expected_ip = ipaddress.ip_address(topology.CONTROL_RESOLVER_IP)
    assert [expected_ip] == sans.get_values_for_type(x509.IPAddress)


def test_leaves_chain_to_the_lab_ca_and_not_to_the_mitm_ca(pki: Pki) -> None:
    """The lab CA issued every leaf; the interception CA is a different key."""
    lab_ca = x509.load_pem_x509_certificate(pki.lab_ca.read_bytes())
    mitm_ca = x509.load_pem_x509_certificate(pki.mitm_ca.read_bytes())
    leaf = _leaf(pki.cert("youtube"))
    leaf.verify_directly_issued_by(lab_ca)
    with pytest.raises(ValueError):
        leaf.verify_directly_issued_by(mitm_ca)
    assert "blockprobe lab CA" in lab_ca.subject.rfc4514_string()


def test_blockpage_self_signed_certificate_is_issued_by_no_lab_ca(pki: Pki) -> None:
    """The blockpage's HTTPS certificate signs itself; neither lab CA issued it."""
    cert = _leaf(pki.self_signed_cert)
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    for ca_path in (pki.lab_ca, pki.mitm_ca):
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        with pytest.raises(ValueError):
            cert.verify_directly_issued_by(ca)


def test_key_files_are_private(pki: Pki) -> None:
    """Every private key is mode 0600."""
    keys = sorted(pki.directory.glob("*.key"))
    # sites, control, blockpage x2, the origins' default certificate, two CAs
    assert len(keys) == len(topology.SITES) + 6
    for key in keys:
        assert 0o600 == stat.S_IMODE(key.stat().st_mode), key


def test_ensure_pki_is_idempotent(tmp_path: Path) -> None:
    """A second call keeps every file; a deleted leaf is recreated under the same CA."""
    first = ensure_pki(tmp_path)
    before = {p.name: p.read_bytes() for p in first.directory.iterdir()}
    second = ensure_pki(tmp_path)
    assert first == second
    assert before == {p.name: p.read_bytes() for p in second.directory.iterdir()}
    second.cert("x").unlink()
    ensure_pki(tmp_path)
    assert before["lab-ca.pem"] == second.lab_ca.read_bytes()
    lab_ca = x509.load_pem_x509_certificate(second.lab_ca.read_bytes())
    _leaf(second.cert("x")).verify_directly_issued_by(lab_ca)
