"""Lookups are pluggable: a package that names a `LookupKind` under the entry-point
group ``reelay.analytics.lookups`` (the guard app's inventory, one day) is found, its
keys validated with the rest of the file, and its lookup enriches rows."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelay.analytics.fold import ShardState, SourceRecord, fold
from reelay.analytics.lookups import lookup_kinds
from reelay.analytics.spec import parse_aggregates
from reelay.errors import AggregatesError

INVENTORY = """
from reelay.analytics.lookups import LookupKind

def build(spec, where, problems, base):
    owners = spec.get("owners")
    if not isinstance(owners, dict):
        problems.add(f"{where}.owners", f"{owners!r} is not valid: a mapping of addresses to owners")
        return None
    return lambda value: owners.get(value)

inventory = LookupKind("instances to their owners, from an inventory", ("owners",), build)
"""


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    site = tmp_path / "site"
    (site / "inventory_kind").mkdir(parents=True)
    (site / "inventory_kind" / "__init__.py").write_text(textwrap.dedent(INVENTORY))
    info = site / "inventory_kind-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: inventory-kind\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[reelay.analytics.lookups]\ninventory = inventory_kind:inventory\n"
    )
    monkeypatch.syspath_prepend(str(site))
    lookup_kinds.cache_clear()
    yield
    monkeypatch.undo()
    sys.modules.pop("inventory_kind", None)
    lookup_kinds.cache_clear()


def aggregate(tmp_path: Path, enrich: dict[str, object]) -> object:
    doc = {
        "aggregates": {
            "owned": {
                "stream": "s",
                "time": "t",
                "window": 60,
                "enrich": [enrich],
                "groupBy": ["owner"],
                "metrics": {"n": "count"},
            }
        }
    }
    return parse_aggregates(doc, source="a.yaml", base=tmp_path).aggregates["owned"]


def test_an_installed_lookup_kind_enriches_rows(tmp_path: Path, inventory: None) -> None:
    assert lookup_kinds().names() == ["cidr", "inventory"]
    assert lookup_kinds().owner("inventory") == "inventory_kind"
    agg = aggregate(
        tmp_path,
        {
            "lookup": "inventory",
            "owners": {"i-1": "web"},
            "fields": {"host": "owner"},
            "default": "?",
        },
    )
    rows = [{"t": 1, "host": "i-1"}, {"t": 2, "host": "i-2"}]
    records = [SourceRecord(i, "k", json.dumps(r).encode(), 0) for i, r in enumerate(rows)]
    folded = fold(agg, ShardState(), records, lambda start: None)  # type: ignore[arg-type]
    (window,) = folded.windows.values()
    assert sorted(window.groups) == [("?",), ("web",)]


def test_its_keys_are_validated_with_the_file(tmp_path: Path, inventory: None) -> None:
    with pytest.raises(AggregatesError) as caught:
        aggregate(
            tmp_path,
            {"lookup": "inventory", "owners": [], "colour": 1, "fields": {"host": "owner"}},
        )
    assert caught.value.problems == [
        "a.yaml: aggregates.owned.enrich[0].colour: unknown key 'colour'; valid keys: default, fields, lookup, owners",
        "a.yaml: aggregates.owned.enrich[0].owners: [] is not valid: a mapping of addresses to owners",
    ]
