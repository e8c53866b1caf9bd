"""The probe's side of the control vantage: ask the helper to measure an endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pydantic

from probe.flows.plan import EndpointPlan
from probe.helper.request import CONTROL_PATH, ControlRequest
from probe.model.measurement import Observations
from probe.net.tlsclient import client_context


async def ask_control(
    helper_url: str,
    plan: EndpointPlan,
    *,
    with_throughput: bool,
    ca_file: Path | None,
    timeout: float,  # noqa: ASYNC109 - the contract's name; applied below with asyncio.timeout
    transport: httpx.AsyncBaseTransport | None = None,
) -> Observations | None:
    """The helper's observations of ``plan``'s endpoint, or None on any failure (never raises).

    ``helper_url`` is the helper's base URL (or the full control URL); ``transport`` lets tests
    call an app in-process.
    """
    url = helper_url if helper_url.endswith(CONTROL_PATH) else helper_url.rstrip("/") + CONTROL_PATH
    request = ControlRequest(
        url=plan.url,
        platform=plan.platform,
        with_throughput=with_throughput,
        throughput_url=plan.throughput_url,
        upload_url=plan.upload_url,
        platform_domains=plan.platform_domains,
        http3=plan.http3,
    )
    try:
        verify = client_context(ca_file)
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(verify=verify, timeout=timeout, transport=transport) as client,
        ):
            # Defaults left out: a helper that predates a field still takes the request.
            body = request.model_dump(mode="json", exclude_defaults=True)
            reply = await client.post(url, json=body)
        if reply.status_code != 200:
            return None
        return Observations.model_validate_json(reply.content)
    except (OSError, httpx.HTTPError, pydantic.ValidationError, ValueError):
        return None
