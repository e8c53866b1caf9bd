"""Blockpage and DNS fingerprints: built from OONI's lists, matched on bodies, headers, answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probe.classify import classify
from probe.fingerprints import blockpages
from probe.fingerprints.blockpages import body_fingerprint, dns_fingerprint, fingerprint
from probe.fingerprints.make import build, main
from probe.model.observations import HTTPObservation
from tests.ooni.shared_set import FINGERPRINTS, needs_fingerprints
from tests.probe.observation_builders import X_HTTP, X_IP, canaries_ok, obs, resolved, tcp


@needs_fingerprints
def test_data_file_is_built_from_the_csv_files() -> None:
    """The committed data file is exactly what the generator makes from OONI's CSV files."""
    commit = json.loads(blockpages.DATA.read_text())["source"]["commit"]
    assert json.loads(blockpages.DATA.read_text()) == build(FINGERPRINTS, commit)


def test_generator_refuses_a_folder_without_the_lists(tmp_path: Path) -> None:
    """A wrong folder: a message and exit status 2, and the data file untouched."""
    before = blockpages.DATA.read_bytes()
    assert 2 == main([str(tmp_path)])
    assert before == blockpages.DATA.read_bytes()


def test_source_is_recorded() -> None:
    """The data says where it came from: repository, commit and the CSV files' digests."""
    source = blockpages.source()
    assert "ooni/blocking-fingerprints" in str(source["repository"])
    assert isinstance(source["commit"], str) and 40 == len(source["commit"])
    assert {"fingerprints_http.csv", "fingerprints_dns.csv"} == set(source["files"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (b"This page is blocked by <a href=http://trustpositif.kominfo.go.id>", "ooni.id_6"),
        (b'<iframe src="http://10.10.34.34/?u=x"', "ooni.ir_0"),
        (b"<a href=peyvandha.ir/1-2>", "ooni.ir_3"),
        (
            b"As per your subscription of Nayatel Safeweb service, the website you are trying "
            b"to access is blocked for your viewing",
            "ooni.pk_2",
        ),
    ],
)
def test_regulators_pages_are_known(body: bytes, name: str) -> None:
    """Current regulators' and ISPs' blockpages (Indonesia, Iran, Pakistan) match by body."""
    assert name == body_fingerprint(body, {})


def test_known_false_positive_never_matches() -> None:
    """A pattern of scope ``fp`` (nginx's default page) matches nothing: it never blocks."""
    body = b"<html><p><em>Thank you for using nginx.</em></p></html>"
    assert None is body_fingerprint(body, {})
    assert all(fp.scope != "fp" for fp in blockpages.fingerprints())


def test_location_header_fingerprint() -> None:
    """A redirect to Indonesia's Internet Positif portal matches by its Location."""
    response = HTTPObservation(
        url="http://x.com/",
        status=302,
        headers={"location": "http://internet-positif.org/?u=x"},
        t0=0.0,
        t=0.1,
    )
    found = fingerprint(response)
    assert found is not None and found.name == "ooni.id_0"


def test_dns_fingerprint() -> None:
    """Addresses censors answer with are known; an ordinary address is not."""
    found = dns_fingerprint("203.82.48.83")
    assert found is not None and "PK" in found.countries
    assert None is dns_fingerprint(X_IP)


def test_a_body_fingerprint_makes_a_blockpage_verdict() -> None:
    """The HTTP step's fingerprint name is enough for the classifier (no control page)."""
    page = HTTPObservation(
        url="http://x.com/", ip=X_IP, status=200, blockpage="ooni.pk_2", t0=0.0, t=0.1
    )
    verdict = classify(X_HTTP, obs(resolved("x.com"), tcp(X_IP, 80), page), None, canaries_ok())
    assert ("blocked", "http.blockpage") == (verdict.kind, verdict.method)


def test_a_page_s_own_url_is_no_location() -> None:
    """Location patterns match where a response pointed, not the URL fetched (127.0.0.1 here)."""
    own = "http://127.0.0.1:8080/"
    page = HTTPObservation(url=own, final_url=own, status=200, t0=0.0, t=0.1)
    assert None is fingerprint(page)
    moved = page.model_copy(update={"status": 302, "redirects": ("http://127.0.0.1/blocked",)})
    found = fingerprint(moved)
    assert found is not None and found.where == "header"
