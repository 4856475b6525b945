"""Queries with SQL through DuckDB: `reelay query` (a table, or --json; bad SQL is a
clear error and a non-zero exit, never a traceback) and ``POST /api/analytics/query``
(DuckDB's message in a 400, never a 500); only reads run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from reelay.analytics.fold import SourceRecord
from reelay.analytics.spec import parse_aggregates
from reelay.analytics.store import Results
from reelay.cli import main
from reelay.client import Client
from reelay.config import Settings
from reelay.web import Server, create_app, ensure_token

REFUSED = [
    ("SELEC 1", 'Parser Error: syntax error at or near "SELEC"'),
    ("SELECT nope FROM clicks", 'Binder Error: Referenced column "nope" not found'),
    ("SELECT * FROM missing", "Catalog Error: Table with name missing does not exist"),
    (
        "DROP TABLE clicks",
        "only reads run here (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN); this is a DROP statement",
    ),
    ("INSERT INTO clicks VALUES (1)", "this is a INSERT statement"),
    ("ATTACH '/tmp/x.db'", "this is a ATTACH statement"),
    ("COPY clicks TO '/tmp/out.csv'", "this is a COPY statement"),
    (
        "SELECT * FROM read_csv('/etc/passwd')",
        "file system operations are disabled by configuration",
    ),
    ("SELECT 1; SELECT 2", "2 statements: give one at a time"),
    ("  ", "no SQL given"),
]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with the results of an aggregate ``clicks`` (two windows, two pages)."""
    aggregates = parse_aggregates(
        {
            "aggregates": {
                "clicks": {
                    "stream": "clicks",
                    "time": "t",
                    "window": "1m",
                    "groupBy": ["page"],
                    "metrics": {
                        "n": "count",
                        "ms": {"sum": "ms"},
                        "p50": {"quantile": "ms", "q": 0.5},
                    },
                }
            }
        },
        base=tmp_path,
    )
    rows = [(0, "/a", 10), (1, "/a", 30), (2, "/b", 5), (61, "/a", 7)]
    records = [
        SourceRecord(i, "k", json.dumps({"t": t, "page": p, "ms": ms}).encode(), 0)
        for i, (t, p, ms) in enumerate(rows)
    ]
    with Client(Settings.load(tmp_path / "home")) as client:
        Results(client.state).apply(
            aggregates.aggregates["clicks"], "shardId-0", records, client.streams
        )
    return tmp_path / "home"


def cli(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_reelay_query_prints_a_table_or_json(home: Path) -> None:
    sql = "SELECT window_start, page, n, ms FROM clicks ORDER BY window_start, page"
    shown = cli("query", "--home", str(home), sql)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["window_start", "page", "n", "ms"]
    assert lines[1].split() == ["1970-01-01", "00:00:00", "/a", "2", "40"]
    assert lines[3].split() == ["1970-01-01", "00:01:00", "/a", "1", "7"]
    assert "(3 rows)" in shown.stderr
    as_json = cli("query", "--home", str(home), "--json", sql)
    assert json.loads(as_json.stdout)[0] == {
        "window_start": "1970-01-01T00:00:00", "page": "/a", "n": 2, "ms": 40,
    }  # fmt: skip
    limited = cli("query", "--home", str(home), "--limit", "1", sql)
    assert len(limited.stdout.splitlines()) == 2 and "more were left out" in limited.stderr
    described = cli("query", "--home", str(home), "--json", "DESCRIBE clicks")
    columns = [(c["column_name"], c["column_type"]) for c in json.loads(described.stdout)]
    assert columns == [
        ("window_start", "TIMESTAMP"), ("window_end", "TIMESTAMP"), ("page", "VARCHAR"),
        ("n", "BIGINT"), ("ms", "BIGINT"), ("p50", "DOUBLE"),
    ]  # fmt: skip


@pytest.mark.parametrize(("sql", "message"), REFUSED)
def test_reelay_query_refuses_clearly(home: Path, sql: str, message: str) -> None:
    result = cli("query", "--home", str(home), sql)
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and message in result.output
    assert "Traceback" not in result.output


def test_reelay_query_of_no_home(tmp_path: Path) -> None:
    result = cli("query", "--home", str(tmp_path / "nowhere"), "SELECT 1")
    assert result.exit_code == 1 and "no reelay home at" in result.output


@pytest.fixture
def served(home: Path) -> Iterator[httpx.Client]:
    with Client(Settings.load(home)) as client:
        token, _ = ensure_token(home)
        with (
            Server(create_app(client, token), port=0) as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as http,
        ):
            yield http


def test_the_query_route(served: httpx.Client) -> None:
    sql = "SELECT page, sum(n) AS n, max(p50) AS p50 FROM clicks GROUP BY page ORDER BY page"
    answer = served.post("/api/analytics/query", json={"sql": sql})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["columns"] == ["page", "n", "p50"]
    assert body["types"] == ["VARCHAR", "HUGEINT", "DOUBLE"]
    assert [row[:2] for row in body["rows"]] == [["/a", 3], ["/b", 1]]
    assert abs(body["rows"][0][2] - 10) <= 0.1 and body["truncated"] is False
    limited = served.post("/api/analytics/query", json={"sql": "SELECT * FROM clicks", "limit": 2})
    assert len(limited.json()["rows"]) == 2 and limited.json()["truncated"] is True
    tables = served.post("/api/analytics/query", json={"sql": "SHOW TABLES"}).json()
    assert tables["rows"] == [["clicks"]]
    listed = served.get("/api/analytics/aggregates").json()
    assert [a["name"] for a in listed] == ["clicks"]
    assert listed[0]["records"] == 4 and listed[0]["windows"] == [0, 60]


@pytest.mark.parametrize(("sql", "message"), REFUSED[:-1])
def test_the_query_route_refuses_with_duckdbs_message(
    served: httpx.Client, sql: str, message: str
) -> None:
    answer = served.post("/api/analytics/query", json={"sql": sql})
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]


def test_the_query_route_checks_its_body(served: httpx.Client) -> None:
    assert served.post("/api/analytics/query", json={}).status_code == 422
    assert served.post("/api/analytics/query", json={"sql": "SELECT 1", "x": 1}).status_code == 422
    assert (
        served.post("/api/analytics/query", json={"sql": "SELECT 1", "limit": 0}).status_code == 422
    )
    assert (
        served.post(
            "/api/analytics/query", content=b"{", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        served.post(
            "/api/analytics/query", content=b"SELECT 1", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert served.get("/api/analytics/query").status_code == 405
