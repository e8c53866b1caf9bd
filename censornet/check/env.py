"""What a probe needs to measure inside the lab, as flat ``BLOCKPROBE_*`` string facts.

``blockprobe lab env --json`` prints them and ``blockprobe lab check`` sets them in the probe
command's environment. This is a stable interface (docs/lab-check.md): names are only ever added,
never renamed or repurposed; ``BLOCKPROBE_LAB_ENV_VERSION`` changes only if one ever must be.
Lists are comma-separated, so each fact is also a usable environment variable.
"""

from __future__ import annotations

import tomllib

from censornet import topology
from censornet.lab import LAB_PROBE_CONFIG, Lab
from probe.platforms import BUILTIN_DIR, load_platform

ENV_VERSION = "1"
PLATFORM = "x"


def platform_endpoints(platform: str = PLATFORM) -> tuple[str, ...]:
    """The endpoint URLs a probe measures for ``platform`` (the shipped platform file's)."""
    return tuple(e.url for e in load_platform(BUILTIN_DIR / f"{platform}.toml").endpoints)


def canaries() -> tuple[str, ...]:
    """Benign sites on the same paths (the lab probe config's canaries)."""
    data = tomllib.loads(LAB_PROBE_CONFIG.read_text(encoding="utf-8"))
    return tuple(str(url) for url in data.get("canaries", ()))


def lab_env(lab: Lab, vantage: str = "v1a") -> dict[str, str]:
    """The facts for a probe at ``vantage`` (raises KeyError for an unknown vantage point)."""
    point = topology.vantage(vantage)
    resolver = topology.isp(point.isp).resolver if point.isp else topology.CONTROL_RESOLVER_IP
    return {
        "BLOCKPROBE_LAB_ENV_VERSION": ENV_VERSION,
        "BLOCKPROBE_LAB_PREFIX": lab.prefix,
        "BLOCKPROBE_LAB_STATE": str(lab.state_dir),
        "BLOCKPROBE_VANTAGE": vantage,
        "BLOCKPROBE_ISP": point.isp or "none",
        "BLOCKPROBE_RESOLVER": resolver,
        "BLOCKPROBE_CONTROL_RESOLVER": f"udp:{topology.CONTROL_RESOLVER_IP}",
        "BLOCKPROBE_CONTROL_DOH": f"{topology.CONTROL_DOH_URL}#{topology.CONTROL_RESOLVER_IP}",
        "BLOCKPROBE_CA_FILE": str(lab.ca_file),
        "BLOCKPROBE_HELPER_URL": lab.helper_url,
        "BLOCKPROBE_PLATFORM": PLATFORM,
        "BLOCKPROBE_ENDPOINTS": ",".join(platform_endpoints()),
        "BLOCKPROBE_CANARIES": ",".join(canaries()),
        "BLOCKPROBE_PROBE_CONFIG": str(LAB_PROBE_CONFIG),
    }
