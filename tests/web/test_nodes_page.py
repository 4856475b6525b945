"""The dashboard's Nodes page in a real headless Chromium: the serving dispatcher and the
workers that ran an attempt, each with its host, pid and version, how long ago it was
last seen (the date in the tooltip), and the nodes not seen for a few beats marked stale."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

import reelay
from reelay.state import Node

from .conftest import Browser, Served, chromium, console_errors
from .pages import PHONE, go, phone, reject_title, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROWS = "#list tbody tr[data-key]"


def cells(browser: Browser) -> dict[str, dict[str, str]]:
    """Each row's cells by column, by the node's name."""
    page = browser.page
    headers = page.locator("#list thead th").all_inner_texts()
    return {
        str(row.get_attribute("data-key")): dict(
            zip(headers, row.locator("td").all_inner_texts(), strict=True)
        )
        for row in page.locator(ROWS).all()
    }


def test_the_dispatcher_and_workers_are_listed_and_the_stale_ones_marked(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    reject_title(served, tmp_path)  # an attempt on a worker: the worker is seen
    # A worker last seen over ten minutes ago, on another host, running an older reelay.
    now = time.time()
    old = Node("4242@old-host", "worker", "old-host", 4242, "0.0.9", now - 7500, now - 630)
    served.client.state.node_seen([old])
    listed = {n["name"]: n for n in served.http.get("/api/nodes").json()}
    host = socket.gethostname()
    (dispatcher,) = [n for n in listed.values() if n["kind"] == "dispatcher"]
    assert (dispatcher["host"], dispatcher["pid"]) == (host, os.getpid())  # this runtime
    workers = [n for n in listed.values() if n["kind"] == "worker" and n["host"] == host]
    assert workers and all(n["version"] == reelay.__version__ for n in workers)

    go(page, "#/nodes", ROWS)
    wait_until(lambda: set(cells(browser)) == set(listed), "a row for every node")
    shown = cells(browser)
    for name, node in listed.items():
        row = shown[name]
        assert row["Role"] == node["kind"], name
        assert (row["Host"], row["PID"], row["Version"]) == (
            node["host"],
            str(node["pid"]),
            node["version"],
        ), name
        assert row["Last seen"].endswith(" ago"), row
    # Dispatchers first, then the workers.
    keys = page.eval_on_selector_all(ROWS, "rs => rs.map(r => r.dataset.key)")
    assert keys[0] == dispatcher["name"]

    # The old worker: stale, seen 10 min ago, the date and time in the tooltip.
    assert shown[old.name]["Status"] == "stale"
    assert shown[old.name]["Last seen"] == "10 min ago"
    assert shown[old.name]["First seen"] == "2 h ago"
    last_seen = page.locator(f"{ROWS}[data-key='{old.name}'] td[data-label='Last seen'] span")
    assert last_seen.get_attribute("title") == page.evaluate(
        f"new Date({old.seen} * 1000).toLocaleString()"
    )
    # The dispatcher says it is alive every few seconds: it is shown alive.
    dispatcher_status = f"{ROWS}[data-key='{dispatcher['name']}'] td[data-label='Status']"
    wait_until(
        lambda: page.locator(dispatcher_status).inner_text() == "alive", "the dispatcher alive"
    )
    # Stale and alive look different at a glance.
    looks = [
        page.locator(f"{ROWS} .badge", has_text=word).first.evaluate(
            "el => getComputedStyle(el).backgroundColor + ' ' + getComputedStyle(el).color"
        )
        for word in ("alive", "stale")
    ]
    assert looks[0] != looks[1], looks
    assert page.locator("nav a.active").inner_text() == "Nodes"

    # The search box keeps the rows that mention what is typed.
    page.fill("main input[type=search]", "old-host")
    wait_until(lambda: page.locator(f"{ROWS}:visible").count() == 1, "one row left")
    page.fill("main input[type=search]", "")
    page.locator("main input[type=search]").blur()
    browser.screenshot("nodes.png")
    assert browser.console_errors == []

    # On a phone: each row a card, nothing wider than the screen.
    with phone(browser, served) as small:
        go(small.page, "#/nodes", f"{ROWS}[data-key='{old.name}'] .badge.stale")
        assert small.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        small.screenshot("nodes-phone.png")
        assert small.console_errors == []


def test_no_node_seen_says_so(web: Served) -> None:
    # The API over a home that no dispatcher serves: no node was ever seen.
    with chromium() as launched:
        page = launched.new_context(viewport={"width": 1280, "height": 800}).new_page()
        errors = console_errors(page)
        page.goto(f"{web.url}/?token={web.token}")
        go(page, "#/nodes", "#list .empty")
        assert page.locator("#list .empty").inner_text() == (
            "No dispatcher or worker has been seen in the last day."
        )
        assert page.locator("#list table").count() == 0
        assert errors == []
