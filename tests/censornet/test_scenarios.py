"""Every scenario produces its network symptom in a real lab, seen by censornet.symptoms.

One lab for the module (prefix ``bpt<pid>``), always torn down. Each check applies its scenario
and compares what a vantage point behind the censor sees with a control: a benign SNI to the same
address, a canary site, the control resolver or the control vantage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from censornet import topology
from censornet.catalogue import scenario_ids
from censornet.lab import Lab, state_root
from censornet.origins import UNKNOWN_SNI_BEHAVIOURS, OriginSettings, UnknownSni
from censornet.scenario import apply_scenario, restore_input, target_roles
from censornet.servers.pages import BLOCKPAGE_TITLE, TITLES

X_IP, X_IP2 = topology.X_IPS
MEDIA_IP = topology.X_MEDIA_IPS[0]
CANARY_IP = topology.CANARY_IPS[0]
RESOLVER1 = topology.isp("isp1").resolver
CONTROL_RESOLVER = topology.CONTROL_RESOLVER_IP
FORGED = "198.18.104.66"
# The lab is dual-stack: every address has its IPv6 twin.
X_IP6, X_IP26 = (topology.ipv6_of(ip) for ip in topology.X_IPS)
MEDIA_IP6 = topology.ipv6_of(MEDIA_IP)
CANARY_IP6 = topology.ipv6_of(CANARY_IP)
AVATAR = "https://pbs.twimg.com/profile_images/1683325380441128960/yRsRRjGO_normal.jpg"
SHORT = "1.5"  # seconds: the timeout of probes expected to time out
YT_IP = topology.ZONE["www.youtube.com"][0]
THUMB_IP = topology.ZONE["i.ytimg.com"][0]
FB_IP = topology.ZONE["www.facebook.com"][0]
Result = dict[str, Any]
# A policer of 16 kB/s (128 kbit/s) with a 32 kB burst: over 4 s at most (32 + 64) kB + one
# 16 kB TLS record in flight, i.e. 224 kbit/s; the checks allow twice the rate (256 kbit/s).
POLICED = ("--max-seconds", "4")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    started = Lab.up(f"bpt{os.getpid()}")
    try:
        yield started
    finally:
        started.down()


def symptom(lab: Lab, vantage: str, *args: str) -> Result:
    """Run ``python -m censornet.symptoms ARGS`` at ``vantage`` and parse its JSON line."""
    done = lab.run(vantage, [sys.executable, "-m", "censornet.symptoms", *args], timeout=30)
    result: Result = json.loads(done.stdout)
    return result


def tls(lab: Lab, ip: str, sni: str, *, at: str = "v1a", timeout: str = SHORT) -> Result:
    return symptom(lab, at, "tls", ip, sni, "--timeout", timeout, "--ca", str(lab.ca_file))


def dns(
    lab: Lab, name: str, *, server: str = RESOLVER1, at: str = "v1a", window: str = "0"
) -> Result:
    return symptom(lab, at, "dns", server, name, "--timeout", SHORT, "--window", window)


def http(lab: Lab, url: str, ip: str, *, at: str = "v1a") -> Result:
    return symptom(lab, at, "http", url, "--ip", ip, "--timeout", "3")


def connect(lab: Lab, ip: str, port: int, *, at: str = "v1a") -> Result:
    return symptom(lab, at, "connect", ip, str(port), "--timeout", SHORT)


def rate(lab: Lab, url: str, ip: str, *extra: str, at: str = "v1a") -> Result:
    args = ("--bytes", str(4 * 1024 * 1024), "--max-seconds", "3", "--idle", SHORT, *extra)
    return symptom(lab, at, "rate", url, "--ip", ip, *args)


def x_title() -> str:
    return TITLES["x"]


def answered(result: Result) -> bool:
    """The server answered the ClientHello: a certificate for any name, or a TLS alert."""
    return result["outcome"] in ("ok", "alert")


def unknown_sni(lab: Lab, ip: str) -> UnknownSni:
    """What the origin at ``ip`` answers to a name it does not host (a lab setting)."""
    return lab.origins.for_site("twimg" if ip in topology.X_MEDIA_IPS else "x")


def benign_rate(lab: Lab, url: str, ip: str, *extra: str) -> Result:
    """The same-path control transfer: ``url`` on ``ip`` with the benign SNI (Host unchanged),
    or the canary's object where that origin rejects unknown names with an alert."""
    if unknown_sni(lab, ip) == "alert":
        return rate(lab, "https://example.org/big", CANARY_IP, *extra)
    return rate(lab, url, ip, "--sni", "example.org", *extra)


