"""Collector settings: one typed object, read from ``BLOCKPROBE_COLLECTOR_*`` or given in tests.

Secrets have no default: without an admin token the admin API is off. Enrolment needs a token or
an administrator's approval by default (``enroll_policy="approval"``, ``collectors.enrolment``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CollectorSettings(BaseSettings):
    """Everything a collector process needs; several processes may share one database."""

    model_config = SettingsConfigDict(env_prefix="BLOCKPROBE_COLLECTOR_", frozen=True)

    data_dir: Path = Path("collector-data")
    database_url: str | None = None  # default: SQLite file in data_dir
    admin_token: SecretStr | None = None
    enroll_policy: Literal["approval", "token", "open"] = "approval"
    enroll_tokens: tuple[SecretStr, ...] = ()
    max_bundle_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)  # every route but the bundle route
    rate_limit_per_minute: float = Field(default=600.0, gt=0)  # bundles per key, all workers
    rate_limit_burst: int = Field(default=120, gt=0)
    enroll_per_minute: float = Field(default=60.0, gt=0)  # enrolment requests, all workers
    auth_failures_per_minute: float = Field(default=600.0, gt=0)  # 401/403, all workers
    max_bundle_age_days: float = Field(default=90.0, gt=0)  # oldest time a bundle may hold
    max_clock_skew_seconds: float = Field(default=900.0, ge=0)  # newest: the clock plus this
    log_origin: str = "blockprobe.collector/log"
    log_key_file: Path | None = None  # default: data_dir/log-key.pem

    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'collector.db'}"

    def log_key_path(self) -> Path:
        return self.log_key_file or self.data_dir / "log-key.pem"
