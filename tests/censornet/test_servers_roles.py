"""The ``inet`` and ``isp1`` roles end to end, in a private network namespace (root only).

The namespace is anonymous (``unshare --net``): it and everything in it vanish with the shell.
A nested namespace plays the vantage point behind ``to-v1a``, so the DNS injector sees real
packets on a vantage-facing interface and iptables REDIRECT sends its web traffic to the proxy.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from censornet import topology
from censornet.nameservers import NameServers, resolvers
from censornet.origins import OriginServer, OriginSettings
from censornet.pki import ensure_pki
from censornet.policy import DnsRule, HttpRule, InjectRule, Policy, TlsRule, write_policy

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"),
        reason="needs root, unshare and nsenter",
    ),
]

RESOLVERS = ("198.18.10.53", "198.18.20.53")  # the ISP resolvers, on the same loopback here
CHECKS = textwrap.dedent(
    """
    import asyncio, json, ssl, sys
    import dns.asyncquery, dns.message, httpx
    from censornet import topology

    async def main(state: str) -> None:
        out = {}
        q = dns.message.make_query("twitter.com", "A")
        auth = await dns.asyncquery.udp(q, topology.AUTH_DNS_IP, timeout=2)
        out["auth"] = sorted(r.address for rr in auth.answer for r in rr)
        control = await dns.asyncquery.tcp(q, topology.CONTROL_RESOLVER_IP, timeout=2)
        out["control"] = sorted(r.address for rr in control.answer for r in rr)
        isp = await dns.asyncquery.udp(q, "198.18.10.53", timeout=3)
        out["isp"] = sorted(r.address for rr in isp.answer for r in rr)
        ca = ssl.create_default_context(cafile=f"{state}/pki/lab-ca.pem")
        async with httpx.AsyncClient(verify=ca, timeout=5) as client:
            url = f"https://{topology.CONTROL_RESOLVER_IP}/dns-query"
            got = await client.post(url, content=q.to_wire(),
                headers={"content-type": "application/dns-message"})
        doh = dns.message.from_wire(got.content)
        out["doh"] = sorted(r.address for rr in doh.answer for r in rr)
        async with httpx.AsyncClient(verify=ca, timeout=5) as client:
            page = await client.get(f"https://{topology.X_IPS[0]}/",
                headers={"host": "x.com"}, extensions={"sni_hostname": "x.com"})
            out["x_title"] = page.text.split("<title>")[1].split("</title>")[0]
            plain = await client.get(f"http://{topology.CANARY_IPS[0]}/",
                headers={"host": "example.org"})
            out["canary_status"] = plain.status_code
            block = await client.get(f"http://{topology.BLOCKPAGE_IP}/")
            out["blockpage"] = "Surf Safely" in block.text
        print(json.dumps(out))

    asyncio.run(main(sys.argv[1]))
    """
)

VANTAGE_QUERY = textwrap.dedent(
    """
    import json, socket, ssl, sys
    import dns.message
    q = dns.message.make_query("api.twitter.com", "A")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q.to_wire(), ("198.18.10.53", 53))
    answers = []
    while len(answers) < 2:
        data, _ = s.recvfrom(4096)
        r = dns.message.from_wire(data)
        answers.append(sorted(x.address for rr in r.answer for x in rr))
    print(json.dumps(answers))

    def get(ip, host):
        with socket.create_connection((ip, 80), timeout=3) as c:
            head = f"GET / HTTP/1.1\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n"
            c.sendall(head.encode())
            data = b""
            while chunk := c.recv(65536):
                data += chunk
        return data.decode()

    def handshake(name):
        ctx = ssl.create_default_context(cafile=sys.argv[1] + "/pki/lab-ca.pem")
        try:
            with socket.create_connection(("198.18.100.10", 443), timeout=3) as c:
                with ctx.wrap_socket(c, server_hostname=name):
                    return "ok"
        except ssl.SSLError as exc:
            return exc.reason

    print(json.dumps({
        "blocked_http": "Surf Safely" in get("198.18.100.10", "x.com"),
        "passed_http": "<title>Example Domain</title>" in get("198.18.101.10", "example.org"),
        "blocked_tls": handshake("twitter.com"),
        "passed_tls": handshake("x.com"),
    }))
    """
)


def test_roles_serve_in_a_namespace_and_stop_on_sigterm(tmp_path: Path) -> None:
    """Both roles come up, write ready files, answer real clients, inject, and exit 0 on TERM."""
    state = tmp_path / "state"
    ensure_pki(state)
    isp_policy = Policy(
        # The real answer comes late (a distant upstream), so the forged one wins the race.
        resolver=(DnsRule(suffix="twitter.com", action="answer", delay_ms=300),),
        inject=(InjectRule(suffix="twitter.com", answer="10.10.34.34"),),
        http_proxy=(HttpRule(suffix="x.com", action="blockpage"),),
        tls_proxy=(TlsRule(suffix="twitter.com", action="alert"),),
    )
    write_policy(state, "isp1", isp_policy)
    # The real servers the roles work beside: nginx origins, nsd, and the unbound resolvers.
    (state / "logs").mkdir(parents=True, exist_ok=True)
    nginx = shlex.join(OriginServer(state, "netns").prepare(OriginSettings(), Policy()))
    names = NameServers(state)
    names.prepare({"isp1": isp_policy})
    real = [shlex.join(names.nsd_argv())]
    real += [shlex.join(names.unbound_argv(r.name)) for r in resolvers()]
    start_real = "; ".join(
        f'{argv} >>{tmp_path}/real.log 2>&1 & real="$real $!"' for argv in [nginx, *real]
    )
    wait_real = (
        "import time; from pathlib import Path; from censornet.origins import OriginServer; "
        "from censornet.nameservers import NameServers; "
        f"s = Path({str(state)!r}); d = time.monotonic() + 20; "
        "OriginServer(s, 'netns').wait_ready(d, None); NameServers(s).wait_ready(d, {})"
    )
    (tmp_path / "checks.py").write_text(CHECKS)
    (tmp_path / "vantage.py").write_text(VANTAGE_QUERY)
    addresses = " ".join(topology.server_ips())
    addresses6 = " ".join(topology.ipv6_of(ip) for ip in (*topology.server_ips(), *RESOLVERS))
    py = sys.executable
    script = f"""
    ip link set lo up
    for a in {addresses} {" ".join(RESOLVERS)}; do ip addr add $a/32 dev lo; done
    for a in {addresses6}; do ip addr add $a/128 dev lo nodad; done
    unshare --net sleep 30 >/dev/null 2>&1 &
    vantage=$!
    sleep 0.2
    ip link add to-v1a type veth peer name veth0 netns /proc/$vantage/ns/net
    ip addr add 198.18.11.1/24 dev to-v1a
    ip link set to-v1a up
    nsenter -t $vantage -n ip link set lo up
    nsenter -t $vantage -n ip addr add 198.18.11.2/24 dev veth0
    nsenter -t $vantage -n ip link set veth0 up
    nsenter -t $vantage -n ip route add default via 198.18.11.1
    iptables -t nat -A PREROUTING -i to-v1a -p tcp --dport 80 -j REDIRECT --to-ports 8080
    iptables -t nat -A PREROUTING -i to-v1a -p tcp --dport 443 -j REDIRECT --to-ports 8443
    {start_real}
    {py} -c {shlex.quote(wait_real)}
    {py} -m censornet.servers inet --state {state} >{tmp_path}/inet.log 2>&1 &
    inet=$!
    {py} -m censornet.servers isp1 --state {state} >{tmp_path}/isp1.log 2>&1 &
    isp=$!
    for i in $(seq 100); do
        [ -f {state}/ready/inet ] && [ -f {state}/ready/isp1 ] && break; sleep 0.1
    done
    sleep 0.5
    timeout 20 {py} {tmp_path}/checks.py {state}
    timeout 10 nsenter -t $vantage -n {py} {tmp_path}/vantage.py {state}
    kill -TERM $inet $isp $vantage
    wait $inet; echo "inet exit $?"
    wait $isp; echo "isp exit $?"
    kill -TERM $real; wait $real
    """
    shell = subprocess.Popen(
        ["unshare", "--net", "sh", "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
        start_new_session=True,  # one process group: a timeout kills the servers too
    )
    try:
        stdout, stderr = shell.communicate(timeout=60)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
    logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
    lines = stdout.splitlines()
    assert 5 == len(lines), stdout + stderr + logs
    result = json.loads(lines[0])
    x_ips = sorted(topology.X_IPS)
    assert {
        "auth": x_ips,
        "control": x_ips,
        "isp": x_ips,
        "doh": x_ips,
        "x_title": "X. It&#x27;s what&#x27;s happening / X",
        "canary_status": 200,
        "blockpage": True,
    } == result
    assert [["10.10.34.34"], x_ips] == json.loads(lines[1])  # forged first, real later
    transparent_proxy = {
        "blocked_http": True,
        "passed_http": True,
        "blocked_tls": "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "passed_tls": "ok",
    }
    assert transparent_proxy == json.loads(lines[2]), stderr + logs  # REDIRECT, SO_ORIGINAL_DST
    assert ["inet exit 0", "isp exit 0"] == lines[3:], logs
    assert not (state / "ready" / "inet").exists()
