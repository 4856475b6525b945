"""A flow-log generator: AWS VPC flow log records (the default version-2 text format)
between a few made-up applications, put on a stream at a given rate, to watch the
analytics work (``reelay analytics demo``, ``reelay analytics generate``).

The traffic: the internet reaches the edge gateway, which calls playback and search;
playback calls recommendations and profiles; they and search read the data store;
billing reads profiles. Scanners on the internet knock on the data store's and
billing's doors and are rejected (``REJECT``), as is a share of other flows
(``reject``). Each record is one flow of one network interface (its partition key, so
an interface's records stay in order on one shard); its capture window starts up to 10
seconds before it is put. A share (``late``) is delayed by 2 to 5 minutes, as a slow
delivery would be (late for a per-minute window with 30 s of lateness: they land in
the dead-letter stream); a few are ``NODATA`` and ``SKIPDATA`` records.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from reelay.errors import StreamExistsError
from reelay.streams import Put, PutRequest, Streams

__all__ = ["APPLICATIONS", "FLOWS_STREAM", "FlowLogs", "Generated", "generate"]

FLOWS_STREAM = "vpc-flows"
FLOWS_SHARDS = 2
ACCOUNT = "123456789010"
MAX_PUT = 500  # records per put, as PutRecords allows
TICK_S = 0.1  # how often records are put

#: The made-up applications and the networks they own (the example's applications.yaml).
APPLICATIONS: dict[str, list[str]] = {
    "edge-gateway": ["10.0.0.0/24"],
    "playback": ["10.1.0.0/16"],
    "search": ["10.2.0.0/16"],
    "recommendations": ["10.3.0.0/16"],
    "profiles": ["10.4.0.0/16"],
    "billing": ["10.5.0.0/16"],
    "datastore": ["10.10.0.0/16"],
}
_INTERNET = ["52.94.0.0/16", "54.239.0.0/16", "198.51.100.0/24", "203.0.113.0/24"]

# (source, destination, destination port, weight, mean bytes per flow); source
# "internet" is any public address.
_TRAFFIC = (
    ("internet", "edge-gateway", 443, 30, 48_000),
    ("edge-gateway", "playback", 8080, 18, 220_000),
    ("edge-gateway", "search", 8080, 8, 12_000),
    ("playback", "recommendations", 7001, 10, 30_000),
    ("playback", "profiles", 7001, 8, 6_000),
    ("recommendations", "datastore", 9042, 9, 90_000),
    ("profiles", "datastore", 9042, 6, 16_000),
    ("search", "datastore", 9042, 5, 40_000),
    ("billing", "profiles", 7001, 3, 4_000),
)
_SCANS = (
    ("internet", "datastore", 9042),
    ("internet", "billing", 22),
    ("internet", "billing", 3389),
)


@dataclass
class Generated:
    """What a run put: records, of which late, rejected, and NODATA or SKIPDATA."""

    records: int = 0
    late: int = 0
    rejected: int = 0
    nodata: int = 0
    failed: int = 0  # records the stream refused (put again: never counted twice)


@dataclass
class FlowLogs:
    """Makes flow log lines (see the module's docstring); seeded, so a run repeats."""

    seed: int = 0
    late: float = 0.01
    reject: float = 0.02
    nodata: float = 0.005
    _random: random.Random = field(init=False, repr=False)
    _hosts: dict[str, list[str]] = field(init=False, repr=False)
    _enis: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._hosts = {
            app: [
                str(net.network_address + 10 + i)
                for net in map(ipaddress.ip_network, nets)
                for i in range(6)
            ]
            for app, nets in APPLICATIONS.items()
        }
        self._enis = {
            host: f"eni-{self._random.getrandbits(68):017x}"
            for hosts in self._hosts.values()
            for host in hosts
        }

    def _internet(self) -> str:
        net = ipaddress.ip_network(self._random.choice(_INTERNET))
        return str(net.network_address + self._random.randrange(1, net.num_addresses - 1))

    def _address(self, app: str) -> str:
        return self._internet() if app == "internet" else self._random.choice(self._hosts[app])

    def record(self, now: float) -> tuple[str, str, dict[str, bool]]:
        """One record: (partition key, line, what it is: late, rejected, nodata)."""
        r = self._random
        if r.random() < self.nodata:
            host = r.choice([h for hosts in self._hosts.values() for h in hosts])
            start = int(now) - r.randrange(5, 60)
            status = r.choice(("NODATA", "SKIPDATA"))
            line = f"2 {ACCOUNT} {self._enis[host]} - - - - - - - {start} {int(now)} - {status}"
            return self._enis[host], line, {"nodata": True}
        scan = r.random() < self.reject * 0.6
        if scan:
            src_app, dst_app, port = r.choice(_SCANS)
            size = r.randrange(40, 120)
        else:
            weights = [t[3] for t in _TRAFFIC]
            src_app, dst_app, port, _, mean = r.choices(_TRAFFIC, weights)[0]
            size = max(40, int(r.lognormvariate(0, 0.8) * mean))
        rejected = scan or r.random() < self.reject * 0.4
        src, dst = self._address(src_app), self._address(dst_app)
        late = r.random() < self.late
        start = int(now - r.uniform(0, 10) - (r.uniform(120, 300) if late else 0))
        end = start + r.randrange(1, 30)
        packets = max(1, size // r.randrange(500, 1400))
        eni = self._enis.get(dst) or self._enis.get(src) or "eni-0" + "f" * 16
        line = (
            f"2 {ACCOUNT} {eni} {src} {dst} {r.randrange(1024, 65535)} {port} 6 {packets} "
            f"{size} {start} {end} {'REJECT' if rejected else 'ACCEPT'} OK"
        )
        return eni, line, {"late": late, "rejected": rejected}


def ensure_stream(streams: Streams, stream: str, shards: int) -> None:
    """Make ``stream`` with ``shards`` unless it exists."""
    if stream not in streams.list_streams():
        with contextlib.suppress(StreamExistsError):  # made meanwhile by another
            streams.create_stream(stream, shards)


def _put(
    streams: Streams, stream: str, chunk: list[PutRequest], done: Generated, stop: threading.Event
) -> None:
    results = streams.put(stream, chunk)
    retry = [q for q, res in zip(chunk, results, strict=True) if not isinstance(res, Put)]
    done.failed += len(retry)
    while retry and not stop.is_set():  # what the stream refused goes again, in order
        time.sleep(0.05)
        again = streams.put(stream, retry)
        retry = [q for q, res in zip(retry, again, strict=True) if not isinstance(res, Put)]


def generate(
    streams: Streams,
    *,
    stream: str = FLOWS_STREAM,
    rate: float = 200.0,
    duration: float | None = None,
    stop: threading.Event | None = None,
    flows: FlowLogs | None = None,
    shards: int = FLOWS_SHARDS,
    clock: Callable[[], float] = time.time,
    on_put: Callable[[Generated], None] | None = None,
    backfill: float = 0.0,
) -> Generated:
    """Put flow log records on ``stream`` (made with ``shards`` if missing) at ``rate``
    records a second, for ``duration`` seconds or until ``stop`` is set. With
    ``backfill``, first the past ``backfill`` seconds' records at once (so that a
    dashboard has a history to show)."""
    if rate <= 0:
        raise ValueError(f"rate {rate!r} must be more than 0 records a second")
    flows = flows or FlowLogs()
    stop = stop or threading.Event()
    ensure_stream(streams, stream, shards)
    done = Generated()
    past = Generated()
    began_at = clock()
    for second in range(int(backfill)):
        if stop.is_set():
            break
        moment = began_at - int(backfill) + second
        batch = []
        for _ in range(int(rate)):
            key, line, kind = flows.record(moment)
            batch.append(PutRequest(key, line.encode()))
            past.late += kind.get("late", False)
            past.rejected += kind.get("rejected", False)
            past.nodata += kind.get("nodata", False)
        for i in range(0, len(batch), MAX_PUT):
            _put(streams, stream, batch[i : i + MAX_PUT], past, stop)
        past.records += len(batch)
    began = time.monotonic()
    while True:
        elapsed = time.monotonic() - began
        if duration is not None:
            elapsed = min(elapsed, duration)
        now = clock()
        batch = []
        for _ in range(int(rate * elapsed) - done.records):  # the records owed by now
            key, line, kind = flows.record(now)
            batch.append(PutRequest(key, line.encode()))
            done.late += kind.get("late", False)
            done.rejected += kind.get("rejected", False)
            done.nodata += kind.get("nodata", False)
        for i in range(0, len(batch), MAX_PUT):
            _put(streams, stream, batch[i : i + MAX_PUT], done, stop)
        done.records += len(batch)
        if on_put is not None and batch:
            on_put(done)
        if (duration is not None and elapsed >= duration) or stop.wait(TICK_S):
            break
    done.records += past.records
    done.late += past.late
    done.rejected += past.rejected
    done.nodata += past.nodata
    done.failed += past.failed
    return done
