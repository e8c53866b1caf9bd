"""The scenario catalogue: it loads, covers the required techniques, speaks the verdict contract."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

import censornet
from censornet import topology
from censornet.catalogue import (
    CHAINS,
    CatalogueError,
    get_scenario,
    load_catalogue,
    parse_catalogue,
    scenario_ids,
)
from probe.model.verdict import METHODS

CATALOGUE = Path(censornet.__path__[0]) / "scenarios" / "catalogue.toml"
X_ENDPOINTS = (
    "https://x.com/",
    "http://x.com/",
    "https://twitter.com/",
    "http://twitter.com/",
    "https://t.co/",
    "https://api.x.com/",
    "https://abs.twimg.com/responsive-web/client-web/main.js",
    "https://pbs.twimg.com/media/lab.jpg",
    "https://video.twimg.com/ext_tw_video/lab.mp4",
)
# mockcensor.md 7.1 rows 1-24 (without QUIC and ECH), throttle variants, noise, partial.
REQUIRED = {
    "clean": ("clean", None),
    "dns-nxdomain": ("block", "dns.nxdomain"),
    "dns-bogon": ("block", "dns.bogon"),
    "dns-blockpage-ip": ("block", "dns.spoofed"),
    "dns-injection": ("block", "dns.injected"),
    "dns-qname-drop": ("block", "dns.timeout"),
    "dns-servfail": ("block", "dns.servfail"),
    "ip-blackhole": ("block", "tcp.timeout"),
    "ip-reset": ("block", "tcp.reset"),
    "sni-reset": ("block", "tls.reset"),
    "sni-drop": ("block", "tls.timeout"),
    "sni-fin": ("block", "tls.eof"),
    "sni-alert": ("block", "tls.alert"),
    "sni-residual": ("block", "tls.reset"),
    "http-host-reset": ("block", None),
    "http-blockpage": ("block", None),
    "http-redirect": ("block", None),
    "sni-throttle-police": ("throttle", "throttle.rate"),
    "sni-throttle-upload": ("throttle", "throttle.rate"),
    "tls-mitm": ("block", "tls.mitm"),
    "network-shutdown": ("outage", "outage.local"),
    "platform-down": ("outage", "outage.platform"),
    "dns-outage": ("outage", "outage.dns"),
    "sni-throttle-stall": ("throttle", "throttle.stall"),
    "sni-throttle-shape": ("throttle", "throttle.rate"),
    "noise-loss": ("noise", None),
    "noise-slow-network": ("noise", None),
    "noise-dns-flap": ("noise", None),
    "noise-slow-platform": ("noise", None),
    "noise-control-resolver-blocked": ("noise", None),
    "noise-cdn-answer": ("noise", None),
    "noise-pmtu-blackhole": ("noise", None),
    "partial-twimg": ("partial", None),
}


def test_packaged_catalogue_loads_through_importlib_resources() -> None:
    text = resources.files("censornet.scenarios").joinpath("catalogue.toml").read_text()
    assert [s.id for s in parse_catalogue(text)] == scenario_ids()
    assert len(load_catalogue()) >= len(REQUIRED)


def test_ids_are_unique_in_the_file() -> None:
    raw = tomllib.loads(CATALOGUE.read_text())["scenario"]
    ids = [entry["id"] for entry in raw]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("scenario_id", "required"), sorted(REQUIRED.items()))
def test_required_scenario_present(scenario_id: str, required: tuple[str, str | None]) -> None:
    category, https_method = required
    scenario = get_scenario(scenario_id)
    assert scenario.category == category
    assert scenario.description.strip() and scenario.title.strip()
    if https_method is not None:
        assert https_method in scenario.expected_for("https://x.com/").method


@pytest.mark.parametrize("scenario", load_catalogue(), ids=lambda s: s.id)
def test_expectations_speak_the_verdict_contract(scenario: censornet.catalogue.Scenario) -> None:
    assert scenario.expect[-1].target == "*"
    for expectation in scenario.expect:
        for method in expectation.method:
            assert method in METHODS
            assert METHODS[method] in expectation.verdict
    for endpoint in X_ENDPOINTS:
        expectation = scenario.expected_for(endpoint)
        assert expectation.verdict
    if scenario.category == "noise":
        assert scenario.expect_not_blocked
    if scenario.expect_not_blocked:
        for endpoint in X_ENDPOINTS:
            assert not scenario.expected_for(endpoint).accepts("blocked", "tls.reset")


@pytest.mark.parametrize("scenario", load_catalogue(), ids=lambda s: s.id)
def test_rules_only_touch_the_censor_chains(scenario: censornet.catalogue.Scenario) -> None:
    for table, chains in CHAINS.items():
        for rule in scenario.iptables.rules(table):
            assert rule.split()[1] in chains
            assert "{" not in rule  # every placeholder expanded
            for word in rule.split():
                if word.count(".") == 3 and word[0].isdigit():
                    addresses = word.split("/")[0].split(":")[0].split(",")
                    assert all(a.startswith("198.18.") for a in addresses), rule


def test_expected_for_picks_the_first_matching_glob() -> None:
    sni = get_scenario("sni-reset")
    assert sni.expected_for("http://x.com/").accepts("reachable", None)
    assert sni.expected_for("https://x.com/").accepts("blocked", "tls.reset")
    assert not sni.expected_for("https://x.com/").accepts("blocked", "tls.timeout")
    partial = get_scenario("partial-twimg")
    assert partial.expected_for("https://pbs.twimg.com/media/a.jpg").accepts("blocked", "tls.reset")
    assert partial.expected_for("https://x.com/").accepts("reachable", None)
    residual = get_scenario("sni-residual").expected_for("https://t.co/")
    assert residual.accepts("blocked", "tls.reset") and residual.accepts("blocked", "tls.timeout")
    noise = get_scenario("noise-loss").expected_for("https://x.com/")
    assert noise.accepts("inconclusive", None) and not noise.accepts("reachable", "tls.reset")


def test_policy_is_split_between_isp_and_inet_roles() -> None:
    injection = get_scenario("dns-injection")
    assert injection.policy_for("isp1").inject and injection.policy_for("isp1").resolver
    assert injection.policy_for(topology.INET) == censornet.policy.Policy()
    down = get_scenario("platform-down")
    assert down.scope == "global" and down.policy_for(topology.INET).web


def test_unknown_id_names_the_known_ones() -> None:
    with pytest.raises(KeyError) as caught:
        get_scenario("no-such-scenario")
    assert "sni-reset" in str(caught.value) and "clean" in str(caught.value)


_GOOD = """
[[scenario]]
id = "demo"
title = "t"
description = "d"
category = "block"
scope = "isp"
[scenario.iptables]
filter = "-A BP_FWD -d {X_IPS} -j DROP"
[[scenario.expect]]
target = "*"
verdict = "blocked"
method = "tcp.timeout"
"""


def test_a_good_entry_parses_and_expands_placeholders() -> None:
    (scenario,) = parse_catalogue(_GOOD)
    assert scenario.iptables.rules("filter") == [f"-A BP_FWD -d {','.join(topology.X_IPS)} -j DROP"]


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("-A BP_FWD -d", "-A FORWARD -d", ("'demo'", "iptables", "BP_FWD")),
        ("{X_IPS}", "{NOWHERE}", ("'demo'", "iptables", "NOWHERE")),
        ('method = "tcp.timeout"', 'method = "tcp.slow"', ("'demo'", "expect.0", "tcp.slow")),
        ('verdict = "blocked"', 'verdict = "throttled"', ("'demo'", "expect.0", "tcp.timeout")),
        ('target = "*"', 'target = "https://*"', ("'demo'", '"*"')),
        ('category = "block"', 'category = "blocked"', ("'demo'", "category")),
        ('id = "demo"', 'id = "Demo_1"', ("'Demo_1'", "kebab")),
        ('scope = "isp"', 'scope = "isp"\ncolour = "red"', ("'demo'", "colour")),
        ('scope = "isp"', 'scope = "global"\ntc = ["qdisc add dev {dev} root"]', ("tc",)),
    ],
)
def test_validation_errors_name_the_scenario_and_key(
    old: str, new: str, words: tuple[str, ...]
) -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(_GOOD.replace(old, new, 1))
    for word in words:
        assert word in str(caught.value)


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(CatalogueError, match="duplicate"):
        parse_catalogue(_GOOD + _GOOD)


def test_isp_scenarios_cannot_switch_platform_servers() -> None:
    bad = _GOOD.replace(
        "[[scenario.expect]]",
        '[scenario.policy]\nweb = [{suffix = "x.com", mode = "http503"}]\n[[scenario.expect]]',
        1,
    )
    with pytest.raises(CatalogueError, match="web"):
        parse_catalogue(bad)


def test_http3_expectations_are_checked_and_matched() -> None:
    """http3_verdict/http3_method follow the verdict vocabulary; a result's http3 object must be
    present and accepted when the scenario names one."""
    from censornet.catalogue import Expectation

    expect = Expectation(
        target="https://www.youtube.com/",
        verdict="reachable",
        http3_verdict="blocked",
        http3_method="quic.timeout",
    )
    assert expect.accepts_http3({"verdict": "blocked", "method": "quic.timeout"})
    assert not expect.accepts_http3({"verdict": "blocked", "method": "quic.closed"})
    assert not expect.accepts_http3(None)
    assert Expectation(target="*", verdict="reachable").accepts_http3(None)
    with pytest.raises(ValueError, match="goes with verdict"):
        Expectation(
            target="*", verdict="reachable", http3_verdict="reachable", http3_method="quic.timeout"
        )
    with pytest.raises(ValueError, match="needs http3_verdict"):
        Expectation(target="*", verdict="reachable", http3_method="quic.timeout")


def test_quic_scenarios_measure_youtube_and_keep_x_reachable() -> None:
    """The QUIC scenarios name YouTube's HTTP/3 endpoints and leave every other endpoint (X's,
    which `lab check` measures) reachable."""
    quic = [s for s in load_catalogue() if s.id.startswith("quic-")]
    assert {s.id for s in quic} == {
        "quic-udp-drop",
        "quic-sni-drop",
        "quic-sni-close",
        "quic-police",
    }
    for scenario in quic:
        assert "youtube" in scenario.platforms
        assert scenario.expected_for("https://x.com/").accepts("reachable", None)
        assert scenario.expected_for("https://www.youtube.com/").http3_verdict


def test_rules_get_their_ipv6_form() -> None:
    """Lab addresses become their IPv6 twins and ICMP rejects ICMPv6 ones; IPv4-only mechanisms
    have no IPv6 form."""
    from censornet.ip6tables import NoIpv6Form, ipv6_rule

    rule = (
        "-A BP_FWD -p tcp -d 198.18.100.10,198.18.100.11 "
        "-j REJECT --reject-with icmp-host-unreachable"
    )
    assert ipv6_rule(rule) == (
        "-A BP_FWD -p tcp -d fd00:198:18:100::10,fd00:198:18:100::11 "
        "-j REJECT --reject-with icmp6-addr-unreachable"
    )
    assert (
        ipv6_rule("-A BP_IN -s 198.18.11.0/24 -j DROP") == "-A BP_IN -s fd00:198:18:11::/64 -j DROP"
    )
    for ipv4_only in (
        "-A BP_MANGLE_POST -m u32 --u32 0>>22&0x3C@0&0x7=7 -j CLASSIFY --set-class 1",
        "-A BP_NAT_PRE -p tcp --dport 80 -j REDIRECT --to-ports 8080",
    ):
        with pytest.raises(NoIpv6Form):
            ipv6_rule(ipv4_only)


def test_which_scenarios_censor_which_family() -> None:
    """A scenario censors both families unless its rules have no IPv6 form in the lab (listed in
    docs/scenarios.md) or it names one family."""
    scenarios = {s.id: s for s in load_catalogue()}
    ipv4_only = {i for i, s in scenarios.items() if not s.ipv6_applied}
    assert ipv4_only == {
        "ipv4-only-sni-reset",
        "sni-fin",
        "sni-alert",
        "tls-mitm",
        "http-blockpage",
        "http-redirect",
        "sni-throttle-shape",
        "quic-sni-close",
        "quic-sni-drop",
    }
    assert scenarios["ipv6-only-blackhole"].rules_for("filter", "ipv4") == []
    assert scenarios["sni-reset"].rules_for("filter", "ipv6")


def test_family_expectations_are_checked() -> None:
    """An expectation with families accepts a result only with exactly those family verdicts."""
    expectation = get_scenario("ipv4-only-sni-reset").expected_for("https://x.com/")
    both = {"ipv4": "blocked", "ipv6": "reachable"}
    assert expectation.accepts("blocked", "tls.reset", both)
    assert not expectation.accepts("blocked", "tls.reset", {"ipv4": "blocked", "ipv6": "blocked"})
    assert not expectation.accepts("blocked", "tls.reset", None)
