"""Our classifier on OONI's test set: agreement with OONI by set and category, time, grouping.

Reads ``../shared/ooni/data`` in place (or ``--data``), analyses every measurement as
``blockprobe ooni analyse`` does, and prints: agreement with OONI's result by set (QA scenarios
of OONI's emulated censor, real measurements) and by category (DNS, TCP, TLS, HTTP, control
failure, clean, down, unknown); the time to read and analyse the whole set (median of
``--runs``); how many verdicts change between one-by-one and grouped-by-report analysis.

    .venv/bin/python bench/bench_ooni.py [--runs 5] [--data ../shared/ooni/data]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probe.ooni.analyse import Row, analyse, load  # noqa: E402
from probe.ooni.reader import read  # noqa: E402

QA = "minipipeline/generated/"


def _set_of(row: Row) -> str:
    return "QA" if QA in row.item.source else "real"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "ooni" / "data")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: not found (the OONI test set lives in ../shared/ooni)")
    seconds = []
    for _ in range(args.runs):
        started = time.perf_counter()
        items, errors = load(read(args.data, []))
        grouped = analyse(items, grouped=True)
        seconds.append(time.perf_counter() - started)
    alone = analyse(items, grouped=False)
    table: dict[tuple[str, str], Counter[str]] = {}
    for row in grouped:
        for key in ((_set_of(row), row.category), (_set_of(row), "all"), ("all", "all")):
            table.setdefault(key, Counter())[row.agreement] += 1
    print(f"{'set':5} {'category':16} {'n':>3} {'agree':>6} {'other layer':>12} {'disagree':>9}")
    for (kind, category), counts in sorted(table.items()):
        n = sum(counts.values())
        print(
            f"{kind:5} {category:16} {n:3} {counts['agree']:6} {counts['other layer']:12} "
            f"{counts['disagree']:9}   same outcome {100 * (n - counts['disagree']) / n:.0f}%"
        )
    reports = Counter(r.item.report_id for r in grouped if r.item.report_id)
    shared = sum(1 for n in reports.values() if n > 1)
    changed = [
        a.item.source
        for a, b in zip(alone, grouped, strict=True)
        if (a.verdict.kind, a.verdict.method) != (b.verdict.kind, b.verdict.method)
    ]
    print(
        f"\n{len(grouped)} measurements ({len(errors)} unreadable), {len(reports)} report ids, "
        f"{shared} shared by more than one measurement"
    )
    print(
        f"read + analyse the whole set: median {statistics.median(seconds) * 1000:.0f} ms, "
        f"min {min(seconds) * 1000:.0f} ms over {args.runs} runs "
        f"({statistics.median(seconds) / len(grouped) * 1000:.1f} ms per measurement)"
    )
    print(f"verdicts that change between one-by-one and grouped: {len(changed)} of {len(grouped)}")
    for source in changed:
        print(f"  {source}")


if __name__ == "__main__":
    main()
