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
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

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


def arrow_type(annotation: Any) -> Any:
    """The Arrow type of a model field's annotation (None allowed in every column)."""
    import pyarrow as pa

    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin in (Union, UnionType) and len(args) == 1:
        return arrow_type(args[0])
    if origin is Literal or annotation is str:
        return pa.string()
    if annotation is bool:
        return pa.bool_()
    if annotation is int:
        return pa.int64()
    if annotation is float:
        return pa.float64()
    if annotation is datetime:
        return pa.timestamp("us", tz="UTC")
    if origin is dict:
        return pa.map_(pa.string(), pa.int64())
    if origin is tuple:
        return pa.list_(pa.string())
    raise TypeError(f"no Parquet type for {annotation!r}")


def to_parquet(items: Sequence[BaseModel], model: type[BaseModel], path: Path | io.BytesIO) -> None:
    """Write a Parquet file (pyarrow); every column typed from the model, whatever the rows hold.

    A column whose values are all null (``ended_at`` when every incident is ongoing) keeps its
    type.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = records(items)
    fields = [(name, arrow_type(f.annotation)) for name, f in model.model_fields.items()]
    columns: dict[str, Any] = {}
    for name, kind in fields:
        values = [row[name] for row in rows]
        if isinstance(kind, pa.MapType):
            values = [None if v is None else list(v.items()) for v in values]
        elif isinstance(kind, pa.ListType):
            values = [None if v is None else list(v) for v in values]
        columns[name] = pa.array(values, type=kind)
    schema = pa.schema([pa.field(name, kind) for name, kind in fields])
    pq.write_table(pa.table(columns, schema=schema), path)