# --- one check per scenario -------------------------------------------------------------------


def check_clean(lab: Lab) -> None:
    assert set(dns(lab, "x.com")["answers"]) == set(topology.X_IPS)
    assert tls(lab, X_IP, "x.com")["valid"] is True
    assert tls(lab, MEDIA_IP, "abs.twimg.com", at="v2a")["valid"] is True
    assert http(lab, "https://x.com/", X_IP)["title"] == x_title()
    assert http(lab, "http://x.com/", X_IP)["location"] == "https://x.com/"
    assert rate(lab, "https://x.com/big", X_IP)["outcome"] == "complete"
    assert quic(lab, YT_IP, "www.youtube.com")["valid"] is True  # the HTTP/3 origin
    # The same over IPv6.
    assert tls(lab, X_IP6, "x.com")["valid"] is True
    assert http(lab, "https://x.com/", X_IP26)["title"] == x_title()
    assert http(lab, "http://x.com/", X_IP6)["location"] == "https://x.com/"


def check_dns_nxdomain(lab: Lab) -> None:
    assert dns(lab, "x.com")["rcode"] == "NXDOMAIN"
    assert dns(lab, "abs.twimg.com", server="198.18.20.53", at="v2a")["rcode"] == "NXDOMAIN"
    assert dns(lab, "example.org")["rcode"] == "NOERROR"
    control = dns(lab, "x.com", server=CONTROL_RESOLVER)
    assert control["rcode"] == "NOERROR" and set(control["answers"]) == set(topology.X_IPS)


def check_dns_bogon(lab: Lab) -> None:
    assert dns(lab, "twitter.com")["answers"] == ["10.10.34.34"]
    assert set(dns(lab, "twitter.com", server=CONTROL_RESOLVER)["answers"]) == set(topology.X_IPS)


def check_dns_blockpage_ip(lab: Lab) -> None:
    assert dns(lab, "x.com")["answers"] == [topology.BLOCKPAGE_IP]
    page = http(lab, "http://x.com/", topology.BLOCKPAGE_IP)
    assert page["status"] == 200 and page["title"] == BLOCKPAGE_TITLE
    handshake = tls(lab, topology.BLOCKPAGE_IP, "x.com")
    assert handshake["outcome"] == "ok" and handshake["valid"] is False


def check_dns_injection(lab: Lab) -> None:
    deadline = time.monotonic() + 5  # the injector follows its policy every 0.25 s
    seen = dns(lab, "x.com", window="1")
    while seen["responses"] < 2 and time.monotonic() < deadline:
        seen = dns(lab, "x.com", window="1")
    assert seen["responses"] >= 2, seen
    first, *later = (tuple(sorted(r["answers"])) for r in seen["all"])
    assert first == (FORGED,)
    assert tuple(sorted(topology.X_IPS)) in later
    assert dns(lab, "example.org", window="1")["responses"] == 1


def check_dns_qname_drop(lab: Lab) -> None:
    assert dns(lab, "x.com")["outcome"] == "timeout"
    assert dns(lab, "api.x.com")["outcome"] == "timeout"
    assert dns(lab, "t.co")["outcome"] == "timeout"
    assert dns(lab, "example.org")["answers"] == [CANARY_IP]
    assert dns(lab, "x.com", server=CONTROL_RESOLVER)["rcode"] == "NOERROR"


def check_dns_servfail(lab: Lab) -> None:
    assert dns(lab, "t.co")["rcode"] == "SERVFAIL"
    assert dns(lab, "example.org")["rcode"] == "NOERROR"
    assert dns(lab, "t.co", server=CONTROL_RESOLVER)["rcode"] == "NOERROR"


def check_ip_blackhole(lab: Lab) -> None:
    assert connect(lab, X_IP, 443)["outcome"] == "timeout"
    assert connect(lab, MEDIA_IP, 80)["outcome"] == "timeout"
    assert connect(lab, CANARY_IP, 443)["outcome"] == "ok"
    assert connect(lab, X_IP, 443, at=topology.CTRL)["outcome"] == "ok"
    # A national censor null-routes both families.
    assert connect(lab, X_IP6, 443)["outcome"] == "timeout"
    assert connect(lab, CANARY_IP6, 443)["outcome"] == "ok"


