"""The flow-log generator: real version-2 records between the example's applications,
with rejects, NODATA/SKIPDATA and late ones in their shares; ``reelay analytics
generate`` puts them at the rate asked, and ``status`` says what a home holds."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from click.testing import CliRunner

from reelay.analytics.formats import parse_vpc_flow_log
from reelay.analytics.generator import APPLICATIONS, FlowLogs
from reelay.cli import main
from reelay.client import Client
from reelay.config import Settings
from reelay.streams import Position

NETWORKS = [ipaddress.ip_network(c) for cidrs in APPLICATIONS.values() for c in cidrs]


def test_generated_records_are_flow_logs_of_the_example() -> None:
    flows = FlowLogs(seed=1, late=0.1, reject=0.2, nodata=0.05)
    now = 1_700_000_000.0
    made = [flows.record(now) for _ in range(4000)]
    rows = [row for _, line, _ in made for row in parse_vpc_flow_log(line.encode())]
    assert len(rows) == 4000
    ok = [r for r in rows if r["log_status"] == "OK"]
    assert 0.03 < 1 - len(ok) / len(rows) < 0.07  # NODATA and SKIPDATA
    assert {r["log_status"] for r in rows} == {"OK", "NODATA", "SKIPDATA"}
    assert 0.15 < sum(r["action"] == "REJECT" for r in ok) / len(ok) < 0.25
    late = [r for r in ok if r["start"] < now - 60]
    assert 0.07 < len(late) / len(ok) < 0.13 and all(r["start"] >= now - 311 for r in late)
    for r in ok:  # every flow has a side inside one of the applications' networks
        inside = [ipaddress.ip_address(r[k]) in n for k in ("srcaddr", "dstaddr") for n in NETWORKS]
        assert any(inside), r
        assert r["end"] > r["start"] and r["bytes"] >= 40 and r["packets"] >= 1
    again = FlowLogs(seed=1, late=0.1, reject=0.2, nodata=0.05)  # seeded: the same again
    assert [line for _, line, _ in made] == [again.record(now)[1] for _ in range(4000)]


def test_reelay_analytics_generate_and_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runner = CliRunner()
    empty = runner.invoke(
        main,
        [
            "analytics",
            "generate",
            "--home",
            str(home),
            "--rate",
            "100",
            "--duration",
            "1",
            "--backfill",
            "0.05",
        ],
    )
    assert empty.exit_code == 0, empty.output
    assert "put 400 records" in empty.stderr  # 3 s of the past, then 1 s live
    with Client(Settings.load(home)) as client:
        shards = client.streams.describe("vpc-flows").shards
        assert len(shards) == 2
        count = 0
        for shard in shards:
            cursor = client.streams.locate("vpc-flows", shard.shard_id, Position("TRIM_HORIZON"))
            count += len(client.streams.read("vpc-flows", shard.shard_id, cursor).records)
        assert count == 400
        client.state.get_meta("x")  # a home with a state, and no results
    status = runner.invoke(main, ["analytics", "status", "--home", str(home)])
    assert status.exit_code == 0 and "no aggregate has results in this home yet" in status.stderr
    bad = runner.invoke(main, ["analytics", "generate", "--home", str(home), "--rate", "0"])
    assert bad.exit_code == 2 and "--rate" in bad.output
