"""Applying a catalogue scenario to a running lab, leaving nothing of the previous one behind.

``apply_scenario`` resets every censor namespace (inet and each ISP) and applies the scenario in
one shell script run inside the lab: per namespace and address family one atomic
``iptables-restore --noflush`` (``ip6tables-restore`` for IPv6) that flushes the ``BP_*`` chains
and appends the scenario's rules for that family, the root qdiscs of its interfaces
deleted (then the scenario's ``tc`` added), ``conntrack -F`` and every xt_recent list emptied.
Hashlimit tables cannot be emptied from user space, so each application renames them with a fresh
generation suffix. Server policies are written for every role (waiting for the DNS injectors, which
poll theirs, when their rules change), and the applied id is recorded in
``state_dir/scenario/<isp>.json`` for ``lab status``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections.abc import Sequence
from pathlib import Path

from censornet import topology
from censornet.catalogue import CHAINS, Family, Scenario, get_scenario
from censornet.lab import Lab
from censornet.nameservers import CONTROL_RESOLVER, NameServers, resolvers
from censornet.netns import LabError
from censornet.policy import Policy, policy_path, write_policy
from censornet.servers.injector import POLL_INTERVAL as INJECTOR_POLL_INTERVAL

CENSOR_ROLES: tuple[str, ...] = (topology.INET, *(i.name for i in topology.ISPS))
SCRIPT_TIMEOUT = 30.0
_HASHLIMIT_NAME = re.compile(r"(--hashlimit-name\s+)(\S+)")


def apply_scenario(lab: Lab, scenario_id: str | Scenario, isp: str | None = None) -> Scenario:
    """Reset the lab, then apply ``scenario_id`` to ``isp`` (default: every ISP) or to inet.

    ``scenario_id`` names a scenario of the packaged catalogue, or is a validated Scenario (from
    another catalogue file). Raises KeyError for an unknown scenario or ISP (naming the known ones),
    ValueError for ``isp`` with a global scenario, LabError when a command fails (the lab is then
    left clean).
    """
    scenario = get_scenario(scenario_id) if isinstance(scenario_id, str) else scenario_id
    targets = target_roles(scenario, isp)
    try:
        _install(lab, scenario, targets)
    except LabError:
        _install(lab, None, ())
        raise
    return scenario


def reset_lab(lab: Lab) -> None:
    """Remove every scenario: empty censor chains and qdiscs, clean policies, no leftover state."""
    _install(lab, None, ())


def target_roles(scenario: Scenario, isp: str | None) -> tuple[str, ...]:
    """The namespace roles ``scenario`` is applied in (the ISPs chosen, or inet when global)."""
    if scenario.scope == "global":
        if isp is not None:
            raise ValueError(
                f"scenario {scenario.id!r} is global (applied in inet, affecting every ISP): "
                "do not give an ISP"
            )
        return (topology.INET,)
    if isp is not None:
        return (topology.isp(isp).name,)
    return tuple(i.name for i in topology.ISPS)


def interfaces(role: str) -> tuple[str, ...]:
    """The interfaces of namespace ``role`` on the lab's links."""
    names = [link.left_if for link in topology.LINKS if link.left == role]
    names += [link.right_if for link in topology.LINKS if link.right == role]
    return tuple(names)


def vantage_interfaces(role: str) -> tuple[str, ...]:
    """The interfaces of ISP ``role`` that face its vantage points (``to-v1a``, ...)."""
    return tuple(
        link.left_if
        for link in topology.LINKS
        if link.left == role and link.right in {v.name for v in topology.VANTAGES}
    )


