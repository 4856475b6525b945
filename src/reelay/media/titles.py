"""Titles as operators see them: each upload's state and progress, and its task timeline.

Everything here is read from the event log (the pipeline's state-change and outcome
events), the invocations that ran for a title, and its report in the store. Nothing
here writes, so the dashboard and the API can show a title while it is being made.
"""

from __future__ import annotations

import json
from typing import Any

from reelay.client import Client
from reelay.errors import NoSuchKeyError
from reelay.events import encode_s3_key
from reelay.media.config import SOURCE, Title
from reelay.runtime.state import State

STATE_CHANGE = "Media Title State Change"
OUTCOMES = {
    "Media Title Published": "published",
    "Media Title Held": "held",
    "Media Title Rejected": "rejected",
    "Media Title Failed": "failed",
}
STATES = ("processing", *OUTCOMES.values())

# Events that name a whole title; anyone may put events with the pipeline's source, and
# a malformed one must not hide (or break the listing of) the real titles.
_NAMES_TITLE = " AND ".join(
    f"json_type(body, '$.detail.title.{field}') = 'text'"
    for field in ("id", "bucket", "key", "etag")
)
# The newest event of the given detail types for each title, one row per title.
_LATEST = f"""
SELECT e.seq, e.time, e.detail_type, e.body FROM events e JOIN (
    SELECT MAX(seq) AS seq FROM events
    WHERE source = ? AND detail_type IN ({{types}}) AND {_NAMES_TITLE}
    GROUP BY json_extract(body, '$.detail.title.id')
) newest ON e.seq = newest.seq
"""
_FIRST_SEEN = f"""
SELECT json_extract(body, '$.detail.title.id') AS title_id, MIN(time) AS created,
       MAX(time) AS updated
FROM events WHERE source = ? AND detail_type = ? AND {_NAMES_TITLE} GROUP BY title_id
"""


def _latest(state: State, types: list[str]) -> dict[str, dict[str, Any]]:
    sql = _LATEST.format(types=",".join("?" * len(types)))
    out = {}
    for row in state.read(sql, (SOURCE, *types)):
        detail = json.loads(row["body"])["detail"]
        out[detail["title"]["id"]] = {"type": row["detail_type"], "time": row["time"], **detail}
    return out


def list_titles(state: State, *, status: str | None = None) -> list[dict[str, Any]]:
    """Every title the pipeline has seen, newest first, with its state and progress."""
    progress = _latest(state, [STATE_CHANGE])
    outcomes = _latest(state, list(OUTCOMES))
    titles = []
    for row in state.read(_FIRST_SEEN, (SOURCE, STATE_CHANGE)):
        now, outcome = progress.get(row["title_id"], {}), outcomes.get(row["title_id"])
        if not now:
            continue
        # The last state change says whether the title is settled (a failed title that
        # was redriven is processing again); the newest outcome event says how.
        settled = now.get("status") in ("COMPLETE", "ERROR") and outcome is not None
        title_status = OUTCOMES[outcome["type"]] if outcome and settled else "processing"
        error = now.get("error") if title_status != "processing" else None
        titles.append(
            {
                **now["title"],
                "status": title_status,
                "stage": now.get("stage"),
                "percent": now.get("percent", 100 if title_status == "published" else None),
                "chunks_done": now.get("chunks_done"),
                "chunks_total": now.get("chunks_total"),
                "error": error,
                "created": row["created"],
                "updated": row["updated"],
            }
        )
    titles.sort(key=lambda t: t["created"], reverse=True)
    return [t for t in titles if status is None or t["status"] == status]


def get_title(state: State, title_id: str) -> dict[str, Any]:
    """One title's summary; `LookupError` if the pipeline has never seen it."""
    for title in list_titles(state):
        if title["id"] == title_id:
            return title
    raise LookupError(f"no title {title_id!r}")


def report(client: Client, title: dict[str, Any]) -> dict[str, Any] | None:
    """The title's report, once it is settled (None before)."""
    t = Title.from_dict({k: title[k] for k in ("id", "bucket", "key", "etag")})
    try:
        value = json.loads(client.get_object(t.bucket, t.report_key))
    except NoSuchKeyError:
        return None
    return value if isinstance(value, dict) else None


_TASKS = """
SELECT i.id, i.function, i.status, i.attempts, i.redrives, i.started, i.finished, i.worker,
       e.time AS queued, e.detail_type, e.body
FROM invocations i JOIN events e ON e.seq = i.event_seq
WHERE json_extract(e.body, '$.detail.title.id') = ?
   OR json_extract(e.body, '$.requestPayload.detail.title.id') = ?
   OR (e.kind = 's3' AND json_extract(e.body, '$.Records[0].s3.object.key') = ?
       AND json_extract(e.body, '$.Records[0].s3.object.eTag') = ?)
ORDER BY e.time, i.rowid
"""
_LABELS = ("chunk", "renditions", "rendition", "output")


def timeline(state: State, title: dict[str, Any]) -> list[dict[str, Any]]:
    """Every task that ran (or waits) for a title: when it was queued, each attempt's
    start, duration, worker and error, and what it worked on (chunk, renditions)."""
    rows = state.read(
        _TASKS, (title["id"], title["id"], encode_s3_key(title["key"]), title["etag"])
    )
    ids = [r["id"] for r in rows]
    attempts: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for a in state.read(
            "SELECT invocation_id, attempt, started, duration_ms, ok, error_type, "
            "error_message, worker, cold_start FROM attempts "
            f"WHERE invocation_id IN ({','.join('?' * len(ids))}) ORDER BY started",
            ids,
        ):
            attempts[a["invocation_id"]].append(
                {
                    "attempt": a["attempt"],
                    "started": a["started"],
                    "duration_s": round(a["duration_ms"] / 1000, 3),
                    "ok": bool(a["ok"]),
                    "error": a["error_message"] and f"{a['error_type']}: {a['error_message']}",
                    "worker": a["worker"],
                    "cold_start": bool(a["cold_start"]),
                }
            )
    tasks = []
    for r in rows:
        detail = json.loads(r["body"]).get("detail") or {}
        label = " ".join(
            f"{k} {','.join(map(str, v)) if isinstance(v, list) else v}"
            for k in _LABELS
            if (v := detail.get(k)) is not None
        )
        tasks.append(
            {
                "id": r["id"],
                "function": r["function"],
                "label": label,
                "status": r["status"],
                "queued": r["queued"],
                "started": r["started"],  # the current (or last) attempt's claim
                "finished": r["finished"],
                "redrives": r["redrives"],
                "worker": r["worker"],
                "attempts": attempts[r["id"]],
            }
        )
    return tasks