def check_ipv6_only_blackhole(lab: Lab) -> None:
    assert connect(lab, X_IP6, 443)["outcome"] == "timeout"
    assert connect(lab, MEDIA_IP6, 80)["outcome"] == "timeout"
    assert connect(lab, CANARY_IP6, 443)["outcome"] == "ok"
    assert connect(lab, X_IP6, 443, at=topology.CTRL)["outcome"] == "ok"
    assert connect(lab, X_IP, 443)["outcome"] == "ok"  # IPv4 untouched
    assert tls(lab, X_IP2, "x.com")["valid"] is True


def check_ip_reset(lab: Lab) -> None:
    assert connect(lab, X_IP, 443)["outcome"] == "refused"
    assert connect(lab, MEDIA_IP, 80)["outcome"] == "refused"
    assert connect(lab, CANARY_IP, 443)["outcome"] == "ok"


def check_ip_unreachable(lab: Lab) -> None:
    assert connect(lab, X_IP2, 443)["outcome"] == "unreachable"
    assert connect(lab, CANARY_IP, 443)["outcome"] == "ok"


def check_sni_reset(lab: Lab) -> None:
    for ip, sni in ((X_IP, "twitter.com"), (X_IP, "x.com"), (X_IP2, "t.co"), (X_IP, "api.x.com")):
        assert tls(lab, ip, sni)["outcome"] == "reset", sni
    assert tls(lab, MEDIA_IP, "video.twimg.com")["outcome"] == "reset"
    benign = tls(lab, X_IP, "example.org")
    assert answered(benign) and benign["valid"] is not True
    assert http(lab, "http://x.com/", X_IP)["status"] == 301
    # Over IPv6 too (the rules' IPv6 form).
    assert tls(lab, X_IP6, "twitter.com")["outcome"] == "reset"
    assert answered(tls(lab, X_IP6, "example.org"))
    assert http(lab, "http://x.com/", X_IP26)["status"] == 301


def check_ipv4_only_sni_reset(lab: Lab) -> None:
    for ip, sni in ((X_IP, "twitter.com"), (X_IP2, "x.com"), (MEDIA_IP, "video.twimg.com")):
        assert tls(lab, ip, sni)["outcome"] == "reset", sni
    for ip, sni in ((X_IP6, "twitter.com"), (X_IP26, "x.com"), (MEDIA_IP6, "video.twimg.com")):
        assert tls(lab, ip, sni)["valid"] is True, sni  # IPv6 untouched
    assert http(lab, "https://x.com/", X_IP6)["title"] == x_title()


def check_sni_reset_injected(lab: Lab) -> None:
    for ip, sni in ((X_IP, "twitter.com"), (X_IP2, "x.com"), (MEDIA_IP, "pbs.twimg.com")):
        assert tls(lab, ip, sni)["outcome"] == "reset", sni
    assert answered(tls(lab, X_IP, "example.org"))
    # At the packet level the reset is a forgery: IP TTL 37, not the server's.
    code = (
        "import asyncio, json\n"
        "from probe.steps.packets import reset_evidence\n"
        "async def main():\n"
        "    loop = asyncio.get_running_loop()\n"
        f"    e = await reset_evidence('{X_IP}', 'twitter.com', deadline=loop.time() + 3)\n"
        "    print(json.dumps([e.available, e.injected, e.rst_ttl]))\n"
        "asyncio.run(main())\n"
    )
    available, injected, rst_ttl = json.loads(lab.run("v1a", [sys.executable, "-c", code]).stdout)
    assert available and injected and rst_ttl == 37


def check_sni_drop(lab: Lab) -> None:
    frozen = tls(lab, X_IP, "x.com")
    assert (frozen["outcome"], frozen["stage"]) == ("timeout", "handshake")
    assert answered(tls(lab, X_IP, "example.org"))


def check_sni_fin(lab: Lab) -> None:
    assert tls(lab, X_IP, "x.com")["outcome"] == "eof"
    assert tls(lab, MEDIA_IP, "pbs.twimg.com")["outcome"] == "eof"
    spliced = tls(lab, X_IP, "example.org")
    assert answered(spliced) and spliced["valid"] is not True


def check_sni_alert(lab: Lab) -> None:
    assert tls(lab, X_IP, "twitter.com")["outcome"] == "alert"
    assert answered(tls(lab, X_IP, "example.org"))


