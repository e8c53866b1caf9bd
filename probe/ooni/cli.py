"""``blockprobe ooni analyse FILE|DIR``: our classifier on OONI Web Connectivity measurements.

Prints one row per measurement (input, network, OONI's ``blocking``/``accessible``, our verdict
and method, agreement) and a summary of agreements by category; ``--json`` prints one document
with the verdict contract's fields per measurement (plus an ``ooni`` object) and the summary.
Measurements of one report are analysed together unless ``--one-by-one``; ``--compare`` runs
both ways and lists the verdicts that change. Exit status 2 when the input cannot be read.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from probe.model.result import EndpointResult
from probe.ooni.analyse import Row, analyse, load
from probe.ooni.reader import ReadError, read

EXIT_USAGE = 2
PIPE_WIDTH = 160  # columns of the table when stdout is not a terminal (a file, a pager)
AGREEMENTS = ("agree", "other layer", "disagree")

app = typer.Typer(help="Read OONI measurements and judge them with blockprobe's classifier.")


def _ooni_word(row: Row) -> str:
    blocking, accessible = row.item.ooni.blocking, row.item.ooni.accessible
    return f"{json.dumps(blocking)}/{json.dumps(accessible)}"


def result_of(row: Row) -> dict[str, Any]:
    """One measurement as the verdict contract's endpoint result, with an ``ooni`` object."""
    item, verdict = row.item, row.verdict
    result = EndpointResult(
        platform=item.plan.platform,
        target=item.plan.url,
        domain=item.plan.domain,
        verdict=verdict.kind,
        method=verdict.method,
        confidence=verdict.confidence,
        evidence=verdict.evidence,
        throughput=verdict.throughput,
        measurement_id=item.measurement_id,
    ).model_dump(mode="json")
    result["ooni"] = {
        "source": item.source,
        "report_id": item.report_id or None,
        "probe_cc": item.country,
        "probe_asn": item.asn,
        "test_version": item.test_version,
        "blocking": item.ooni.blocking,
        "accessible": item.ooni.accessible,
        "control_failure": item.control_failure,
        "category": row.category,
        "agreement": row.agreement,
        "grouped_with": row.peers,
    }
    return result


def summary_of(rows: tuple[Row, ...]) -> dict[str, dict[str, int]]:
    """Per category (and in all): how many measurements, and how many of each agreement."""
    table: dict[str, Counter[str]] = {}
    for row in rows:
        for key in (row.category, "all"):
            table.setdefault(key, Counter())[row.agreement] += 1
    return {
        key: {"measurements": sum(counts.values()), **{a: counts[a] for a in AGREEMENTS}}
        for key, counts in sorted(table.items(), key=lambda kv: (kv[0] == "all", kv[0]))
    }


def changes(one: tuple[Row, ...], grouped: tuple[Row, ...]) -> list[tuple[Row, Row]]:
    """The measurements whose verdict or method differs between the two analyses."""
    return [
        (a, b)
        for a, b in zip(one, grouped, strict=True)
        if (a.verdict.kind, a.verdict.method) != (b.verdict.kind, b.verdict.method)
    ]


def _render(rows: tuple[Row, ...], console: Console) -> None:
    table = Table(show_lines=False)
    for column in ("input", "network", "OONI blocking/accessible", "ours", "agreement"):
        table.add_column(column, overflow="fold")
    for row in rows:
        item, v = row.item, row.verdict
        ours = f"{v.kind} {v.method or ''} ({v.confidence:.2f})"
        network = " ".join(x for x in (item.country, item.asn) if x)
        table.add_row(item.plan.url, network, _ooni_word(row), ours, row.agreement)
    console.print(table)
    summary = Table(title="agreement with OONI by category")
    for column in ("category", "measurements", *AGREEMENTS):
        summary.add_column(column)
    for key, counts in summary_of(rows).items():
        summary.add_row(key, *(str(counts[c]) for c in ("measurements", *AGREEMENTS)))
    console.print(summary)


@app.command("analyse")
def analyse_command(
    path: Path = typer.Argument(..., help="An OONI measurement file (JSON, JSONL) or a folder."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
    one_by_one: bool = typer.Option(
        False, "--one-by-one", help="Judge each measurement alone, not with its report's others."
    ),
    compare: bool = typer.Option(
        False, "--compare", help="Also list the verdicts that differ between the two ways."
    ),
) -> None:
    """Judge OONI Web Connectivity measurements with blockprobe's classifier."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    started = time.perf_counter()
    skipped: list[str] = []
    try:
        items, errors = load(read(path, skipped))
    except ReadError as exc:
        typer.echo(f"blockprobe ooni analyse: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    rows = analyse(items, grouped=not one_by_one)
    other = analyse(items, grouped=one_by_one) if compare else None
    seconds = time.perf_counter() - started
    changed = (changes(rows, other) if one_by_one else changes(other, rows)) if other else []
    if json_output:
        document: dict[str, Any] = {
            "source": str(path),
            "grouped": not one_by_one,
            "seconds": round(seconds, 3),
            "results": [result_of(r) for r in rows],
            "summary": summary_of(rows),
            "errors": errors,
            "skipped": skipped,
        }
        if other is not None:
            document["changed"] = [
                {
                    "measurement_id": a.item.measurement_id,
                    "one_by_one": [a.verdict.kind, a.verdict.method],
                    "grouped": [b.verdict.kind, b.verdict.method],
                }
                for a, b in changed
            ]
        sys.stdout.write(json.dumps(document) + "\n")
        return
    _render(rows, Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH))
    for line in (*errors, *skipped):
        err.print(f"skipped {line}", markup=False)
    if other is not None:
        err.print(
            f"{len(changed)} of {len(rows)} verdicts differ between one-by-one and grouped",
            markup=False,
        )
        for a, b in changed:
            err.print(
                f"  {a.item.source}: {a.verdict.kind} {a.verdict.method} one by one, "
                f"{b.verdict.kind} {b.verdict.method} grouped",
                markup=False,
            )
    err.print(f"{len(rows)} measurements in {seconds:.2f} s", markup=False)
