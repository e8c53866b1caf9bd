"""What the control vantage may measure: only endpoints of configured platforms and canaries.

A collector or helper can never make a probe (or itself) fetch an arbitrary URL: a URL is allowed
when its host is one of the configured platforms' domains (or a subdomain) or a canary's host.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from probe.config import load_config
from probe.flows.plan import MeasureSettings
from probe.platforms import host_of, within


def load_helper(config_path: Path | None) -> tuple[MeasureSettings, Callable[[str], bool]]:
    """Settings and allow-list of a helper from a probe config (``BLOCKPROBE_CA_FILE`` honoured)."""
    config = load_config(config_path)
    ca_file = os.environ.get("BLOCKPROBE_CA_FILE")
    if ca_file:
        config = config.with_ca_file(Path(ca_file))
    domains = tuple(d for p in config.load_platforms().values() for d in p.domains)
    canary_hosts = tuple(host_of(url) for url in config.canaries)
    allowed_domains = domains + canary_hosts

    def allowed(url: str) -> bool:
        try:
            return within(host_of(url), allowed_domains)
        except ValueError:
            return False

    return config.to_settings(), allowed