def check_sni_residual(lab: Lab) -> None:
    before = tls(lab, X_IP, "example.org")  # before any trigger
    assert answered(before), (before, censor_state(lab, "isp1"))
    trigger = tls(lab, X_IP, "x.com")
    assert trigger["outcome"] == "reset", trigger
    after = tls(lab, X_IP, "example.org")  # same client, server and port, benign SNI
    assert (after["outcome"], after["stage"]) == ("timeout", "handshake"), after
    assert answered(other := tls(lab, X_IP2, "example.org")), other  # another server
    assert answered(other := tls(lab, X_IP, "example.org", at="v1b")), other  # another client
    assert http(lab, "http://x.com/", X_IP)["status"] == 301  # another port


def check_tls_mitm(lab: Lab) -> None:
    intercepted = tls(lab, X_IP, "x.com")
    assert intercepted["outcome"] == "ok" and intercepted["valid"] is False
    assert "interception" in intercepted["issuer"]
    control = tls(lab, X_IP, "x.com", at=topology.CTRL)
    assert control["valid"] is True and "lab CA" in control["issuer"]


def check_http_host_reset(lab: Lab) -> None:
    assert http(lab, "http://x.com/", X_IP)["outcome"] == "reset"
    assert http(lab, "http://twitter.com/", X_IP2)["outcome"] == "reset"
    assert http(lab, "http://example.org/", CANARY_IP)["status"] == 200
    assert http(lab, "https://x.com/", X_IP)["status"] == 200


def check_http_blockpage(lab: Lab) -> None:
    page = http(lab, "http://x.com/", X_IP)
    assert page["status"] == 200 and page["title"] == BLOCKPAGE_TITLE
    assert http(lab, "http://example.org/", CANARY_IP)["title"] == TITLES["example"]
    assert http(lab, "http://x.com/", X_IP, at=topology.CTRL)["status"] == 301


def check_http_redirect(lab: Lab) -> None:
    moved = http(lab, "http://twitter.com/", X_IP)
    assert moved["status"] == 302
    assert moved["location"].startswith(f"http://{topology.BLOCKPAGE_NAME}/")
    assert http(lab, "https://twitter.com/", X_IP)["title"] == x_title()


def check_sni_throttle_police(lab: Lab) -> None:
    down = rate(lab, "https://x.com/big", X_IP, *POLICED)
    up = rate(lab, "https://twitter.com/upload", X_IP, "--upload", *POLICED)
    control = benign_rate(lab, "https://x.com/big", X_IP)
    assert down["kbps"] < 256 and up["kbps"] < 256, (down, up)
    assert control["outcome"] == "complete" and control["kbps"] > 20_000
    assert http(lab, AVATAR, MEDIA_IP)["status"] == 200  # small objects still load


def check_sni_throttle_upload(lab: Lab) -> None:
    up = rate(lab, "https://x.com/upload", X_IP, "--upload", *POLICED)
    down = rate(lab, "https://x.com/big", X_IP)
    assert up["kbps"] < 256, up
    assert down["outcome"] == "complete" and down["kbps"] > 20_000


def check_sni_throttle_stall(lab: Lab) -> None:
    assert http(lab, AVATAR, MEDIA_IP)["status"] == 200  # a 2.6 KB avatar fits in 16 KB
    assert http(lab, "https://x.com/", X_IP)["outcome"] == "timeout"  # the 240 KB page does not
    stalled = rate(lab, "https://x.com/big", X_IP)
    # nginx writes 16 KB TLS records: the first one may not fit under the cut, and then not even
    # the response head can be decrypted (a timeout), as with a real origin.
    assert stalled["outcome"] in ("stall", "timeout") and stalled["bytes"] < 64 * 1024, stalled
    assert benign_rate(lab, "https://x.com/big", X_IP)["outcome"] == "complete"


def check_sni_throttle_shape(lab: Lab) -> None:
    shaped = rate(lab, "https://video.twimg.com/big", MEDIA_IP)
    control = benign_rate(lab, "https://video.twimg.com/big", MEDIA_IP)
    assert shaped["kbps"] < 200, shaped  # HTB class of 128 kbit/s
    assert control["outcome"] == "complete" and control["kbps"] > 20_000


