"""Queries: every aggregate is a table, queried with SQL through DuckDB.

A table has ``window_start`` and ``window_end`` (TIMESTAMP, UTC), the aggregate's
``groupBy`` dimensions, then its metrics, finalized: counts, sums, mins and maxes
exactly, distinct counts estimated (HyperLogLog) and quantiles within their relative
accuracy (DDSketch). A row is a window and a group, every shard's partials merged; the
windows still open are there too, as they stand. Each query builds its tables afresh
from the stored results, in a DuckDB of its own, in memory.

Only reads run: one statement, a SELECT (``WITH``, ``DESCRIBE``, ``SHOW TABLES`` and
``SUMMARIZE`` are reads too) or an EXPLAIN; DuckDB is opened with external access off
and its configuration locked, so no statement reads or writes a file, attaches a
database or loads an extension. SQL that DuckDB refuses raises `QueryError` with
DuckDB's own message; so does a query that runs past its time limit.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reelay.analytics.store import AggregateInfo, Results
from reelay.errors import QueryError

if TYPE_CHECKING:
    import duckdb

__all__ = ["DEFAULT_TIMEOUT_S", "QueryResult", "columns_of", "run_query"]

DEFAULT_TIMEOUT_S = 30.0
_CONFIG: dict[str, str | int | float | list[str]] = {
    "enable_external_access": False,
    "lock_configuration": True,
    "threads": 2,
    "memory_limit": "1GB",
}
_READS = ("SELECT", "EXPLAIN")


@dataclass(frozen=True)
class QueryResult:
    """What a query answered: column names and DuckDB types, and rows of JSON values
    (times in ISO 8601); ``truncated`` when there were more rows than the limit."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool = False

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def columns_of(info: AggregateInfo) -> list[tuple[str, str]]:
    """An aggregate's table columns as (name, SQL type), before its rows are seen
    (a dimension's type is VARCHAR until its values say otherwise)."""
    out = [("window_start", "TIMESTAMP"), ("window_end", "TIMESTAMP")]
    out += [(d, "VARCHAR") for d in info.dimensions]
    for m in info.metrics:
        kind = {"count": "BIGINT", "distinct": "BIGINT", "quantile": "DOUBLE"}.get(m.kind, "DOUBLE")
        out.append((m.name, kind))
    return out


def _column_type(values: list[Any], fallback: str) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return fallback
    if all(isinstance(v, bool) for v in present):
        return "BOOLEAN"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "BIGINT" if all(-(2**63) <= v < 2**63 for v in present) else "HUGEINT"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "DOUBLE"
    return "VARCHAR"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _load(con: duckdb.DuckDBPyConnection, results: Results, info: AggregateInfo) -> None:
    rows = results.rows(info)
    declared = columns_of(info)
    width = len(declared)
    cells = [[r.start, r.end, *r.group, *r.values] for r in rows]
    types = []
    for i, (_, fallback) in enumerate(declared):
        if i < 2:
            types.append("BIGINT")  # epoch seconds, made TIMESTAMPs below
            continue
        found = _column_type([c[i] for c in cells], fallback)
        if found == "VARCHAR":
            for c in cells:
                if c[i] is not None and not isinstance(c[i], str):
                    c[i] = str(c[i]).lower() if isinstance(c[i], bool) else str(c[i])
        elif found == "DOUBLE":
            for c in cells:
                if isinstance(c[i], float) and not math.isfinite(c[i]):
                    c[i] = None
        types.append(found)
    table_types = ["TIMESTAMP", "TIMESTAMP", *types[2:]]
    con.execute(
        f"CREATE TABLE {_quote(info.name)} ("
        + ", ".join(f"{_quote(n)} {t}" for (n, _), t in zip(declared, table_types, strict=True))
        + ")"
    )
    if not cells:
        return
    structure = json.dumps([{f"c{i}": t for i, t in enumerate(types)}])
    select = ", ".join(
        f"make_timestamp(c{i} * 1000000)" if i < 2 else f"c{i}" for i in range(width)
    )
    body = json.dumps([{f"c{i}": v for i, v in enumerate(c)} for c in cells])
    con.execute(
        f"INSERT INTO {_quote(info.name)} SELECT {select} "
        "FROM (SELECT unnest(from_json(?::JSON, ?), recursive := true))",
        [body, structure],
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def run_query(
    results: Results,
    sql: str,
    *,
    limit: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> QueryResult:
    """Run one read-only SQL statement over the aggregates' tables (see the module's
    docstring); at most ``limit`` rows come back."""
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("no SQL given: write a SELECT over the aggregates' tables")
    con = duckdb.connect(":memory:", config=dict(_CONFIG))
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        if len(statements) != 1:
            raise QueryError(
                f"{len(statements)} statements: give one at a time"
                if statements
                else "no statement in the SQL given"
            )
        kind = statements[0].type.name
        if kind not in _READS:
            raise QueryError(
                f"only reads run here (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN); "
                f"this is a {kind} statement"
            )
        aggregates = results.aggregates()
        try:
            named = {n.lower() for n in con.get_table_names(sql)}
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        wanted = [i for n, i in aggregates.items() if n.lower() in named] or list(
            aggregates.values()
        )
        for info in wanted:
            _load(con, results, info)
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            cursor = con.execute(sql)
            description = cursor.description or []
            fetched = cursor.fetchmany(limit + 1) if limit is not None else cursor.fetchall()
        except duckdb.InterruptException:
            raise QueryError(
                f"the query ran past its limit of {timeout_s:g} s and was stopped"
            ) from None
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        finally:
            timer.cancel()
        truncated = limit is not None and len(fetched) > limit
        rows = [[_jsonable(v) for v in row] for row in fetched[:limit]]
        return QueryResult(
            [str(d[0]) for d in description],
            [str(d[1]) for d in description],
            rows,
            truncated,
        )
    finally:
        con.close()
