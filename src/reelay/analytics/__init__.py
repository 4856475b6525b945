"""Analytics that show up within a second: streams turned into continuously updated
aggregates, queried with SQL.

An aggregate (declared in YAML: `reelay.analytics.spec`) reads one stream in one
record format (`reelay.analytics.formats`: JSON, AWS VPC flow logs, CloudWatch Logs
subscription messages), adds fields by lookups (`reelay.analytics.lookups`: which
application owns an address), and folds the rows into event-time windows (tumbling
or hopping) per group: sums, counts, minima, maxima, approximate distinct counts and
quantiles (`reelay.analytics.sketches`). A watermark per shard, with an allowed
lateness, closes windows; late rows go to a dead-letter stream (`reelay.analytics.fold`).

The folding is a stream-triggered function (`reelay.analytics.handler.aggregate`):
each batch's partial aggregates are in the State when it returns, exactly once in
effect (`reelay.analytics.store`), so a query sees a record as soon as its batch is
done. Queries are SQL through DuckDB (`run_query`; ``reelay query``; ``POST
/api/analytics/query``), each aggregate a table of window_start, window_end, its
dimensions and its metrics.

The app is a plugin (`reelay.analytics._plugin`); ``reelay analytics demo`` runs
Netflix's example end to end: generated VPC flow logs (`reelay.analytics.generator`)
aggregated per minute by source and destination application.
"""

from __future__ import annotations

from reelay.analytics.lookups import AddressMap, Lookup, LookupKind, load_applications
from reelay.analytics.query import QueryResult, run_query
from reelay.analytics.sketches import DDSketch, HyperLogLog
from reelay.analytics.spec import Aggregate, Aggregates, load_aggregates, parse_aggregates
from reelay.analytics.store import Results

__all__ = [
    "AddressMap",
    "Aggregate",
    "Aggregates",
    "DDSketch",
    "HyperLogLog",
    "Lookup",
    "LookupKind",
    "QueryResult",
    "Results",
    "load_aggregates",
    "load_applications",
    "parse_aggregates",
    "run_query",
]
