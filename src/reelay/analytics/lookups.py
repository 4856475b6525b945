"""Enrichment lookups: a field's value (an address) to a name (the application that
owns it), pluggable by kind.

An aggregate's ``enrich:`` entry names its lookup kind and what it reads and writes::

    enrich:
      - lookup: cidr                  # the kind
        file: applications.yaml       # the kind's own keys
        fields: {srcaddr: src_app, dstaddr: dst_app}
        default: unknown              # when nothing matches (else null)

reelay has the kind ``cidr``: addresses or networks (IPv4 and IPv6 CIDRs) to
application names, from a small YAML file the user supplies (`load_applications`;
``reelay validate --kind applications FILE``) or written inline under
``applications:``; the longest matching prefix wins. Other kinds come from installed
packages, under the entry-point group ``reelay.analytics.lookups`` (the guard app's
inventory, say): each names a `LookupKind`, which checks its own keys and builds the
`Lookup` where the aggregating function runs.

An applications file::

    applications:
      playback-api: [10.1.0.0/16]
      recommendations: [10.2.0.0/16, 10.9.0.17]
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from reelay._yamlfile import Problems, read_yaml
from reelay.errors import AggregatesError
from reelay.plugins import Registry, load_entry_point

__all__ = [
    "CIDR",
    "LOOKUP_GROUP",
    "AddressMap",
    "Lookup",
    "LookupKind",
    "load_applications",
    "lookup_kinds",
    "parse_applications",
]

LOOKUP_GROUP = "reelay.analytics.lookups"
_CACHE = 65536  # addresses remembered per map (flow logs repeat the same ones)


class Lookup(Protocol):
    """A value (an address, say) to a name, or None when nothing matches."""

    def __call__(self, value: Any) -> str | None: ...


@dataclass(frozen=True)
class LookupKind:
    """A kind of lookup an ``enrich:`` entry may name.

    ``keys``: its own keys in the entry (beside ``lookup``, ``fields`` and ``default``);
    ``build(spec, where, problems, base)`` checks them, adding every problem at
    ``where`` (or below it) to ``problems``, and returns the lookup (None when there
    were problems). ``base`` is the directory that relative file names resolve in.
    """

    about: str
    keys: tuple[str, ...]
    build: Callable[[Mapping[str, Any], str, Problems, Path], Lookup | None]


class AddressMap:
    """Addresses and networks to names; the longest matching prefix wins."""

    def __init__(self, networks: Mapping[str, str]) -> None:
        """``networks``: CIDR (or a single address) to name, already checked."""
        self.networks = dict(networks)
        self._by_length: dict[int, list[tuple[int, dict[int, str]]]] = {4: [], 6: []}
        tables: dict[tuple[int, int], dict[int, str]] = {}
        for cidr, name in self.networks.items():
            net = ipaddress.ip_network(cidr)
            tables.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = name
        for (version, length), table in sorted(tables.items(), key=lambda kv: -kv[0][1]):
            bits = 32 if version == 4 else 128
            mask = ((1 << length) - 1) << (bits - length)
            self._by_length[version].append((mask, table))
        self._seen: dict[str, str | None] = {}

    def __call__(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        try:
            return self._seen[value]
        except KeyError:
            pass
        found = self._find(value)
        if len(self._seen) >= _CACHE:
            self._seen.clear()
        self._seen[value] = found
        return found

    def _find(self, value: str) -> str | None:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return None  # "-" in a flow log, or not an address
        number = int(address)
        for mask, table in self._by_length[address.version]:
            name = table.get(number & mask)
            if name is not None:
                return name
        return None


def parse_applications(doc: Any, problems: Problems, where: str = "") -> AddressMap | None:
    """An ``applications:`` mapping (application name to a list of CIDRs or addresses)
    as an `AddressMap`, adding every problem to ``problems``."""
    at = f"{where}.applications" if where else "applications"
    if not isinstance(doc, dict) or not doc:
        problems.add(
            at,
            "must map application names to lists of CIDRs or addresses, such as "
            "{playback-api: [10.1.0.0/16, 10.9.0.17]}",
        )
        return None
    owners: dict[str, str] = {}
    ok = True
    for name, cidrs in doc.items():
        here = f"{at}.{name}"
        if not isinstance(name, str) or not name.strip():
            problems.add(here, f"application name {name!r} must be non-empty text")
            ok = False
            continue
        if isinstance(cidrs, str):
            cidrs = [cidrs]
        if not isinstance(cidrs, list) or not cidrs:
            problems.add(here, f"{cidrs!r} is not valid: a list of CIDRs or addresses")
            ok = False
            continue
        for i, cidr in enumerate(cidrs):
            spot = f"{here}[{i}]"
            try:
                net = ipaddress.ip_network(str(cidr), strict=True)
            except ValueError as exc:
                ok = False
                hint = ""
                with contextlib.suppress(ValueError):  # not even a network: no hint
                    hint = f"; did you mean {ipaddress.ip_network(str(cidr), strict=False)}?"
                problems.add(
                    spot,
                    f"{cidr!r} is not a CIDR (10.1.0.0/16) or an address (10.9.0.17): {exc}{hint}",
                )
                continue
            key = str(net)
            if key in owners and owners[key] != name:
                ok = False
                problems.add(spot, f"{key} is claimed twice: by {owners[key]!r} and by {name!r}")
                continue
            owners[key] = name
    return AddressMap(owners) if ok else None


def load_applications(path: Path) -> AddressMap:
    """An applications file (see the module's docstring); `AggregatesError` lists every
    problem in it."""
    doc = read_yaml(path, AggregatesError)
    problems = Problems(str(path))
    if not isinstance(doc, dict):
        problems.add("", "the file must be a mapping with an 'applications' key")
        raise AggregatesError(problems.items)
    problems.unknown_keys("", doc, ("applications",))
    found = parse_applications(doc.get("applications"), problems)
    if problems.items or found is None:
        raise AggregatesError(problems.items)
    return found


def _cidr(spec: Mapping[str, Any], where: str, problems: Problems, base: Path) -> Lookup | None:
    has_file, has_inline = "file" in spec, "applications" in spec
    if has_file == has_inline:
        problems.add(
            where,
            "a cidr lookup needs exactly one of 'file' (an applications file) and "
            "'applications' (the mapping itself)",
        )
        return None
    if has_inline:
        return parse_applications(spec["applications"], problems, where)
    name = spec["file"]
    if not isinstance(name, str) or not name:
        problems.add(f"{where}.file", f"{name!r} is not valid: name an applications file")
        return None
    path = Path(name) if Path(name).is_absolute() else base / name
    try:
        return load_applications(path)
    except AggregatesError as exc:
        for problem in exc.problems:
            problems.add(f"{where}.file", problem)
        return None


#: The built-in kind: CIDRs and addresses to application names.
CIDR = LookupKind(
    "addresses to application names by CIDR (an applications file, or the mapping inline)",
    ("applications", "file"),
    _cidr,
)


@functools.cache
def lookup_kinds() -> Registry[LookupKind]:
    """The lookup kinds: reelay's (``cidr``), then those installed packages name under
    the entry-point group ``reelay.analytics.lookups``."""
    registry: Registry[LookupKind] = Registry("lookup kind")
    registry.register("cidr", CIDR, by="reelay")
    for point in sorted(entry_points(group=LOOKUP_GROUP), key=lambda p: p.name):
        kind = load_entry_point(point, LookupKind, "lookup kind")
        registry.register(point.name, kind, by=point.value.split(":")[0])
    return registry
