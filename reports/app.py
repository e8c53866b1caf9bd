"""The collector as it is served: the collector's own routes, and the reports' on top.

The report API, the evidence pages and the feeds only read the collector's tables; the collector
does not import them. ``blockprobe collector serve`` serves this app, and ``blockprobe report
evidence`` opens it in-process on a data directory.
"""

from __future__ import annotations

from fastapi import FastAPI

from collectors.app import create_app as create_collector_app
from collectors.config import CollectorSettings
from reports.api import router as reports_router
from reports.evidence_api import router as evidence_router
from reports.feed import router as feed_router


def create_app(settings: CollectorSettings | None = None) -> FastAPI:
    """The collector app over the database ``settings`` names, with the report routes added."""
    app = create_collector_app(settings)
    app.include_router(reports_router)
    app.include_router(evidence_router)
    app.include_router(feed_router)
    return app
