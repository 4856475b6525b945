"""Aggregates files are validated completely before anything runs: every problem is
named with the file, the key path, the bad value and the valid choices, all at once;
so are applications files (addresses to application names)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from reelay.analytics.generator import APPLICATIONS
from reelay.analytics.lookups import load_applications
from reelay.analytics.spec import load_aggregates
from reelay.cli import main
from reelay.errors import AggregatesError

FLOWS = Path(__file__).parents[2] / "src" / "reelay" / "analytics" / "flows"
GOOD = {
    "stream": "vpc-flows",
    "format": "vpc-flow-log",
    "window": {"size": "1m"},
    "groupBy": ["srcaddr"],
    "metrics": {"bytes": {"sum": "bytes"}},
}


def problems(
    tmp_path: Path, aggregate: dict[str, object] | None = None, **doc: object
) -> list[str]:
    path = tmp_path / "analytics.yaml"
    body = doc or {"aggregates": {"flows": aggregate}}
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(AggregatesError) as caught:
        load_aggregates(path)
    assert all(p.startswith(f"{path}: ") for p in caught.value.problems)
    return [p[len(f"{path}: ") :] for p in caught.value.problems]


def test_the_example_aggregates_and_applications_are_valid() -> None:
    found = load_aggregates(FLOWS / "analytics.yaml")
    assert sorted(found.aggregates) == ["flows_by_app", "functions", "rejects", "talkers"]
    flows = found.aggregates["flows_by_app"]
    assert flows.dimensions == ("src_app", "dst_app")
    assert [m.name for m in flows.metrics] == ["bytes", "packets", "flows", "rejected"]
    assert flows.window.size == flows.window.hop == 60 and flows.lateness == 30
    assert flows.dead_letter == "vpc-flows-late" and flows.horizon == 6 * 3600
    assert found.aggregates["rejects"].window.hop == 60
    assert found.aggregates["rejects"].window.size == 300
    # the generator's made-up applications are the ones the example maps
    assert load_applications(FLOWS / "applications.yaml").networks == {
        cidr: app for app, cidrs in APPLICATIONS.items() for cidr in cidrs
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"format": "csv"},
            "aggregates.flows.format: 'csv' is not valid; valid choices: cloudwatch-logs, json, vpc-flow-log",
        ),
        ({"stream": "no spaces"}, "aggregates.flows.stream: stream name 'no spaces' is not valid"),
        (
            {"window": {"size": "1x"}},
            "aggregates.flows.window.size: '1x' is not valid: a duration from 1s to 1d",
        ),
        (
            {"window": {"size": "1m", "hop": "2m"}},
            "aggregates.flows.window.hop: '2m' is longer than the window",
        ),
        (
            {"window": {"size": "1h", "hop": "1s"}},
            "aggregates.flows.window.hop: '1s' puts each row in 3600 windows: at most 100",
        ),
        (
            {"window": {"size": 1.5}},
            "aggregates.flows.window.size: 1.5 is not valid: whole seconds",
        ),
        (
            {"window": {"size": "1m", "slide": "1m"}},
            "aggregates.flows.window.slide: unknown key 'slide'; valid keys: hop, size",
        ),
        (
            {"watermark": {"lateness": "-5s"}},
            "aggregates.flows.watermark.lateness: '-5s' is not valid",
        ),
        (
            {"watermark": {"delay": "5s"}},
            "aggregates.flows.watermark.delay: unknown key 'delay'; valid keys: lateness",
        ),
        (
            {"groupBy": ["account-id"]},
            "aggregates.flows.groupBy[0]: unknown field 'account-id'; valid fields: version, account_id",
        ),
        (
            {"groupBy": ["srcaddr", "srcaddr"]},
            "aggregates.flows.groupBy[1]: 'srcaddr' is listed twice",
        ),
        (
            {"time": "action"},
            "aggregates.flows.time.field: 'action' is text, not a number; number fields: version, srcport",
        ),
        (
            {"time": {"field": "start", "unit": "minutes"}},
            "aggregates.flows.time.unit: 'minutes' is not valid; valid choices: s, ms, us, ns",
        ),
        (
            {"where": {"action": {"is": "REJECT"}}},
            "aggregates.flows.where.action: {'is': 'REJECT'} is not valid: the one operator is 'not'",
        ),
        ({"where": {"colour": "red"}}, "aggregates.flows.where.colour: unknown field 'colour'"),
        (
            {"metrics": {"bytes": {"total": "bytes"}}},
            "aggregates.flows.metrics.bytes: {'total': 'bytes'} is not valid: a mapping with exactly one of count, distinct, max, min, quantile, sum",
        ),
        (
            {"metrics": {"b": {"sum": "action"}}},
            "aggregates.flows.metrics.b.sum: 'action' is text, not a number",
        ),
        (
            {"metrics": {"p": {"quantile": "bytes"}}},
            "aggregates.flows.metrics.p.q: None is not valid: the quantile, from 0 to 1",
        ),
        (
            {"metrics": {"p": {"quantile": "bytes", "q": 95}}},
            "aggregates.flows.metrics.p.q: 95 is not valid",
        ),
        (
            {"metrics": {"p": {"quantile": "bytes", "q": 0.9, "accuracy": 0.5}}},
            "aggregates.flows.metrics.p.accuracy: 0.5 is not valid: a relative accuracy from 0.0001 to 0.1",
        ),
        (
            {"metrics": {"d": {"distinct": "srcaddr", "precision": 20}}},
            "aggregates.flows.metrics.d.precision: 20 is not valid: an integer from 4 to 16",
        ),
        (
            {"metrics": {"d": {"sum": "bytes", "q": 0.5}}},
            "aggregates.flows.metrics.d.q: unknown key 'q'; valid keys: sum, where",
        ),
        (
            {"metrics": {"window_start": "count"}},
            "aggregates.flows.metrics.window_start: metric name 'window_start' is a column every aggregate has",
        ),
        (
            {"metrics": {"srcaddr": "count"}},
            "aggregates.flows.metrics.srcaddr: 'srcaddr' is also groupBy srcaddr: rename it",
        ),
        (
            {"metrics": {"2fast": "count"}},
            "aggregates.flows.metrics.2fast: metric name '2fast' is not valid: 1 to 63 letters",
        ),
        ({"metrics": None}, "aggregates.flows.metrics: is missing"),
        (
            {"deadLetter": "vpc-flows"},
            "aggregates.flows.deadLetter: 'vpc-flows' is the source stream",
        ),
        (
            {"horizon": "30s"},
            "aggregates.flows.horizon: '30s' is shorter than a window and its lateness (1m)",
        ),
        (
            {"enrich": [{"lookup": "dns", "fields": {"srcaddr": "host"}}]},
            "aggregates.flows.enrich[0].lookup: unknown lookup kind 'dns'; valid kinds: cidr",
        ),
        (
            {
                "enrich": [
                    {
                        "lookup": "cidr",
                        "applications": {"a": ["10.0.0.0/8"]},
                        "fields": {"srcaddr": "src-app"},
                    }
                ]
            },
            "aggregates.flows.enrich[0].fields.srcaddr: field written 'src-app' is not valid",
        ),
        (
            {"enrich": [{"lookup": "cidr", "fields": {"srcaddr": "app"}}]},
            "aggregates.flows.enrich[0]: a cidr lookup needs exactly one of 'file'",
        ),
        (
            {"enrich": [{"lookup": "cidr", "file": "none.yaml", "fields": {"srcaddr": "app"}}]},
            "aggregates.flows.enrich[0].file: ",
        ),
        (
            {
                "enrich": [
                    {
                        "lookup": "cidr",
                        "applications": {"a": ["10.0.0.1/8"]},
                        "fields": {"srcaddr": "app"},
                    }
                ]
            },
            "aggregates.flows.enrich[0].applications.a[0]: '10.0.0.1/8' is not a CIDR (10.1.0.0/16) or an address (10.9.0.17): 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?",
        ),
        ({"description": ["x"]}, "aggregates.flows.description: must be text"),
        (
            {"colour": "red"},
            "aggregates.flows.colour: unknown key 'colour'; valid keys: deadLetter, description, enrich",
        ),
    ],
)
def test_each_problem_is_named(tmp_path: Path, change: dict[str, object], expected: str) -> None:
    body = {**GOOD, **change}
    if "metrics" in change and change["metrics"] is None:
        del body["metrics"]
    found = problems(tmp_path, body)
    assert any(expected in p for p in found), found


def test_every_problem_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "stream": "vpc-flows",
            "format": "vpc-flow-log",
            "window": {"size": "forever"},
            "groupBy": ["nope"],
            "metrics": {"bytes": {"sum": "action"}, "x": {"quantile": "bytes", "q": 2}},
            "watermark": {"lateness": "soon"},
        },
    )
    assert len(found) == 5, found
    for where in (
        "window.size",
        "groupBy[0]",
        "metrics.bytes.sum",
        "metrics.x.q",
        "watermark.lateness",
    ):
        assert any(p.startswith(f"aggregates.flows.{where}: ") for p in found), (where, found)


def test_a_json_aggregate_takes_any_field_and_names_are_sql_names(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "aggregates": {
                    "clicks": {
                        "stream": "clicks",
                        "time": {"field": "ts", "unit": "ms"},
                        "window": 10,
                        "groupBy": ["page.path"],
                        "metrics": {"clicks": "count"},
                    }
                }
            }
        )
    )
    with pytest.raises(AggregatesError) as caught:  # a dotted field is no column name
        load_aggregates(path)
    assert "groupBy[0]: dimension 'page.path' is not valid" in str(caught.value)
    assert problems(tmp_path, aggregates={"Flows": GOOD, "flows": GOOD}) == [
        "aggregates.flows: 'flows' and 'Flows' are one name to SQL: rename one"
    ]
    assert problems(tmp_path, nope=1) == [
        "aggregates: the file must be a mapping with 'aggregates': a mapping of names to aggregates"
    ]


def test_applications_files(tmp_path: Path) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(
        "applications:\n  web: [10.0.0.0/16, 10.9.0.17]\n  db: [10.0.5.0/24, 2001:db8::/32]\n"
    )
    found = load_applications(path)
    assert found("10.0.1.2") == "web" and found("10.0.5.9") == "db"  # the longest prefix
    assert found("10.9.0.17") == "web" and found("10.9.0.18") is None
    assert found("2001:db8::1") == "db" and found("-") is None and found(None) is None
    path.write_text(
        "applications:\n  web: [10.0.0.0/33]\n  db: 10.0.0.0/16\n  other: [10.0.0.0/16]\n"
        "  none: []\nextra: 1\n"
    )
    with pytest.raises(AggregatesError) as caught:
        load_applications(path)
    text = "\n".join(caught.value.problems)
    assert f"{path}: extra: unknown key 'extra'; valid keys: applications" in text
    assert f"{path}: applications.web[0]: '10.0.0.0/33' is not a CIDR" in text
    assert (
        f"{path}: applications.other[0]: 10.0.0.0/16 is claimed twice: by 'db' and by 'other'"
        in text
    )
    assert f"{path}: applications.none: [] is not valid: a list of CIDRs or addresses" in text


def test_reelay_validate_checks_both_kinds(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", "--kind", "aggregates", str(FLOWS / "analytics.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "4 aggregates: flows_by_app: vpc-flows (vpc-flow-log), tumbling 1m windows" in ok.output
    ok = runner.invoke(
        main, ["validate", "--kind", "applications", str(FLOWS / "applications.yaml")]
    )
    assert ok.exit_code == 0 and "7 applications on 7 networks" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "aggregates:\n  x: {stream: s, window: 1m, metrics: {n: {count: '*', where: []}}}\n"
    )
    refused = runner.invoke(main, ["validate", "--kind", "aggregates", str(bad)])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert f"error: {bad}: aggregates.x.metrics.n.where: must map fields" in refused.output
