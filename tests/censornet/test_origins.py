"""The lab's nginx origins: configuration from the topology, and the three unknown-SNI answers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from censornet import topology
from censornet.lab import Lab
from censornet.origins import (
    UNKNOWN_SNI_BEHAVIOURS,
    OriginSettings,
    UnknownSni,
    render,
    site_ips,
)
from censornet.pki import ORIGIN_DEFAULT_NAME
from censornet.policy import Policy, WebRule

X_IP = topology.X_IPS[0]


def test_settings_parse_one_behaviour_or_one_per_site() -> None:
    assert OriginSettings(unknown_sni="alert") == OriginSettings.parse("alert")
    mixed = OriginSettings.parse("own-cert, twimg=alert")
    assert ("own-cert", "alert") == (mixed.for_site("x"), mixed.for_site("twimg"))
    assert mixed == OriginSettings.from_json(json.loads(json.dumps(mixed.to_json())))
    with pytest.raises(ValueError, match="default-cert, own-cert, alert"):
        OriginSettings.parse("valid-cert")
    with pytest.raises(ValueError, match="known: x, twimg"):
        OriginSettings.parse("nosuchsite=alert")


def test_every_site_address_is_served_on_80_and_443(tmp_path: Path) -> None:
    conf = render(tmp_path, "netns", OriginSettings(), Policy(), 7)
    for site in topology.SITES:
        for ip in site_ips(site):
            assert f"listen {ip}:80 default_server;" in conf
            assert f"listen {ip}:443 ssl http2 default_server;" in conf
    assert topology.X_CDN_ALT_IP in site_ips("x")
    assert 'return 200 "7\\n"' in conf  # the generation the control socket reports


def test_each_behaviour_renders_its_default_server(tmp_path: Path) -> None:
    alert = render(tmp_path, "netns", OriginSettings.parse("alert"), Policy(), 1)
    assert alert.count("ssl_reject_handshake on;") == len(topology.SITES)
    default = render(tmp_path, "netns", OriginSettings(), Policy(), 1)
    assert "ssl_reject_handshake" not in default and "origin-default.pem" in default
    own = render(tmp_path, "netns", OriginSettings.parse("own-cert"), Policy(), 1)
    assert "origin-default.pem" not in own


def test_an_upload_is_answered_after_its_whole_body(tmp_path: Path) -> None:
    """As real upload endpoints: the POST's body is read first (a ``return`` would answer at once
    and discard the body while the client still sends it)."""
    conf = render(tmp_path, "netns", OriginSettings(), Policy(), 1)
    post = conf.split("if ($request_method = POST) {", 1)[1].split("}", 1)[0]
    assert post.index("echo_read_request_body;") < post.index("echo '")
    assert "return" not in post


def test_web_rules_split_a_site_by_name(tmp_path: Path) -> None:
    policy = Policy(web=(WebRule(suffix="twitter.com", mode="http503"),))
    conf = render(tmp_path, "netns", OriginSettings(), policy, 1)
    assert "server_name twitter.com www.twitter.com api.twitter.com *.twitter.com;" in conf
    assert "location / { return 503; }" in conf
    slow = Policy(web=(WebRule(suffix="x.com", mode="slow", delay_ms=1500),))
    assert "echo_sleep 1.500;" in render(tmp_path, "netns", OriginSettings(), slow, 1)


# --- against the running origins --------------------------------------------------------------


@pytest.fixture(scope="module", params=UNKNOWN_SNI_BEHAVIOURS)
def behaviour(request: pytest.FixtureRequest, session_lab: Lab) -> Iterator[UnknownSni]:
    chosen: UnknownSni = request.param
    session_lab.set_origins(OriginSettings(unknown_sni=chosen))
    yield chosen
    session_lab.set_origins(OriginSettings())


def handshake(lab: Lab, ip: str, sni: str) -> dict[str, object]:
    argv = [sys.executable, "-m", "censornet.symptoms", "tls", ip, sni, "--ca", str(lab.ca_file)]
    result: dict[str, object] = json.loads(lab.run("v1a", argv, timeout=30).stdout)
    return result


@pytest.mark.lab
def test_an_unknown_name_never_gets_a_valid_certificate(
    session_lab: Lab, behaviour: UnknownSni
) -> None:
    """Asked for a name it does not host, an origin answers as real ones do, never validly."""
    own = handshake(session_lab, X_IP, "x.com")
    assert ("ok", True) == (own["outcome"], own["valid"])
    for sni in ("example.org", "pbs.twimg.com", "unknown.invalid"):
        other = handshake(session_lab, X_IP, sni)
        assert other["valid"] is not True, (sni, other)
        if behaviour == "alert":
            assert "alert" == other["outcome"] and "UNRECOGNIZED_NAME" in str(other["error"])
        elif behaviour == "own-cert":
            assert "ok" == other["outcome"] and "CN=x.com" in str(other["subject"])
        else:
            assert "ok" == other["outcome"] and ORIGIN_DEFAULT_NAME in str(other["subject"])
