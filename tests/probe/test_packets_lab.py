"""Packet evidence at vantage v1a of a real lab: the injected RST, the DNS injection's two answers
and their IP TTLs, the censor's hop, and the unprivileged path (uid 65534 in the namespace)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from censornet import topology
from censornet.lab import Lab
from censornet.policy import InjectRule, Policy, write_policy
from censornet.scenario import apply_scenario
from censornet.servers.rst_injector import FORGED_IP_ID, FORGED_IP_TTL, READY_NAME

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for raw sockets in the lab"),
]

LAB_CONFIG = Path(__file__).resolve().parents[2] / "config" / "lab" / "probe-lab.toml"
X_IP = topology.X_IPS[0]
ISP1_ROUTER = "198.18.11.1"  # hop 1 from v1a
CONTROL_RESOLVER = topology.CONTROL_RESOLVER_IP
FORGED_ANSWER = topology.BLOCKPAGE_IP

# Runs one packet step inside a vantage namespace and prints its result as JSON.
AT_VANTAGE = """
import asyncio, json, sys
from probe.steps import centrace, dnspackets, packets
from probe.net.clock import deadline_in

async def main(kind, target, name):
    if kind == "reset":
        found = await packets.reset_evidence(target, name, deadline=deadline_in(3))
    elif kind == "dns":
        found = await dnspackets.dns_evidence(
            name, target, deadline=deadline_in(3), reference_domain="example.org"
        )
    else:
        found = await centrace.locate_censor(
            target, name, allow=lambda host, ip: ip == target, deadline=deadline_in(10),
            control_host="example.org",
        )
    print(found.model_dump_json())

asyncio.run(main(*sys.argv[1:4]))
"""


def _namespaces(prefix: str) -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listing.splitlines() if line.startswith(prefix + "-")]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    prefix = f"bpk{os.getpid()}"
    built = Lab.up(prefix)
    try:
        yield built
    finally:
        built.down()
        assert [] == _namespaces(prefix)


@pytest.fixture
def injector(lab: Lab) -> Iterator[subprocess.Popen[bytes]]:
    """The RST injector in isp1 for twitter.com, stopped by PID (its drop rule goes with it)."""
    ready = lab.state_dir / "ready" / READY_NAME
    ready.unlink(missing_ok=True)
    log = (lab.state_dir / "logs" / "rst_injector.log").open("ab")
    argv = [sys.executable, "-m", "censornet.servers.rst_injector"]
    argv += ["--state", str(lab.state_dir), "--sni", "twitter.com"]
    proc = subprocess.Popen(lab.command("isp1", argv), stdout=log, stderr=log)
    log.close()
    try:
        deadline = time.monotonic() + 15
        while not ready.exists():
            assert proc.poll() is None, (lab.state_dir / "logs" / "rst_injector.log").read_text()
            assert time.monotonic() < deadline, "the RST injector did not get ready"
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    rules = lab.run("isp1", ["iptables", "-S", "BP_FWD"]).stdout
    assert "bp-rst-injector" not in rules


def _at_v1a(lab: Lab, kind: str, target: str, name: str, *, user: int | None = None) -> Any:
    argv = [sys.executable, "-c", AT_VANTAGE, kind, target, name]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    done = lab.run("v1a", argv, timeout=60)
    return json.loads(done.stdout)


@pytest.mark.usefixtures("injector")
def test_injected_reset_is_detected_by_its_ttl(lab: Lab) -> None:
    """The forged RST arrives at TTL 37, the server's SYN-ACK at 63: injected."""
    found = _at_v1a(lab, "reset", X_IP, "twitter.com")
    assert found["available"]
    assert (FORGED_IP_TTL, FORGED_IP_ID, 63) == (
        found["rst_ttl"],
        found["rst_ip_id"],
        found["synack_ttl"],
    )
    assert found["injected"], found["description"]
    benign = _at_v1a(lab, "reset", X_IP, "example.org")
    assert (None, False) == (benign["rst_ttl"], benign["injected"])
    assert "server answered" in benign["description"]


@pytest.mark.usefixtures("injector")
def test_censor_hop_is_the_isp_router(lab: Lab) -> None:
    """TTL-limited ClientHellos: the RST comes at TTL 1, with 198.18.11.1's time-exceeded."""
    located = _at_v1a(lab, "trace", X_IP, "twitter.com")
    assert ("reset", 1, ISP1_ROUTER) == (located["outcome"], located["hop"], located["router"])
    assert FORGED_IP_TTL == located["hops"][0]["reset_ttl"]
    control = _at_v1a(lab, "trace", X_IP, "example.org")
    assert ("none", None) == (control["outcome"], control["hop"])
    assert [ISP1_ROUTER, None] == [h["router"] for h in control["hops"]]
    assert control["hops"][-1]["server"]  # the platform server answers at hop 2