def check_network_shutdown(lab: Lab) -> None:
    assert dns(lab, "example.org")["outcome"] == "timeout"
    assert dns(lab, "example.org", server=CONTROL_RESOLVER)["outcome"] == "timeout"
    assert connect(lab, CANARY_IP, 443)["outcome"] == "timeout"
    assert connect(lab, X_IP, 443, at="v2a")["outcome"] == "timeout"
    assert connect(lab, X_IP, 443, at=topology.CTRL)["outcome"] == "ok"


def check_platform_down(lab: Lab) -> None:
    for vantage in ("v1a", topology.CTRL):
        assert http(lab, "https://x.com/", X_IP, at=vantage)["status"] == 503
    assert http(lab, "https://example.org/", CANARY_IP)["status"] == 200


def check_dns_outage(lab: Lab) -> None:
    assert dns(lab, "x.com")["rcode"] == "SERVFAIL"
    assert dns(lab, "x.com", server=CONTROL_RESOLVER, at=topology.CTRL)["rcode"] == "SERVFAIL"
    assert dns(lab, "example.org")["rcode"] == "NOERROR"


def check_noise_loss(lab: Lab) -> None:
    assert rate(lab, "https://x.com/big", X_IP)["outcome"] == "complete"  # TCP recovers
    assert benign_rate(lab, "https://x.com/big", X_IP)["outcome"] == "complete"
    dropped = _counter(lab, "isp1", "statistic")
    assert dropped > 0  # and yet packets were lost


def check_noise_slow_network(lab: Lab) -> None:
    x = rate(lab, "https://x.com/big", X_IP)
    control = benign_rate(lab, "https://x.com/big", X_IP)
    assert x["kbps"] < 2500 and control["kbps"] < 2500, (x, control)
    assert 0.5 < x["kbps"] / control["kbps"] < 2.0  # equally slow: not throttling


def check_noise_dns_flap(lab: Lab) -> None:
    outcomes = [dns(lab, "example.org")["outcome"] for _ in range(3)]
    assert outcomes.count("timeout") == 1 and outcomes.count("answer") == 2, outcomes


def check_noise_slow_platform(lab: Lab) -> None:
    for vantage in ("v1a", topology.CTRL):
        slow = http(lab, "https://x.com/", X_IP, at=vantage)
        assert slow["status"] == 200 and slow["ms"] >= 1400
    assert http(lab, "https://example.org/", CANARY_IP)["ms"] < 1000


def check_noise_control_resolver_blocked(lab: Lab) -> None:
    assert dns(lab, "x.com", server=CONTROL_RESOLVER)["outcome"] == "timeout"
    assert connect(lab, CONTROL_RESOLVER, 443)["outcome"] == "timeout"
    assert set(dns(lab, "x.com")["answers"]) == set(topology.X_IPS)
    assert tls(lab, X_IP, "x.com")["valid"] is True
    assert dns(lab, "x.com", server=CONTROL_RESOLVER, at=topology.CTRL)["rcode"] == "NOERROR"


def check_noise_helper_blocked(lab: Lab) -> None:
    # Nothing need listen on the helper port: without the scenario the connect is refused.
    ctrl_ip = topology.vantage(topology.CTRL).address
    assert connect(lab, ctrl_ip, topology.HELPER_PORT)["outcome"] == "timeout"
    assert tls(lab, X_IP, "x.com")["valid"] is True


def check_noise_cdn_answer(lab: Lab) -> None:
    assert dns(lab, "x.com")["answers"] == [topology.X_CDN_ALT_IP]
    cdn = tls(lab, topology.X_CDN_ALT_IP, "x.com")
    assert cdn["outcome"] == "ok" and cdn["valid"] is True
    assert http(lab, "https://x.com/", topology.X_CDN_ALT_IP)["title"] == x_title()


def check_noise_pmtu_blackhole(lab: Lab) -> None:
    for ip, sni in ((X_IP, "x.com"), (X_IP, "example.org"), (CANARY_IP, "example.org")):
        stuck = tls(lab, ip, sni)
        if sni not in topology.SITES["x"] and ip == X_IP and unknown_sni(lab, ip) == "alert":
            # An alert fits in one small segment: the real origin's refusal gets through.
            assert stuck["outcome"] == "alert", stuck
            continue
        assert (stuck["outcome"], stuck["stage"]) == ("timeout", "handshake"), sni
    assert http(lab, "http://x.com/", X_IP)["status"] == 301  # small answers pass
    assert dns(lab, "x.com")["rcode"] == "NOERROR"


