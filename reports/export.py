"""Report exports: JSON, CSV and Parquet of reachability rows or incidents.

JSON keeps the models' shapes. CSV flattens them: ``methods`` as ``name:count`` pairs joined by
``;``, lists joined by ``;``, times in ISO 8601 UTC, null as an empty field. Parquet keeps types:
timestamps in UTC, ``methods`` as a map, lists as lists.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

Format = Literal["json", "csv", "parquet"]


def records(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [item.model_dump() for item in items]


def to_json(items: Sequence[BaseModel], meta: dict[str, Any] | None = None) -> str:
    """``{"v": 1, ...meta, "result": [...]}``, as OONI's aggregation API wraps its results."""
    body = {"v": 1, **(meta or {}), "result": [item.model_dump(mode="json") for item in items]}
    return json.dumps(body, indent=1)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return ";".join(f"{k}:{v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_csv(items: Sequence[BaseModel], model: type[BaseModel]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(model.model_fields))
    for row in records(items):
        writer.writerow([_cell(row[name]) for name in model.model_fields])
    return out.getvalue()


def to_parquet(items: Sequence[BaseModel], model: type[BaseModel], path: Path | io.BytesIO) -> None:
    """Write a Parquet file (pyarrow); the schema follows the model's fields."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = records(items)
    columns: dict[str, Any] = {}
    for name in model.model_fields:
        values = [row[name] for row in rows]
        if any(isinstance(v, dict) for v in values):
            columns[name] = pa.array(
                [list(v.items()) for v in values], type=pa.map_(pa.string(), pa.int64())
            )
        elif any(isinstance(v, tuple) for v in values):
            columns[name] = pa.array([list(v) for v in values], type=pa.list_(pa.string()))
        elif any(isinstance(v, datetime) for v in values):
            columns[name] = pa.array(values, type=pa.timestamp("s", tz="UTC"))
        else:
            columns[name] = pa.array(values)
    pq.write_table(pa.table(columns), path)
