"""Server-side behaviour of the lab, switched by scenarios without restarting anything.

A scenario writes one policy file per namespace role (``inet.json``, ``isp1.json``, ...) into the
lab's state directory; the lab servers re-read the file when its modification time changes. An
absent file means the clean policy. Names match by suffix on label boundaries: a rule for
``twimg.com`` covers ``abs.twimg.com``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from probe.model.base import FrozenModel

DnsAction = Literal["nxdomain", "servfail", "refused", "drop", "answer"]
HttpAction = Literal["blockpage", "redirect", "reset"]
TlsAction = Literal["eof", "alert"]
QuicAction = Literal["drop", "close"]
WebMode = Literal["ok", "http503", "close", "slow"]


class DnsRule(FrozenModel):
    """What a resolver does for names under ``suffix``."""

    suffix: str
    action: DnsAction
    answer: tuple[str, ...] = ()  # for action "answer": the A records to give instead
    delay_ms: int = Field(default=0, ge=0, le=10_000)  # extra delay before answering


class HttpRule(FrozenModel):
    """What an ISP's transparent HTTP proxy does for a Host under ``suffix``."""

    suffix: str
    action: HttpAction


class TlsRule(FrozenModel):
    """What an ISP's transparent TLS proxy does for an SNI under ``suffix``."""

    suffix: str
    action: TlsAction


class QuicRule(FrozenModel):
    """What an ISP's in-path QUIC filter does to a client Initial whose SNI is under ``suffix``:
    drop it, or drop it and answer with a forged CONNECTION_CLOSE."""

    suffix: str
    action: QuicAction


class InjectRule(FrozenModel):
    """On-path DNS injection at an ISP: forge ``answer`` for queries under ``suffix``."""

    suffix: str
    answer: str


class WebRule(FrozenModel):
    """How the platform web servers in inet behave for hosts under ``suffix``."""

    suffix: str
    mode: WebMode
    delay_ms: int = Field(default=0, ge=0, le=30_000)  # for mode "slow": time to first byte


class Policy(FrozenModel):
    """Everything a scenario can switch on the servers of one namespace role."""

    resolver: tuple[DnsRule, ...] = ()  # ISP resolver (isp roles)
    authoritative: tuple[DnsRule, ...] = ()  # the lab's authoritative server (inet)
    control_resolver: tuple[DnsRule, ...] = ()  # the uncensored control resolver (inet)
    http_proxy: tuple[HttpRule, ...] = ()  # ISP transparent proxy, port-80 traffic redirected to it
    tls_proxy: tuple[TlsRule, ...] = ()  # ISP transparent proxy, port-443 traffic redirected to it
    inject: tuple[InjectRule, ...] = ()  # ISP on-path DNS injector
    rst_inject: tuple[str, ...] = ()  # ISP on-path RST injector: SNI suffixes it resets
    quic_filter: tuple[QuicRule, ...] = ()  # ISP in-path QUIC filter (UDP 443 queued to it)
    web: tuple[WebRule, ...] = ()  # platform servers (inet)


def name_matches(name: str, suffix: str) -> bool:
    """True when ``name`` is ``suffix`` or a subdomain of it (case-insensitive, no trailing dot)."""
    name = name.lower().rstrip(".")
    suffix = suffix.lower().rstrip(".")
    return suffix == "*" or name == suffix or name.endswith("." + suffix)


def policy_path(state_dir: Path, role: str) -> Path:
    """Where the policy of namespace role ``role`` is stored."""
    return state_dir / "policy" / f"{role}.json"


def write_policy(state_dir: Path, role: str, policy: Policy) -> None:
    """Atomically replace the policy of ``role`` (write a temporary file, then rename)."""
    path = policy_path(state_dir, role)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(policy.model_dump_json(indent=1))
    os.replace(tmp, path)


class PolicyWatcher:
    """Returns the current policy of one role, re-reading the file only when it changed."""

    def __init__(self, state_dir: Path, role: str) -> None:
        self._path = policy_path(state_dir, role)
        self._stamp: tuple[int, int] | None = None
        self._policy = Policy()

    def current(self) -> Policy:
        """The policy in force now (the clean policy when no file exists)."""
        try:
            st = self._path.stat()
        except FileNotFoundError:
            self._stamp, self._policy = None, Policy()
            return self._policy
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                self._policy = Policy.model_validate(json.loads(self._path.read_text()))
                self._stamp = stamp
            except (OSError, ValueError):
                pass  # a half-seen file: keep the previous policy and try again next time
        return self._policy
