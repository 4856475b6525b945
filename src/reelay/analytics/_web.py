"""The analytics app's HTTP API routes, added to the server by its plugin
(`reelay.analytics._plugin`): SQL over the aggregates (``POST /api/analytics/query``)
and the aggregates themselves (``GET /api/analytics/aggregates``)."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from reelay.analytics._observe import AnalyticsObserver, summary
from reelay.analytics.query import run_query
from reelay.analytics.store import Results
from reelay.client import Client
from reelay.plugins import Observer
from reelay.web._openapi import errors

MAX_ROWS = 100_000


class QueryRequest(BaseModel):
    """One read-only SQL statement over the aggregates' tables."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(
        min_length=1,
        max_length=100_000,
        description="A SELECT (or WITH, DESCRIBE, SHOW TABLES, SUMMARIZE, EXPLAIN) in "
        "DuckDB's SQL; each aggregate is a table of window_start, window_end, its "
        "dimensions and its metrics, such as SELECT * FROM flows_by_app ORDER BY "
        "window_start DESC LIMIT 10.",
        examples=["SHOW TABLES"],
    )
    limit: int = Field(10_000, ge=1, le=MAX_ROWS, description="At most this many rows.")


class QueryAnswer(BaseModel):
    columns: list[str]
    types: list[str] = Field(description="DuckDB's type of each column.")
    rows: list[list[Any]] = Field(description="Times as ISO 8601 text (UTC).")
    truncated: bool = Field(description="There were more rows than the limit.")


def add_routes(api: FastAPI, client: Client, observer: Observer | None) -> None:
    """Add the analytics routes over ``client``'s home to ``api`` (reading through the
    server's `AnalyticsObserver`, whose decoded partials the queries share)."""
    results = observer.results if isinstance(observer, AnalyticsObserver) else Results(client.state)
    tags: list[str | Enum] = ["analytics"]

    @api.post("/api/analytics/query", tags=tags, responses=errors(400))
    async def query(request: QueryRequest) -> QueryAnswer:
        """Run SQL over the aggregates (read-only: DuckDB's message for SQL it refuses,
        and for a statement that is not a read, comes back as a 400)."""
        found = await asyncio.to_thread(run_query, results, request.sql, limit=request.limit)
        return QueryAnswer(
            columns=found.columns, types=found.types, rows=found.rows, truncated=found.truncated
        )

    @api.get("/api/analytics/aggregates", tags=tags)
    async def aggregates() -> list[dict[str, Any]]:
        """Every aggregate with results here: what it is, its shards' watermark and
        counters, and its newest windows."""

        def read() -> list[dict[str, Any]]:
            return [summary(results, info) for info in results.aggregates().values()]

        return await asyncio.to_thread(read)
