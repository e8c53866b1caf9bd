"""The helper's HTTP API: ``POST /api/v1/control`` measures one allowed endpoint with the web flow.

Only endpoints of configured platforms and canaries are measured: the caller supplies ``allowed``
(built from the helper's config), and every URL of a request must pass it, else 403 with the reason.
The helper's own address never appears in what it returns (observations hold remote addresses only).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, HTTPException

from probe.flows.plan import MeasureSettings
from probe.flows.web import measure_endpoint
from probe.helper.request import CONTROL_PATH, ControlRequest
from probe.model.measurement import Observations

__all__ = ["CONTROL_PATH", "ControlRequest", "create_app"]


def create_app(settings: MeasureSettings, allowed: Callable[[str], bool]) -> FastAPI:
    """The helper app measuring with ``settings``, for URLs ``allowed`` accepts."""
    app = FastAPI(title="blockprobe control vantage", docs_url=None, redoc_url=None)

    @app.post(CONTROL_PATH)
    async def control(request: ControlRequest) -> Observations:
        urls = [request.url, request.throughput_url, request.upload_url]
        for url in filter(None, urls):
            if not allowed(url):
                raise HTTPException(
                    status_code=403,
                    detail=f"{url} is not an endpoint of a configured platform or canary",
                )
        return await measure_endpoint(
            request.plan(), settings, with_throughput=request.with_throughput
        )

    return app