def quic(
    lab: Lab, ip: str, sni: str, *, at: str = "v1a", timeout: str = SHORT, verify: bool = True
) -> Result:
    ca = ("--ca", str(lab.ca_file)) if verify else ()
    return symptom(lab, at, "quic", ip, sni, "--timeout", timeout, *ca)


def h3_bytes(lab: Lab, ip: str, sni: str, *, at: str = "v1a", seconds: float = 3.0) -> int:
    """Body bytes of one HTTP/3 GET of the large object within ``seconds`` (the probe's QUIC
    step, used here as a plain client: no classifier)."""
    code = (
        "import asyncio\n"
        "from probe.net.clock import Clock, deadline_in\n"
        "from probe.steps import quic\n"
        "async def main():\n"
        f"    o = await quic.handshake('{ip}', '{sni}', deadline=deadline_in({seconds}),\n"
        "        clock=Clock(), control=True, path='/video', body_cap=4_000_000)\n"
        "    print(o.received)\n"
        "asyncio.run(main())\n"
    )
    return int(lab.run(at, [sys.executable, "-c", code], timeout=30).stdout.strip())


def check_quic_udp_drop(lab: Lab) -> None:
    assert quic(lab, YT_IP, "www.youtube.com")["outcome"] == "timeout"
    assert quic(lab, YT_IP, "example.org")["outcome"] == "timeout"  # whatever the name
    assert quic(lab, THUMB_IP, "i.ytimg.com")["outcome"] == "timeout"
    assert tls(lab, YT_IP, "www.youtube.com")["valid"] is True  # TCP untouched
    assert quic(lab, FB_IP, "www.facebook.com")["valid"] is True  # other platforms' QUIC too
    assert quic(lab, YT_IP, "www.youtube.com", at=topology.CTRL)["valid"] is True


def check_quic_sni_drop(lab: Lab) -> None:
    assert quic(lab, YT_IP, "www.youtube.com")["outcome"] == "timeout"
    assert quic(lab, THUMB_IP, "i.ytimg.com")["outcome"] == "timeout"
    benign = quic(lab, YT_IP, "example.org")  # same address, another name: passes the filter
    assert benign["outcome"] == "ok" and benign["valid"] is False
    assert quic(lab, FB_IP, "www.facebook.com")["valid"] is True
    assert tls(lab, YT_IP, "www.youtube.com")["valid"] is True
    assert _counter(lab, "isp1", "NFQUEUE") > 0  # the packets went through the filter


def check_quic_sni_close(lab: Lab) -> None:
    # "closed", not "timeout": an answer came. (aioquic reports a peer's close only after its
    # draining period, three probe timeouts, so the time says little on a loaded machine.)
    closed = quic(lab, YT_IP, "www.youtube.com", timeout="3", verify=False)
    assert closed["outcome"] == "closed", closed
    assert quic(lab, YT_IP, "example.org")["outcome"] == "ok"
    assert quic(lab, FB_IP, "www.facebook.com")["valid"] is True
    assert tls(lab, YT_IP, "www.youtube.com")["valid"] is True


def check_quic_police(lab: Lab) -> None:
    assert quic(lab, YT_IP, "www.youtube.com")["valid"] is True  # a handshake fits the burst
    policed = h3_bytes(lab, YT_IP, "www.youtube.com")
    assert 0 < policed < 160_000, policed  # 32 kB burst + 16 kB/s for 3 s, with slack
    assert h3_bytes(lab, YT_IP, "www.youtube.com", at=topology.CTRL) > 2 * policed
    assert rate(lab, "https://www.youtube.com/big", YT_IP)["outcome"] == "complete"  # TCP


def check_partial_twimg(lab: Lab) -> None:
    assert tls(lab, MEDIA_IP, "abs.twimg.com")["outcome"] == "reset"
    assert tls(lab, MEDIA_IP, "pbs.twimg.com")["outcome"] == "reset"
    assert tls(lab, X_IP, "x.com")["valid"] is True
    assert tls(lab, X_IP, "twitter.com")["valid"] is True


CHECKS: dict[str, Callable[[Lab], None]] = {
    name.removeprefix("check_").replace("_", "-"): check
    for name, check in dict(globals()).items()
    if name.startswith("check_") and callable(check)
}


