"""JSON columns, and rows that cannot be read: the rules every repository shares.

JSON columns are TEXT written with `json.dumps(sort_keys=True)`. A row that cannot be
decoded (edited by hand, a disk fault) is logged and skipped; it never crashes the service.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar, cast

log = logging.getLogger(__name__)

T = TypeVar("T")


def dumps(value: Any) -> str:
    # sort_keys: the same data is the same text (stable diffs, comparable rows).
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def loads_dict(text: str) -> dict[str, Any]:
    """A JSON object, or ValueError (which `decode` takes for an unreadable row)."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return cast(dict[str, Any], value)


def optional_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def decode(rows: list[sqlite3.Row], build: Callable[[sqlite3.Row], T], what: str) -> list[T]:
    """Decode every row that can be; log and skip the others."""
    out: list[T] = []
    for row in rows:
        try:
            out.append(build(row))
        except (ValueError, TypeError, KeyError) as exc:
            log.error("store: skipping unreadable %s row %s: %s", what, _row_key(row), exc)
    return out


def _row_key(row: sqlite3.Row) -> str:
    keys = row.keys()
    for key in ("id", "name"):
        if key in keys:
            return f"{key}={row[key]!r}"
    return "(" + ", ".join(f"{k}={row[k]!r}" for k in keys if k not in ("data", "payload")) + ")"
