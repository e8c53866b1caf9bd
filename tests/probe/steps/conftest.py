"""Fixtures for the step tests: the anyio backend, a CA, and TLS contexts from trustme."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="blockprobe test CA")


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("pki") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    yield path
