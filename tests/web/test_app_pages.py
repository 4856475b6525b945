"""The apps' dashboard pages: the dashboard's own files know no app (the media app's
title pages are its plugin's), an app's page files are served only from inside its
pages, and with no app installed the dashboard still works, with no Titles."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.media._plugin import plugin as media
from reelay.web import Server, create_app, ensure_token

from .conftest import Served, chromium, console_errors
from .pages import go

STATIC = Path(__file__).resolve().parents[2] / "src" / "reelay" / "web" / "static"


def test_the_dashboards_own_files_know_no_title() -> None:
    # What the media app draws (titles, their timeline, QC and player, hls.js) is in its
    # plugin's pages; the dashboard's page keeps only its <title> and tooltips (title
    # attributes, and an SVG chart's <title> elements).
    for name in ["app.js", "index.html", "style.css"]:
        text = (STATIC / name).read_text()
        text = re.sub(r"</?title>|\btitle=\"", "", text)
        for word in ["title", "hls", "/api/titles", "timeline", "tl-", "rendition", "qc"]:
            assert not re.search(rf"(?i){re.escape(word)}", text), f"{name} mentions {word!r}"
    assert media.pages is not None
    assert sorted(p.name for p in media.pages.iterdir()) == ["titles.css", "titles.js"]


def test_the_media_pages_are_loaded_by_the_dashboards_page(web: Served) -> None:
    http = web.http
    page = http.get("/").text
    assert '<script src="/apps/media/titles.js" defer></script>' in page
    assert '<link rel="stylesheet" href="/apps/media/titles.css">' in page
    # After the dashboard's own script, so `window.reelay` is there when they run.
    assert page.index("/static/app.js") < page.index("/apps/media/titles.js")
    script = http.get("/apps/media/titles.js")
    assert script.status_code == 200 and "reelay.page(" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert http.get("/apps/media/titles.css").headers["content-type"].startswith("text/css")
    # Like every other file, only with the token.
    with httpx.Client(base_url=str(http.base_url)) as anonymous:
        assert anonymous.get("/apps/media/titles.js").status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/apps/media/..%2F_plugin.py",
        "/apps/media/%2e%2e/_plugin.py",
        "/apps/media/%2E%2E%2F%2E%2E%2Fweb%2Fapi.py",
        "/apps/media/..%5C_plugin.py",
        "/apps/media/%2Fetc%2Fpasswd",
        "/apps/media//etc/passwd",
        "/apps/media/.hidden",
        "/apps/media/titles.js%00.png",
        "/apps/media/no-such-file.js",
        "/apps/media/",
        "/apps/no-such-app/titles.js",
        "/apps/demo/anything.js",  # an app without pages
    ],
)
def test_an_app_page_file_outside_its_pages_is_not_served(web: Served, path: str) -> None:
    # Sent as written (http.client resolves no dots and decodes nothing).
    host, port = urlsplit(web.url).netloc.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {web.token}"})
        response = connection.getresponse()
        status, body = response.status, response.read().decode(errors="replace")
    finally:
        connection.close()
    assert status == 404, (path, status, body[:200])
    assert "import" not in body and "root:" not in body  # no file's content


def test_a_link_out_of_an_apps_pages_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reelay.plugins import Plugin
    from reelay.web import api as web_api

    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "ok.js").write_text("// ok\n")
    (tmp_path / "secret.txt").write_text("secret\n")
    (pages / "out.txt").symlink_to(tmp_path / "secret.txt")
    monkeypatch.setattr(web_api, "installed", lambda: {"linky": Plugin("linky", pages=pages)})
    with Client(Settings.load(tmp_path / "home")) as client:
        token, _ = ensure_token(client.settings.home)
        with (
            Server(create_app(client, token), port=0) as server,
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as h,
        ):
            assert h.get("/apps/linky/ok.js").text == "// ok\n"
            assert h.get("/apps/linky/out.txt").status_code == 404


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A server over a home with no app installed: its URL and token."""
    from reelay.web import api as web_api

    monkeypatch.setattr(web_api, "installed", dict)
    with Client(Settings.load(tmp_path / "home")) as client:
        token, _ = ensure_token(client.settings.home)
        with Server(create_app(client, token), port=0) as server:
            yield server.url, token


@pytest.mark.browser
def test_with_no_app_installed_the_dashboard_works_without_titles(
    bare: tuple[str, str],
) -> None:
    url, token = bare
    with chromium() as launched:
        page = launched.new_context(viewport={"width": 1440, "height": 1000}).new_page()
        errors = console_errors(page)
        page.goto(f"{url}/?token={token}")
        page.wait_for_selector("#connection.live")
        page.wait_for_selector("#charts .chart svg")
        assert page.locator("nav a").all_inner_texts() == [
            "Overview",
            "Functions",
            "Invocations",
            "Events",
            "DLQ",
            "Alerts",
            "Nodes",
        ]
        assert page.locator("#sections").inner_html() == ""
        assert page.locator("text=Titles").count() == 0
        go(page, "#/invocations", "#list")
        assert page.locator(".toolbar input").count() == 2  # this page's search, function
        go(page, "#/titles", "h1 >> text=Overview")  # no such page: the overview
        assert errors == []
