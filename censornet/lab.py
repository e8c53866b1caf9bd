"""The lab's life cycle: build the topology, start its servers, run commands in it, tear it down.

``Lab.up()`` removes any leftover of a crashed run (by exact namespace name), builds the namespaces
of ``censornet.topology``, installs the empty censor chains, creates the PKI and starts the servers;
``Lab.locate()`` finds a running lab from its state file; ``Lab.down()`` stops what the lab started
(by PID and start time) and deletes its namespaces by exact name.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from censornet import topology
from censornet.nameservers import NameServers, resolvers
from censornet.netns import LabError, Mode, Shell, choose_mode, start_holder
from censornet.origins import OriginServer, OriginSettings, read_state, write_state
from censornet.processes import Tracked

SERVER_ROLES: tuple[str, ...] = (topology.INET, *(i.name for i in topology.ISPS))
# Chains the censor (and scenario) rules live in, per table, with the built-in chain they hang off.
CENSOR_CHAINS: dict[str, tuple[tuple[str, str], ...]] = {
    "filter": (("BP_FWD", "FORWARD"), ("BP_IN", "INPUT"), ("BP_OUT", "OUTPUT")),
    "mangle": (("BP_MANGLE_PRE", "PREROUTING"), ("BP_MANGLE_POST", "POSTROUTING")),
    "nat": (("BP_NAT_PRE", "PREROUTING"),),
}
READY_TIMEOUT = 30.0
H3_ORIGIN = "h3origin"  # the HTTP/3 origin (censornet.servers.h3origin), beside nginx in inet
# The real DNS servers a lab runs: nsd (authoritative) and one unbound per resolver.
DNS_SERVER_NAMES: tuple[str, ...] = ("nsd", *(f"unbound-{r.name}" for r in resolvers()))
# The probe config the control vantage's helper uses (the lab's resolvers, canaries, platforms).
LAB_PROBE_CONFIG = Path(__file__).resolve().parent.parent / "config" / "lab" / "probe-lab.toml"


class LabNotUp(LabError):
    """No lab is running under this prefix."""


def state_root() -> Path:
    """Where labs keep their state: /run as root, a per-user directory under /tmp otherwise."""
    override = os.environ.get("BLOCKPROBE_LAB_STATE")
    if override:
        return Path(override)
    if os.geteuid() == 0 and os.environ.get("BLOCKPROBE_LAB_ROOTLESS") != "1":
        return Path("/run/blockprobe-lab")
    return Path(f"/tmp/blockprobe-lab-{os.getuid()}")


@dataclass
class Lab:
    """One mock censor network, named by its prefix."""

    prefix: str
    mode: Mode
    state_dir: Path
    holder: Tracked | None = None
    servers: list[Tracked] = field(default_factory=list)

    # --- finding and naming -----------------------------------------------------------------

    @classmethod
    def locate(cls, prefix: str | None = None) -> Lab:
        """The running lab of ``prefix`` (raises LabNotUp saying to run ``lab up``)."""
        prefix = prefix or topology.lab_prefix()
        state_file = state_root() / prefix / "lab.json"
        try:
            data = json.loads(state_file.read_text())
        except FileNotFoundError:
            raise LabNotUp(f"no lab {prefix!r} is up: run `blockprobe lab up` first") from None
        holder = Tracked(**data["holder"]) if data.get("holder") else None
        lab = cls(
            prefix=prefix,
            mode=data["mode"],
            state_dir=state_file.parent,
            holder=holder,
            servers=[Tracked(**s) for s in data["servers"]],
        )
        if holder is not None and not holder.alive():
            raise LabNotUp(f"lab {prefix!r} lost its namespaces: run `blockprobe lab up` again")
        return lab

    def ns(self, role: str) -> str:
        """The namespace name of ``role`` (``inet``, ``isp1``, ``v1a``, ...)."""
        if role not in topology.ROLES:
            raise LabError(f"unknown lab role {role!r}; known: {', '.join(topology.ROLES)}")
        return f"{self.prefix}-{role}"

    @property
    def shell(self) -> Shell:
        """Builds commands for this lab's mode."""
        return Shell(self.mode, self.holder.pid if self.holder else None)

    def resolv_conf(self, vantage: str) -> Path:
        """The resolv.conf a vantage point sees (its ISP's resolver; the control uses the lab's)."""
        return self.state_dir / "resolv" / f"{vantage}.conf"

    @property
    def ca_file(self) -> Path:
        """The lab CA the probe trusts."""
        return self.state_dir / "pki" / "lab-ca.pem"

    # --- running commands -------------------------------------------------------------------

    def command(self, role: str, argv: Sequence[str]) -> list[str]:
        """argv running ``argv`` in ``role``'s namespace (vantages see their own resolv.conf)."""
        resolv = self.resolv_conf(role) if role in {v.name for v in topology.VANTAGES} else None
        return self.shell.in_ns(self.ns(role), argv, resolv)

    def run(
        self,
        role: str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in ``role``'s namespace and capture its output (``env`` adds variables)."""
        done = subprocess.run(
            self.command(role, argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=False,
            env={**os.environ, **env} if env else None,
        )
        if check and done.returncode != 0:
            raise LabError(
                f"in {role}: {shlex.join(argv)} exited {done.returncode}: {done.stderr.strip()}"
            )
        return done

    # --- life cycle -------------------------------------------------------------------------

    @classmethod
    def up(cls, prefix: str | None = None, origins: OriginSettings | None = None) -> Lab:
        """Build a fresh lab (removing a leftover of the same prefix) and start its servers.

        ``origins`` says how the web origins answer names they do not host (default: from
        ``BLOCKPROBE_LAB_UNKNOWN_SNI``, else nginx's default server with its own certificate).
        """
        prefix = prefix or topology.lab_prefix()
        origins = origins or OriginSettings.from_env()
        mode = choose_mode()
        stale = state_root() / prefix
        _teardown(prefix, stale, mode)
        state_dir = stale
        for sub in ("logs", "resolv", "ready", "policy", "scenario"):
            (state_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o755)
        lab = cls(prefix=prefix, mode=mode, state_dir=state_dir)
        try:
            if mode == "userns":
                pid = start_holder(state_dir / "logs" / "holder.log")
                lab.holder = Tracked.of("holder", pid)
            lab._save()
            lab.shell.script(_topology_script(prefix), timeout=120)
            lab._write_resolv_confs()
            from censornet.pki import ensure_pki

            ensure_pki(state_dir)
            write_state(state_dir, origins)
            lab._start_servers()
            lab._save()
        except BaseException:
            lab.down()
            raise
        return lab

    def down(self) -> None:
        """Stop every process the lab started and delete its namespaces and state."""
        for server in self.servers:  # those started since the state file was last saved too
            server.stop()
        _teardown(self.prefix, self.state_dir, self.mode)

    @property
    def origins(self) -> OriginSettings:
        """How the web origins answer names they do not host."""
        return read_state(self.state_dir)

    def set_origins(self, settings: OriginSettings) -> None:
        """Switch the origins' unknown-SNI behaviour (nginx reloads; waits until it has)."""
        from censornet.policy import PolicyWatcher

        write_state(self.state_dir, settings)
        self.reload_origins(PolicyWatcher(self.state_dir, topology.INET).current())

    def reload_origins(self, policy: object) -> None:
        """Render the origins for the inet ``policy`` (a censornet.policy.Policy) and reload."""
        from censornet.policy import Policy

        assert isinstance(policy, Policy)
        master = next((s for s in self.servers if s.name == "nginx"), None)
        if master is None or not master.alive():
            raise LabError(f"lab {self.prefix!r} has no running nginx: run `blockprobe lab up`")
        OriginServer(self.state_dir, self.mode).reload(master.pid, self.origins, policy)

    def status(self) -> dict[str, object]:
        """What is up: mode, namespaces, servers alive, scenario per ISP."""
        scenarios = {}
        for isp in topology.ISPS:
            path = self.state_dir / "scenario" / f"{isp.name}.json"
            scenarios[isp.name] = json.loads(path.read_text())["id"] if path.exists() else "clean"
        return {
            "prefix": self.prefix,
            "mode": self.mode,
            "state_dir": str(self.state_dir),
            "namespaces": [self.ns(role) for role in topology.ROLES],
            "servers": {s.name: s.alive() for s in self.servers},
            "scenario": scenarios,
            "origins": self.origins.to_json(),
        }

    # --- internals --------------------------------------------------------------------------

    def _save(self) -> None:
        data = {
            "prefix": self.prefix,
            "mode": self.mode,
            "holder": self.holder.__dict__ if self.holder else None,
            "servers": [s.__dict__ for s in self.servers],
        }
        tmp = self.state_dir / "lab.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.state_dir / "lab.json")

    def _write_resolv_confs(self) -> None:
        for vantage in topology.VANTAGES:
            resolver = (
                topology.isp(vantage.isp).resolver if vantage.isp else topology.CONTROL_RESOLVER_IP
            )
            path = self.resolv_conf(vantage.name)
            path.write_text(f"# blockprobe lab: {vantage.name}\nnameserver {resolver}\n")
            path.chmod(0o644)

    def _spawn(self, name: str, role: str, argv: Sequence[str]) -> Tracked:
        """Start ``argv`` in ``role``'s namespace, logging to logs/NAME.log; track it."""
        log = (self.state_dir / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            self.command(role, argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        tracked = Tracked.of(name, proc.pid)
        self.servers = [s for s in self.servers if s.name != name] + [tracked]
        return tracked

    def _start_servers(self) -> None:
        ready_dir = self.state_dir / "ready"
        for role in SERVER_ROLES:
            (ready_dir / role).unlink(missing_ok=True)
            argv = [sys.executable, "-m", "censornet.servers", role, "--state", str(self.state_dir)]
            self._spawn(role, role, argv)
        origin = self._start_origins()
        (ready_dir / H3_ORIGIN).unlink(missing_ok=True)
        h3 = [sys.executable, "-m", "censornet.servers.h3origin", "--state", str(self.state_dir)]
        self._spawn(H3_ORIGIN, topology.INET, h3)  # serves the tree nginx's preparation wrote
        names = self._start_name_servers()
        self._start_helper()
        deadline = time.monotonic() + READY_TIMEOUT
        nginx = next(s for s in self.servers if s.name == "nginx")
        try:
            origin.wait_ready(deadline, nginx.alive)
        except LabError as exc:
            log_tail = (self.state_dir / "logs" / "nginx.log").read_text()[-1500:]
            raise LabError(f"{exc}:\n{log_tail}") from None
        names.wait_ready(
            deadline, {s.name: s.alive for s in self.servers if s.name in DNS_SERVER_NAMES}
        )
        for server in self.servers:
            if server.name not in (*SERVER_ROLES, H3_ORIGIN):
                continue
            while not (ready_dir / server.name).exists():
                if not server.alive():
                    log_tail = (self.state_dir / "logs" / f"{server.name}.log").read_text()[-1500:]
                    raise LabError(f"lab server {server.name} exited during start:\n{log_tail}")
                if time.monotonic() > deadline:
                    raise LabError(f"lab server {server.name} not ready in {READY_TIMEOUT:.0f} s")
                time.sleep(0.05)
        self._wait_for_helper(deadline)

    def _start_origins(self) -> OriginServer:
        """Start nginx, the platform and canary web origins, in inet (not yet waited for)."""
        from censornet.policy import Policy

        origin = OriginServer(self.state_dir, self.mode)
        self._spawn("nginx", topology.INET, origin.prepare(self.origins, Policy()))
        return origin

    def _start_name_servers(self) -> NameServers:
        """Start nsd (authoritative) and the unbound resolvers (not yet waited for)."""
        names = NameServers(self.state_dir)
        names.prepare({})
        self._spawn("nsd", topology.INET, names.nsd_argv())
        for site in resolvers():
            self._spawn(f"unbound-{site.name}", site.role, names.unbound_argv(site.name))
        return names

    def restart_nsd(self) -> None:
        """Restart nsd with its current configuration (its zone list changed) and wait for it."""
        current = next((s for s in self.servers if s.name == "nsd"), None)
        if current is not None:
            current.stop()
        log = self.state_dir / "logs" / "nsd.log"
        log.unlink(missing_ok=True)
        names = NameServers(self.state_dir)
        started = self._spawn("nsd", topology.INET, names.nsd_argv())
        self._save()
        deadline = time.monotonic() + READY_TIMEOUT
        while not (log.exists() and "nsd started" in log.read_text(errors="replace")):
            if not started.alive() or time.monotonic() > deadline:
                tail = log.read_text()[-800:] if log.exists() else ""
                raise LabError(f"nsd did not restart: {tail}")
            time.sleep(0.02)

    @property
    def helper_url(self) -> str:
        """The control vantage's helper, as a probe in the lab reaches it."""
        return f"http://{topology.vantage(topology.CTRL).address}:{topology.HELPER_PORT}"

    def _start_helper(self) -> None:
        """Start ``blockprobe helper serve`` in the control vantage (the uncensored comparison)."""
        address = topology.vantage(topology.CTRL).address
        argv = [
            sys.executable, "-m", "blockprobe", "helper", "serve", "--host", address,
            "--port", str(topology.HELPER_PORT), "--config", str(LAB_PROBE_CONFIG),
        ]  # fmt: skip
        log = (self.state_dir / "logs" / "helper.log").open("ab")
        proc = subprocess.Popen(
            self.command(topology.CTRL, argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "BLOCKPROBE_CA_FILE": str(self.ca_file)},
        )
        log.close()
        self.servers.append(Tracked.of("helper", proc.pid))

    def _wait_for_helper(self, deadline: float) -> None:
        helper = next(s for s in self.servers if s.name == "helper")
        address = topology.vantage(topology.CTRL).address
        probe = (
            "import socket, sys\n"
            f"try: socket.create_connection(('{address}', {topology.HELPER_PORT}), 0.5)\n"
            "except OSError: sys.exit(1)\n"
        )
        while self.run(topology.CTRL, [sys.executable, "-c", probe], check=False).returncode:
            if not helper.alive():
                log_tail = (self.state_dir / "logs" / "helper.log").read_text()[-1500:]
                raise LabError(f"the control-vantage helper exited during start:\n{log_tail}")
            if time.monotonic() > deadline:
                raise LabError(f"the control-vantage helper not ready in {READY_TIMEOUT:.0f} s")
            time.sleep(0.1)


def _teardown(prefix: str, state_dir: Path, mode: Mode) -> None:
    """Remove everything a lab of ``prefix`` may have left, by PID and by exact name."""
    state_file = state_dir / "lab.json"
    holder: Tracked | None = None
    if state_file.exists():
        try:
            data = json.loads(state_file.read_text())
            for server in data.get("servers", []):
                Tracked(**server).stop()
            if data.get("holder"):
                holder = Tracked(**data["holder"])
        except (ValueError, TypeError, KeyError):
            pass  # a damaged state file: fall through to removal by name
    if holder is not None:
        holder.stop(grace=1.0)  # the rootless namespaces die with their holder
    if mode == "netns" and os.geteuid() == 0:
        existing = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False
        ).stdout.split()
        for role in topology.ROLES:
            name = f"{prefix}-{role}"
            if name in existing:
                subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
    if state_dir.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(state_dir)], check=False)


def _topology_script(prefix: str) -> str:
    """The shell script that builds the namespaces, links, addresses, routes and censor chains."""
    ns = {role: f"{prefix}-{role}" for role in topology.ROLES}
    lines: list[str] = []
    add = lines.append
    v6 = topology.ipv6_of
    for role in topology.ROLES:
        add(f"ip netns add {ns[role]}")
        # No duplicate address detection: an address is usable the moment it is added (DAD
        # would hold every IPv6 address "tentative" for a second or more after the link is up).
        for conf in ("all", "default"):
            add(f"ip netns exec {ns[role]} sysctl -qw net.ipv6.conf.{conf}.accept_dad=0")
            add(f"ip netns exec {ns[role]} sysctl -qw net.ipv6.conf.{conf}.accept_ra=0")
        add(f"ip -n {ns[role]} link set lo up")
    for link in topology.LINKS:
        left, right = ns[link.left], ns[link.right]
        add(
            f"ip -n {left} link add name {link.left_if} type veth "
            f"peer name {link.right_if} netns {right}"
        )
        add(f"ip -n {left} addr add {link.left_addr}/{link.prefixlen} dev {link.left_if}")
        add(f"ip -n {right} addr add {link.right_addr}/{link.prefixlen} dev {link.right_if}")
        add(f"ip -n {left} addr add {v6(link.left_addr)}/64 dev {link.left_if} nodad")
        add(f"ip -n {right} addr add {v6(link.right_addr)}/64 dev {link.right_if} nodad")
        add(f"ip -n {left} link set {link.left_if} up")
        add(f"ip -n {right} link set {link.right_if} up")
        for side, ifname in ((left, link.left_if), (right, link.right_if)):
            # Real segments for xt_string and NFQUEUE: no offloads (best effort).
            add(
                f"ip netns exec {side} ethtool -K {ifname} tso off gso off gro off "
                ">/dev/null 2>&1 || true"
            )
    inet = ns[topology.INET]
    for ip in topology.server_ips():
        add(f"ip -n {inet} addr add {ip}/32 dev lo")
        add(f"ip -n {inet} addr add {v6(ip)}/128 dev lo nodad")
    for dest, via in topology.INET_ROUTES:
        add(f"ip -n {inet} route add {dest} via {via}")
        add(f"ip -n {inet} -6 route add {v6(dest)} via {v6(via)}")
    for isp in topology.ISPS:
        upstream = topology.ISP_UPSTREAM[isp.name]
        add(f"ip -n {ns[isp.name]} addr add {isp.resolver}/32 dev lo")
        add(f"ip -n {ns[isp.name]} addr add {v6(isp.resolver)}/128 dev lo nodad")
        add(f"ip -n {ns[isp.name]} route add default via {upstream}")
        add(f"ip -n {ns[isp.name]} -6 route add default via {v6(upstream)}")
    for vantage in topology.VANTAGES:
        add(f"ip -n {ns[vantage.name]} route add default via {vantage.gateway}")
        add(f"ip -n {ns[vantage.name]} -6 route add default via {v6(vantage.gateway)}")
    for role in (topology.INET, *(i.name for i in topology.ISPS)):
        add(f"ip netns exec {ns[role]} sysctl -qw net.ipv4.ip_forward=1")
        add(f"ip netns exec {ns[role]} sysctl -qw net.ipv6.conf.all.forwarding=1")
        add(f"ip netns exec {ns[role]} sysctl -qw net.ipv6.icmp.ratelimit=0")
        add(f"ip netns exec {ns[role]} ip6tables-restore <<'EOF'\n{censor_base_rules()}EOF")
        add(f"ip netns exec {ns[role]} sysctl -qw net.ipv4.conf.all.rp_filter=0")
        # Every censor ICMP reaches the probe (Linux rate-limits them per peer by default).
        add(f"ip netns exec {ns[role]} sysctl -qw net.ipv4.icmp_ratelimit=0")
        add(f"ip netns exec {ns[role]} iptables-restore <<'EOF'\n{censor_base_rules()}EOF")
    return "\n".join(lines) + "\n"


def censor_base_rules() -> str:
    """iptables-restore input that creates the empty censor chains and hooks them in."""
    out: list[str] = []
    for table, chains in CENSOR_CHAINS.items():
        out.append(f"*{table}")
        out.extend(f":{chain} - [0:0]" for chain, _ in chains)
        out.extend(f"-A {builtin} -j {chain}" for chain, builtin in chains)
        out.append("COMMIT")
    return "\n".join(out) + "\n"