def censor_state(lab: Lab, role: str) -> str:
    """What the censor at ``role`` holds (rule counters, connections, residual lists): printed
    when a check fails, to tell a rule from a leftover."""
    script = (
        "iptables -t mangle -S BP_MANGLE_PRE -v; iptables -t nat -S BP_NAT_PRE -v; "
        "iptables -t filter -L BP_FWD -n -v -x; conntrack -L 2>/dev/null; "
        'for f in /proc/net/xt_recent/*; do [ -e "$f" ] && echo "$f:" && cat "$f"; done; true'
    )
    return lab.run(role, ["sh", "-c", script], check=False).stdout


def _counter(lab: Lab, role: str, needle: str) -> int:
    """Packets matched by the BP_FWD rule containing ``needle``."""
    listing = lab.run(role, ["iptables", "-t", "filter", "-L", "BP_FWD", "-n", "-v", "-x"]).stdout
    return sum(int(line.split()[0]) for line in listing.splitlines() if needle in line)


# --- tests ------------------------------------------------------------------------------------


def test_every_scenario_has_a_symptom_check() -> None:
    assert sorted(CHECKS) == sorted(scenario_ids())


@pytest.fixture(scope="module", params=UNKNOWN_SNI_BEHAVIOURS)
def origins(request: pytest.FixtureRequest, lab: Lab) -> Iterator[UnknownSni]:
    """Each way a real origin answers a name it does not host, in turn (see censornet.origins)."""
    behaviour: UnknownSni = request.param
    lab.set_origins(OriginSettings(unknown_sni=behaviour))
    yield behaviour
    lab.set_origins(OriginSettings())


@pytest.mark.parametrize("scenario_id", scenario_ids())
@pytest.mark.lab
@pytest.mark.slow
def test_scenario_produces_its_symptom(lab: Lab, origins: UnknownSni, scenario_id: str) -> None:
    apply_scenario(lab, scenario_id)
    CHECKS[scenario_id](lab)


@pytest.mark.lab
@pytest.mark.slow
def test_switching_scenarios_leaves_no_state(lab: Lab) -> None:
    apply_scenario(lab, "sni-throttle-police")
    assert rate(lab, "https://x.com/big", X_IP, *POLICED)["kbps"] < 256
    apply_scenario(lab, "clean")
    fast = rate(lab, "https://x.com/big", X_IP)
    assert fast["outcome"] == "complete" and fast["kbps"] > 20_000
    apply_scenario(lab, "sni-residual")
    assert tls(lab, X_IP, "x.com")["outcome"] == "reset"
    assert tls(lab, X_IP, "example.org")["outcome"] == "timeout"
    apply_scenario(lab, "sni-residual")  # re-applying empties the residual list
    assert answered(tls(lab, X_IP, "example.org"))
    apply_scenario(lab, "sni-throttle-shape")
    apply_scenario(lab, "clean")
    assert "htb" not in lab.run("isp1", ["tc", "qdisc", "show", "dev", "to-v1a"]).stdout
    assert rate(lab, "https://video.twimg.com/big", MEDIA_IP)["kbps"] > 20_000


def closing(lab: Lab, vantage: str) -> str:
    """The vantage's connections closed by their program but still retransmitting."""
    argv = ["ss", "-tnH", "state", "fin-wait-1", "state", "closing", "state", "last-ack"]
    return lab.run(vantage, argv).stdout.strip()


@pytest.mark.lab
@pytest.mark.slow
def test_switching_scenarios_ends_retransmissions_of_the_last(lab: Lab) -> None:
    """A ClientHello that sni-drop dropped is retransmitted by the kernel after the client gave
    up; a switch ends such connections, so the retransmission cannot trip the next scenario's
    rules (sni-residual's penalty box caught the vantage before its first check)."""
    apply_scenario(lab, "sni-drop")
    assert tls(lab, X_IP, "x.com")["outcome"] == "timeout"
    assert closing(lab, "v1a")  # the dropped ClientHello is still being retransmitted
    apply_scenario(lab, "sni-residual")
    assert closing(lab, "v1a") == ""
    time.sleep(3.5)  # longer than the orphan's next retransmission would have waited
    before = tls(lab, X_IP, "example.org")
    assert answered(before), (before, censor_state(lab, "isp1"))