def restore_input(scenario: Scenario | None, generation: int, family: Family = "ipv4") -> str:
    """iptables-restore --noflush input (ip6tables-restore for ``ipv6``): flush every BP_* chain,
    then append the scenario's rules for that family."""
    out: list[str] = []
    for table, chains in CHAINS.items():
        out.append(f"*{table}")
        out.extend(f"-F {chain}" for chain in chains)
        if scenario is not None:
            out.extend(_renamed(rule, generation) for rule in scenario.rules_for(table, family))
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def reset_script(
    lab: Lab, scenario: Scenario | None, targets: Sequence[str], generation: int
) -> str:
    """The ``sh -e`` script that resets every censor namespace and applies ``scenario``.

    It first ends the vantage points' closing connections (FIN-WAIT-1, CLOSING, LAST-ACK: closed
    by their program, their data or FIN still unacknowledged). The kernel retransmits those for
    minutes, so a ClientHello the previous scenario dropped would reach the new one's rules: in
    sni-residual a retransmitted x.com ClientHello from sni-drop put the vantage in the penalty
    box before its first check. Connections still in use are left alone.
    """
    lines: list[str] = [
        f"ip netns exec {shlex.quote(lab.ns(v.name))} ss -t -K state fin-wait-1 state closing "
        "state last-ack >/dev/null 2>&1 || true"
        for v in topology.VANTAGES
    ]
    for role in CENSOR_ROLES:
        ns = shlex.quote(lab.ns(role))
        applied = scenario if role in targets else None
        lines.append(
            f"ip netns exec {ns} iptables-restore --noflush <<'BP_RULES'\n"
            f"{restore_input(applied, generation)}BP_RULES"
        )
        lines.append(
            f"ip netns exec {ns} ip6tables-restore --noflush <<'BP_RULES'\n"
            f"{restore_input(applied, generation, 'ipv6')}BP_RULES"
        )
        lines.extend(
            f"ip netns exec {ns} tc qdisc del dev {dev} root 2>/dev/null || true"
            for dev in interfaces(role)
        )
        if applied is not None:
            for dev in vantage_interfaces(role):
                for command in applied.tc:
                    tc = command.replace("{dev}", dev)
                    lines.append(f"ip netns exec {ns} tc {tc}")
        lines.append(
            f"ip netns exec {ns} conntrack -F >/dev/null 2>&1 "
            f"|| {{ echo 'conntrack -F failed in {role}' >&2; exit 1; }}"
        )
        lines.append(f"ip netns exec {ns} conntrack -F -f ipv6 >/dev/null 2>&1 || true")
        lines.append(
            f"ip netns exec {ns} sh -c 'for f in /proc/net/xt_recent/*; do "
            '[ -e "$f" ] && echo / > "$f"; done; true\''
        )
    return "\n".join(lines) + "\n"


def _install(lab: Lab, scenario: Scenario | None, targets: Sequence[str]) -> None:
    injector_moves = False
    origins_move: Policy | None = None
    policies: dict[str, Policy] = {}
    for role in CENSOR_ROLES:
        applied = scenario if scenario is not None and role in targets else None
        policy = applied.policy_for(role) if applied else Policy()
        before = _current_policy(lab.state_dir, role)
        injector_moves |= (before.inject, before.rst_inject) != (policy.inject, policy.rst_inject)
        if role == topology.INET and before.web != policy.web:
            origins_move = policy
        write_policy(lab.state_dir, role, policy)
        policies[role] = policy
    if origins_move is not None:
        lab.reload_origins(origins_move)  # nginx renders the web rules; waits for the reload
    _switch_name_servers(lab, policies)
    generation = next_generation(lab.state_dir)
    lab.shell.script(reset_script(lab, scenario, targets, generation), timeout=SCRIPT_TIMEOUT)
    if injector_moves:
        # The on-path injectors poll their policy; wait until they have all seen the new one.
        time.sleep(INJECTOR_POLL_INTERVAL + 0.1)
    for isp in topology.ISPS:
        record = {"id": "clean"}
        if scenario is not None and (isp.name in targets or topology.INET in targets):
            record = {"id": scenario.id, "scope": scenario.scope}
        _write_json(lab.state_dir / "scenario" / f"{isp.name}.json", record)


def _switch_name_servers(lab: Lab, policies: dict[str, Policy]) -> None:
    """Render nsd's zone list and every unbound's censoring; reload what changed and empty every
    resolver's cache (nothing a previous scenario resolved is remembered)."""
    names = NameServers(lab.state_dir)
    inet = policies.get(topology.INET, Policy())
    zones_changed = names.write_nsd(inet.authoritative)
    if zones_changed:
        lab.restart_nsd()
    reload: list[str] = []
    flush: list[str] = []
    for site in resolvers():
        policy = policies.get(site.role, Policy())
        rules = policy.control_resolver if site.name == CONTROL_RESOLVER else policy.resolver
        changed = names.write_unbound(site, rules)
        # A new zone list: forget what the resolvers learnt about nsd (lame zones) as well.
        (reload if changed or zones_changed else flush).append(site.name)
    names.refresh_resolvers(reload, flush)


def _current_policy(state_dir: Path, role: str) -> Policy:
    try:
        return Policy.model_validate_json(policy_path(state_dir, role).read_text())
    except (FileNotFoundError, ValueError):
        return Policy()


def _renamed(rule: str, generation: int) -> str:
    """``rule`` with its hashlimit table renamed for this application (fresh buckets)."""
    return _HASHLIMIT_NAME.sub(lambda m: f"{m[1]}{m[2]}-{generation:x}", rule)


def next_generation(state_dir: Path) -> int:
    path = state_dir / "scenario" / "generation"
    try:
        previous = int(path.read_text())
    except (FileNotFoundError, ValueError):
        previous = 0
    generation = (previous + 1) % 0x1000
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{generation}\n")
    return generation


def _write_json(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data) + "\n")
    os.replace(tmp, path)
