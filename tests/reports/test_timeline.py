"""The dashboard's timeline from ``report_series`` equals the one from every run of the window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from collectors.store import Store
from reports.incidents import window_runs
from reports.model import ReportQuery
from reports.timeline import Network, bucket_state, bucket_tip, from_runs, from_series
from tests.reports.test_fast_paths import HOURS, T0, load_random


def _view(networks: list[Network]) -> list[object]:
    return [
        (
            net.country,
            net.asn,
            net.name,
            net.runs,
            {at: (bucket_state(t), bucket_tip(t), t.runs, t.down) for at, t in net.buckets.items()},
            (bucket_state(net.latest), bucket_tip(net.latest)),
        )
        for net in networks
    ]


@pytest.mark.parametrize("bucket", [300, 900, 3600, 3 * 3600])
def test_series_timeline_equals_the_runs(sqlite_engine: Engine, bucket: int) -> None:
    load_random(Store(sqlite_engine), 5)
    since = T0 + timedelta(minutes=37, seconds=11)  # not on a bucket's edge
    until = T0 + timedelta(hours=HOURS - 3, minutes=8)
    for query in (
        ReportQuery(since=since, until=until),
        ReportQuery(since=since, until=until, platform="x"),
        ReportQuery(since=since, until=until, country="PK"),
    ):
        with sqlite_engine.connect() as conn:
            start, stop = since.timestamp(), until.timestamp()
            located = [x for x in window_runs(conn, query) if x[2].started >= start]
            if query.platform:
                located = [x for x in located if x[2].platform == query.platform]
            want = _view(from_runs(located, bucket))
            got = _view(from_series(conn, query, start, stop, bucket))
        assert got == want
        assert want
