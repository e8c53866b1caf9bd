"""What a probe sends the helper: the control path and the request body (no web framework)."""

from __future__ import annotations

import urllib.parse

from pydantic import Field

from probe.flows.plan import EndpointPlan
from probe.model.base import FrozenModel

CONTROL_PATH = "/api/v1/control"
_URL = r"^https?://[^/\s]+"


class ControlRequest(FrozenModel):
    """What a probe asks the helper to measure."""

    url: str = Field(pattern=_URL)
    platform: str = Field(min_length=1)
    with_throughput: bool = False
    throughput_url: str | None = Field(default=None, pattern=_URL)
    upload_url: str | None = Field(default=None, pattern=_URL)
    platform_domains: tuple[str, ...] = ()
    http3: bool = False  # measure HTTP/3 over QUIC too (an endpoint the platform marks http3)

    def plan(self) -> EndpointPlan:
        """The endpoint plan the helper follows for this request."""
        domain = urllib.parse.urlsplit(self.url).hostname or ""
        return EndpointPlan(
            platform=self.platform,
            url=self.url,
            domain=domain,
            platform_domains=self.platform_domains or (domain,),
            throughput_url=self.throughput_url,
            upload_url=self.upload_url,
            http3=self.http3,
        )