def test_in_path_reject_shows_one_hop_after_the_router(lab: Lab) -> None:
    """A REJECT in isp1's FORWARD acts after the TTL check: RST at TTL 2, after 198.18.11.1."""
    rule = ["BP_FWD", "-p", "tcp", "--dport", "443", "-m", "string", "--algo", "bm"]
    rule += ["--string", "twitter.com", "-j", "REJECT", "--reject-with", "tcp-reset"]
    lab.run("isp1", ["iptables", "-A", *rule])
    try:
        located = _at_v1a(lab, "trace", X_IP, "twitter.com")
        reset = _at_v1a(lab, "reset", X_IP, "twitter.com")
    finally:
        lab.run("isp1", ["iptables", "-D", *rule])
    assert ("reset", 2, None, ISP1_ROUTER) == (
        located["outcome"],
        located["hop"],
        located["router"],
        located["previous_router"],
    )
    # The router's own RST starts at TTL 64 and arrives untouched (0 hops); the server's SYN-ACK
    # comes at 63 (1 hop): one hop closer on every try, so a device on the path sent it.
    assert (64, 63, True) == (reset["rst_ttl"], reset["synack_ttl"], reset["injected"])
    assert (0, 1, 1, 2) == (
        reset["rst_hops"],
        reset["synack_hops"],
        reset["hops_closer"],
        reset["tries"],
    )
    assert "1 hop closer than the server on 2 of 2 tries" in reset["description"]


def test_probe_names_a_first_hop_censor_in_its_evidence(lab: Lab) -> None:
    """`blockprobe run` with the reset at the ISP router (the sni-reset scenario): tls.reset, and
    the packet evidence says the RST came from 1 hop closer than the server."""
    apply_scenario(lab, "sni-reset", isp="isp1")
    try:
        done = lab.run(
            "v1a",
            [sys.executable, "-m", "blockprobe", "run", "--platform", "x", "--json", "--config",
             str(LAB_CONFIG)],
            env={"BLOCKPROBE_CA_FILE": str(lab.ca_file)},
            timeout=120,
            check=False,
        )  # fmt: skip
    finally:
        apply_scenario(lab, "clean")
    assert 0 == done.returncode, done.stderr[-2000:]
    results = json.loads(done.stdout)["results"]
    twitter = next(r for r in results if r["target"] == "https://twitter.com/")
    assert ("blocked", "tls.reset") == (twitter["verdict"], twitter["method"])
    closer = [e for e in twitter["evidence"] if "1 hop closer than the server" in e]
    assert closer, twitter["evidence"]
    assert "consistent with the server" not in " ".join(twitter["evidence"])


def test_dns_injection_shows_two_answers_and_their_ttls(lab: Lab) -> None:
    """Through a resolver beyond the ISP, the forged answer comes at IP TTL 64, the real at 63."""
    rule = InjectRule(suffix="twitter.com", answer=FORGED_ANSWER)
    write_policy(lab.state_dir, "isp1", Policy(inject=(rule,)))
    try:
        time.sleep(0.8)  # the injector polls its policy every 0.25 s
        found = _at_v1a(lab, "dns", CONTROL_RESOLVER, "twitter.com")
        at_isp = _at_v1a(lab, "dns", topology.isp("isp1").resolver, "twitter.com")
    finally:
        write_policy(lab.state_dir, "isp1", Policy())
    assert found["injected"] and found["conflicting"], found["description"]
    by_answer = {tuple(r["addresses"]): r["ip_ttl"] for r in found["responses"]}
    assert {(FORGED_ANSWER,): 64, tuple(topology.X_IPS): 63} == {
        tuple(sorted(k)): v for k, v in by_answer.items()
    }
    assert 63 == found["reference_ttl"]
    suspects = [found["responses"][i]["addresses"] for i in found["suspect"]]
    assert [[FORGED_ANSWER]] == suspects
    # The ISP's own resolver sits where the injector is: both answers come at TTL 64.
    assert at_isp["injected"]
    assert {64} == {r["ip_ttl"] for r in at_isp["responses"]}
    assert [] == at_isp["suspect"]


def test_unprivileged_probe_gets_not_available(lab: Lab) -> None:
    """As uid 65534 in the vantage namespace: no error, a clear 'not available' result."""
    for kind, target, name in (
        ("reset", X_IP, "twitter.com"),
        ("dns", CONTROL_RESOLVER, "twitter.com"),
        ("trace", X_IP, "twitter.com"),
    ):
        found = _at_v1a(lab, kind, target, name, user=65534)
        assert not found["available"], kind
        assert "needs root or CAP_NET_RAW" in found["description"]
