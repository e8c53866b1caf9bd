"""Report parameters checked the same way by the API and the CLI: a clear error, never a trace.

Country codes are taken in any case (``pk`` is ``PK``). A platform must be one the probe ships a
file for, or one with data in this collector; an unknown one is refused with the known ones.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import Connection, select

from collectors.rollup_tables import report_cells
from reports.model import Grain, ReportQuery


class BadParameter(Exception):
    """A report parameter that does not validate; ``detail`` says which and why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def country_code(value: str | None) -> str | None:
    """The country code upper-cased; BadParameter unless two letters."""
    if value is None:
        return None
    code = value.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise BadParameter(f"country: {value!r} is not a two-letter country code (e.g. PK)")
    return code


def build_query(
    platform: str | None,
    country: str | None,
    asn: int | None,
    since: datetime | None,
    until: datetime | None,
    bucket: Grain,
) -> ReportQuery:
    """The validated query, or ``BadParameter`` saying which parameter is wrong."""
    try:
        return ReportQuery.window(
            since=_utc(since),
            until=_utc(until),
            bucket=bucket,
            platform=platform.strip().lower() if platform else None,
            country=country_code(country),
            asn=asn,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "query"
        raise BadParameter(f"{where}: {first['msg']}") from exc


def shipped_platforms() -> set[str]:
    """The platforms the probe ships files for."""
    from probe.platforms import BUILTIN_DIR

    return {path.stem for path in BUILTIN_DIR.glob("*.toml")}


def known_platforms(conn: Connection) -> list[str]:
    """Shipped platforms and every platform with data here, sorted."""
    c = report_cells.c
    seen = conn.execute(select(c.platform).where(c.grain == "day").distinct()).scalars()
    return sorted(shipped_platforms() | set(seen))


def check_platform(conn: Connection, platform: str | None) -> None:
    """BadParameter when ``platform`` is neither shipped nor in the data, naming the known ones."""
    if platform is None or platform in shipped_platforms():
        return
    c = report_cells.c
    found = conn.execute(
        select(c.platform).where(c.grain == "day", c.platform == platform).limit(1)
    ).first()
    if found is None:
        known = ", ".join(known_platforms(conn))
        raise BadParameter(f"platform: unknown platform {platform!r}; known: {known}")
