"""Every measurement of the OONI test set through ``blockprobe ooni analyse``'s analysis.

The expected verdicts are ours; for OONI's QA scenarios (an emulated censor whose name says what
it did) the test also checks that we agree with OONI's own result, except in the cases listed in
``DISAGREEMENTS``, each explained in docs/ooni.md.
"""

from __future__ import annotations

from functools import cache

import pytest

from probe.ooni.analyse import Row, analyse, load
from probe.ooni.reader import read
from tests.ooni.shared_set import DATA, ROOT, name_of, needs_set

QA = "minipipeline/generated/"
EXPECTED: dict[str, tuple[str, str | None]] = {
    # real measurements: OONI's backend fixtures, OONI developers' own, the PK false positive
    "backend-fastpath/20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json": (
        "blocked",
        "http.redirect",
    ),
    "backend-fastpath/bug_351.json": ("inconclusive", None),
    "backend-fastpath/bug_352.json": ("blocked", "dns.bogon"),
    "backend-fastpath/requests_none.json": ("outage", "outage.dns"),
    "backend-fastpath/web_connectivity_b64_hdr.json": ("blocked", "http.redirect"),
    "backend-fastpath/web_connectivity_ir_fp.json": ("blocked", "dns.bogon"),
    "backend-fastpath/web_connectivity_no_body.json": ("outage", "outage.platform"),
    "backend-fastpath/web_connectivity_null.json": ("inconclusive", None),
    "backend-fastpath/web_connectivity_null2.json": ("inconclusive", None),
    "backend-fastpath/web_connectivity_odd_hdr.json": ("blocked", "dns.spoofed"),
    "minipipeline/manual/8844": ("reachable", None),
    "minipipeline/manual/dnsgoogle80": ("outage", "outage.platform"),
    "minipipeline/manual/firefoxcom": ("reachable", None),
    "minipipeline/manual/issue-2456": ("reachable", None),
    "minipipeline/manual/noipv6": ("reachable", None),
    "minipipeline/manual/youtube": ("reachable", None),
    "probe-cli-webconnectivitylte/20230706183840.201925_PK_webconnectivity_19f5e0d803cbaea7"
    ".jsonc": ("outage", "outage.platform"),
    # OONI's QA scenarios
    f"{QA}badSSLWithExpiredCertificate": ("outage", "outage.platform"),
    f"{QA}badSSLWithUnknownAuthorityWithConsistentDNS": ("outage", "outage.platform"),
    f"{QA}badSSLWithUnknownAuthorityWithInconsistentDNS": ("blocked", "dns.spoofed"),
    f"{QA}badSSLWithWrongServerName": ("outage", "outage.platform"),
    f"{QA}cloudflareCAPTCHAWithHTTP": ("inconclusive", None),
    f"{QA}cloudflareCAPTCHAWithHTTPS": ("inconclusive", None),
    f"{QA}controlFailureWithSuccessfulHTTPSWebsite": ("reachable", None),
    f"{QA}controlFailureWithSuccessfulHTTPWebsite": ("reachable", None),
    f"{QA}dnsBlockingAndroidDNSCacheNoData": ("inconclusive", None),
    f"{QA}dnsBlockingBOGON": ("blocked", "dns.bogon"),
    f"{QA}dnsBlockingNXDOMAIN": ("blocked", "dns.nxdomain"),
    f"{QA}dnsHijackingToLocalhostWithHTTP": ("blocked", "dns.bogon"),
    f"{QA}dnsHijackingToLocalhostWithHTTPS": ("blocked", "dns.bogon"),
    f"{QA}dnsHijackingToProxyWithHTTPSURL": ("reachable", None),
    f"{QA}dnsHijackingToProxyWithHTTPURL": ("reachable", None),
    f"{QA}ghostDNSBlockingWithHTTP": ("blocked", "dns.spoofed"),
    f"{QA}ghostDNSBlockingWithHTTPS": ("blocked", "dns.spoofed"),
    f"{QA}httpBlockingConnectionReset": ("blocked", "http.reset"),
    f"{QA}httpDiffWithConsistentDNS": ("blocked", "http.blockpage"),
    f"{QA}httpDiffWithInconsistentDNS": ("blocked", "http.blockpage"),
    f"{QA}idnaWithoutCensorshipLowercase": ("reachable", None),
    f"{QA}idnaWithoutCensorshipWithFirstLetterUppercase": ("reachable", None),
    f"{QA}largeFileWithHTTP": ("reachable", None),
    f"{QA}largeFileWithHTTPS": ("reachable", None),
    f"{QA}localhostWithHTTP": ("inconclusive", None),
    f"{QA}localhostWithHTTPS": ("inconclusive", None),
    f"{QA}redirectWithBrokenLocationForHTTP": ("blocked", "http.blockpage"),
    f"{QA}redirectWithBrokenLocationForHTTPS": ("blocked", "http.blockpage"),
    f"{QA}redirectWithConsistentDNSAndThenConnectionRefusedForHTTP": ("blocked", "http.reset"),
    f"{QA}redirectWithConsistentDNSAndThenConnectionRefusedForHTTPS": ("blocked", "http.reset"),
    f"{QA}redirectWithConsistentDNSAndThenConnectionResetForHTTP": ("blocked", "http.reset"),
    f"{QA}redirectWithConsistentDNSAndThenConnectionResetForHTTPS": ("blocked", "http.reset"),
    f"{QA}redirectWithConsistentDNSAndThenEOFForHTTP": ("blocked", "http.eof"),
    f"{QA}redirectWithConsistentDNSAndThenEOFForHTTPS": ("blocked", "http.eof"),
    f"{QA}redirectWithConsistentDNSAndThenNXDOMAIN": ("inconclusive", None),
    f"{QA}redirectWithConsistentDNSAndThenTimeoutForHTTP": ("inconclusive", None),
    f"{QA}redirectWithConsistentDNSAndThenTimeoutForHTTPS": ("inconclusive", None),
    f"{QA}redirectWithMoreThanTenRedirectsAndHTTP": ("outage", "outage.platform"),
    f"{QA}redirectWithMoreThanTenRedirectsAndHTTPS": ("outage", "outage.platform"),
    f"{QA}successWithHTTP": ("reachable", None),
    f"{QA}successWithHTTPS": ("reachable", None),
    f"{QA}tcpBlockingConnectTimeout": ("inconclusive", None),
    f"{QA}tcpBlockingConnectionRefusedWithInconsistentDNS": ("blocked", "dns.spoofed"),
    f"{QA}throttlingWithHTTP": ("inconclusive", None),
    f"{QA}throttlingWithHTTPS": ("inconclusive", None),
    f"{QA}tlsBlockingConnectionResetWithConsistentDNS": ("blocked", "tls.reset"),
    f"{QA}tlsBlockingConnectionResetWithInconsistentDNS": ("blocked", "tls.reset"),
    f"{QA}websiteDownNXDOMAIN": ("outage", "outage.dns"),
    f"{QA}websiteDownNoAddrs": ("outage", "outage.dns"),
    f"{QA}websiteDownTCPConnect": ("outage", "outage.platform"),
}
# QA scenarios where our verdict deliberately differs from OONI's (docs/ooni.md says why).
DISAGREEMENTS = frozenset(
    {
        "cloudflareCAPTCHAWithHTTP",
        "cloudflareCAPTCHAWithHTTPS",
        "controlFailureWithSuccessfulHTTPWebsite",
        "dnsBlockingAndroidDNSCacheNoData",
        "localhostWithHTTP",
        "localhostWithHTTPS",
        "redirectWithConsistentDNSAndThenNXDOMAIN",
        "redirectWithConsistentDNSAndThenTimeoutForHTTP",
        "redirectWithConsistentDNSAndThenTimeoutForHTTPS",
        "tcpBlockingConnectTimeout",
        "throttlingWithHTTP",
        "throttlingWithHTTPS",
    }
)


