"""Observing a reelay home: metrics read from its durable state, and alert rules on them.

`metrics` turns the state database into Prometheus metrics and into the live snapshot
the dashboard draws; `alerts` evaluates YAML rules on that snapshot and on the event
log, and fires to webhooks. Both only read the state, so they run beside any runtime.
"""