@pytest.mark.lab
@pytest.mark.slow
def test_switching_scenarios_forgets_upstream_failures(lab: Lab) -> None:
    """unbound keeps its infrastructure cache (upstream round trips, timeouts, back-offs) across
    a reload: each switch empties it, so one scenario's SERVFAILs cannot slow the next one's
    upstream (dns-injection's real answer then came too late to race the forged one)."""
    from censornet.nameservers import UNBOUND_CONTROL, NameServers

    def infra() -> str:
        conf = NameServers(lab.state_dir).unbound_conf("isp1")
        return lab.run("isp1", [UNBOUND_CONTROL, "-c", str(conf), "dump_infra"]).stdout

    apply_scenario(lab, "dns-servfail")
    assert dns(lab, "t.co")["rcode"] == "SERVFAIL"
    assert "127.0.0.1" in infra()  # the forwarder that fails the name
    apply_scenario(lab, "dns-injection")
    assert "127.0.0.1" not in infra()
    apply_scenario(lab, "clean")


@pytest.mark.lab
@pytest.mark.slow
def test_one_isp_only_and_status_record(lab: Lab) -> None:
    apply_scenario(lab, "sni-reset", isp="isp1")
    assert tls(lab, X_IP, "x.com", at="v1a")["outcome"] == "reset"
    assert tls(lab, X_IP, "x.com", at="v2a")["outcome"] == "ok"
    assert lab.status()["scenario"] == {"isp1": "sni-reset", "isp2": "clean"}
    apply_scenario(lab, "platform-down")
    assert lab.status()["scenario"] == {"isp1": "platform-down", "isp2": "platform-down"}
    apply_scenario(lab, "clean")
    assert lab.status()["scenario"] == {"isp1": "clean", "isp2": "clean"}


@pytest.mark.lab
@pytest.mark.slow
def test_apply_is_idempotent(lab: Lab) -> None:
    def rules() -> list[str]:
        saved = lab.run("isp1", ["iptables-save"]).stdout.splitlines()
        return [line for line in saved if line.startswith("-A BP_")]

    apply_scenario(lab, "sni-residual")
    first = rules()
    apply_scenario(lab, "sni-residual")
    assert rules() == first and len(first) > 10


@pytest.mark.lab
def test_unknown_scenario_or_isp_names_the_known_ones(lab: Lab) -> None:
    with pytest.raises(KeyError, match="sni-reset"):
        apply_scenario(lab, "no-such-scenario")
    with pytest.raises(KeyError, match="isp2"):
        apply_scenario(lab, "sni-reset", isp="isp9")
    with pytest.raises(ValueError, match="global"):
        apply_scenario(lab, "platform-down", isp="isp1")


def test_lab_scenario_before_lab_up_says_to_run_lab_up() -> None:
    prefix = f"bpn{os.getpid()}"
    assert not (state_root() / prefix).exists()
    env = dict(os.environ, BLOCKPROBE_LAB_PREFIX=prefix)
    done = subprocess.run(
        [sys.executable, "-m", "blockprobe", "lab", "scenario", "sni-reset"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "lab up" in done.stderr


def test_restore_input_flushes_every_censor_chain_and_renames_hashlimits() -> None:
    from censornet.catalogue import get_scenario

    text = restore_input(get_scenario("sni-throttle-police"), generation=0x2A)
    for chain in ("BP_FWD", "BP_IN", "BP_OUT", "BP_MANGLE_PRE", "BP_MANGLE_POST", "BP_NAT_PRE"):
        assert f"-F {chain}\n" in text
    assert "--hashlimit-name bpthr-2a " in text
    assert text.count("COMMIT") == 3
    assert "-A " not in restore_input(None, generation=1)
    assert target_roles(get_scenario("dns-outage"), None) == (topology.INET,)
    assert target_roles(get_scenario("sni-reset"), None) == ("isp1", "isp2")


def test_restore_input_per_family() -> None:
    """Both families by default (the rules' IPv6 form); one family when the scenario says so."""
    from censornet.catalogue import get_scenario

    blackhole = restore_input(get_scenario("ip-blackhole"), 1, "ipv6")
    assert f"-d {X_IP6},{X_IP26}," in blackhole and "198.18." not in blackhole
    assert "-A " not in restore_input(get_scenario("ipv4-only-sni-reset"), 1, "ipv6")
    assert "-A " not in restore_input(get_scenario("ipv6-only-blackhole"), 1, "ipv4")
    assert "-A BP_FWD -d fd00:198:18:100::10," in restore_input(
        get_scenario("ipv6-only-blackhole"), 1, "ipv6"
    )