@cache
def _rows() -> dict[str, Row]:
    items, errors = load(read(DATA, []))
    assert not errors
    return {name_of(row.item.source): row for row in analyse(items)}


@needs_set
def test_the_set_is_whole() -> None:
    """Every measurement of the set is read and has an expected verdict (and no other)."""
    assert set(EXPECTED) == set(_rows())
    assert 67 == len(_rows())


@needs_set
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_measurement(name: str) -> None:
    """Our verdict on each measurement; for QA scenarios, agreement with OONI's unless listed."""
    row = _rows()[name]
    assert EXPECTED[name] == (row.verdict.kind, row.verdict.method), row.verdict.evidence
    assert row.verdict.evidence
    if name.startswith(QA):
        scenario = name.removeprefix(QA)
        expected = "disagree" if scenario in DISAGREEMENTS else ("agree", "other layer")
        assert row.agreement in expected, row.verdict.evidence


@needs_set
def test_one_try_conclusions_say_so() -> None:
    """A block concluded from one try of OONI's carries the one-try confidence and note."""
    row = _rows()[f"{QA}tlsBlockingConnectionResetWithConsistentDNS"]
    assert 0.7 == row.verdict.confidence
    assert any("one try" in line for line in row.verdict.evidence)


def test_docs_explain_each_disagreement() -> None:
    """docs/ooni.md names every QA scenario where we deliberately disagree with OONI."""
    text = (ROOT / "docs" / "ooni.md").read_text(encoding="utf-8")
    assert [s for s in sorted(DISAGREEMENTS) if f"`{s}`" not in text] == []
