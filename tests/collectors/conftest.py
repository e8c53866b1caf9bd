"""Fixtures: an in-process collector (SQLite in a temporary directory) and an httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from collectors.config import CollectorSettings
from reports.app import create_app
from tests.collectors.factories import TOKEN

ADMIN = "admin-secret"


@pytest.fixture
def settings(tmp_path: Path) -> CollectorSettings:
    return CollectorSettings(
        data_dir=tmp_path / "collector",
        admin_token=SecretStr(ADMIN),
        enroll_tokens=(SecretStr(TOKEN),),
    )


@pytest.fixture
def app(settings: CollectorSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as c:
        yield c
