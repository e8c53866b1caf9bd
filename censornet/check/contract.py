"""Reading a probe's output as the verdict contract: one JSON document, or JSON lines.

Accepted shapes: the document ``blockprobe run --json`` prints (``{"results": [...]}``), a JSON
array of results, or JSON lines where each line is one result or one such document. A result needs
``target`` (a URL, or null for a platform summary, which is skipped), ``verdict`` and ``method``
(null allowed). Anything else is a ContractError saying where.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_SHOWN = 80


class ContractError(ValueError):
    """The probe's output is not the verdict contract; the message says where and why."""


@dataclass(frozen=True)
class ProbeResult:
    """One endpoint's answer from the probe under test."""

    target: str
    verdict: str
    method: str | None
    evidence: tuple[str, ...] = ()


def parse_output(text: str) -> list[ProbeResult]:
    """The endpoint results in ``text`` (platform summaries dropped), in output order."""
    stripped = text.strip()
    if not stripped:
        raise ContractError("no output on stdout (expected JSON: one document or JSON lines)")
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        records = [
            (f"line {number}", _line(number, line))
            for number, line in enumerate(stripped.splitlines(), start=1)
            if line.strip()
        ]
    else:
        records = [("output", whole)]
    results: list[ProbeResult] = []
    seen: set[str] = set()
    for where, record in records:
        for result in _results(where, record):
            if result is None:
                continue
            if result.target in seen:
                raise ContractError(f"{where}: target {result.target!r} reported twice")
            seen.add(result.target)
            results.append(result)
    return results


def _line(number: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ContractError(f"line {number}: not JSON ({exc.msg}): {_shown(line)}") from None


def _results(where: str, record: Any) -> list[ProbeResult | None]:
    if isinstance(record, list):
        return [_result(f"{where}[{i}]", item) for i, item in enumerate(record)]
    if isinstance(record, dict) and "results" in record:
        items = record["results"]
        if not isinstance(items, list):
            raise ContractError(f"{where}: 'results' must be a list")
        return [_result(f"{where}: results[{i}]", item) for i, item in enumerate(items)]
    return [_result(where, record)]


def _result(where: str, item: Any) -> ProbeResult | None:
    if not isinstance(item, dict):
        raise ContractError(f"{where}: a result must be a JSON object, not {_shown(item)}")
    for key in ("target", "verdict"):
        if key not in item:
            raise ContractError(f"{where}: result has no {key!r}: {_shown(item)}")
    target, verdict, method = item["target"], item["verdict"], item.get("method")
    if target is None:
        return None
    if not isinstance(target, str) or not target:
        raise ContractError(f"{where}: 'target' must be a URL string, not {_shown(target)}")
    if not isinstance(verdict, str):
        raise ContractError(f"{where}: 'verdict' must be a string, not {_shown(verdict)}")
    if method is not None and not isinstance(method, str):
        raise ContractError(f"{where}: 'method' must be a string or null, not {_shown(method)}")
    evidence = item.get("evidence") or []
    if not isinstance(evidence, list):
        evidence = [evidence]
    return ProbeResult(target, verdict, method, tuple(str(e) for e in evidence))


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."
