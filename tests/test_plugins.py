"""Apps are plugins: a package installed beside reelay adds functions, trigger kinds,
validate kinds, dashboard pages and alert rules through the ``reelay.apps`` entry
points, without editing reelay; the registries refuse a kind registered twice; web/ and
observe/ import no app."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from reelay import plugins
from reelay.cli import main
from reelay.client import Client
from reelay.config import Settings
from reelay.errors import AppError, ConfigError
from reelay.observe.alerts import load_alert_rules
from reelay.plugins import Registry
from reelay.runtime import load_app
from reelay.web import Server, create_app, ensure_token

from .web.conftest import chromium, console_errors

# A third-party app, "thumbs": a plugin module naming its reelay.yaml, an `upload`
# trigger kind (sugar for an S3 trigger on its bucket), a `sizes` validate kind, its
# dashboard pages (a page with a nav link, an overview section) and an alert rule.
THUMBS = {
    "thumbs/__init__.py": "",
    "thumbs/handlers.py": "def thumbnail(event, context):\n    return 'ok'\n",
    "thumbs/reelay.yaml": "service: thumbs\nfunctions:\n  thumbnail: {handler: handlers.thumbnail}\n",
    "thumbs/plugin.py": """
        from pathlib import Path

        import yaml

        from reelay.errors import AppError
        from reelay.plugins import Plugin, ValidateKind
        from reelay.runtime.app import S3Trigger


        def upload(spec, site, problems):
            if not isinstance(spec, dict) or not isinstance(spec.get("prefix"), str):
                problems.add(site.at, "must be a mapping with a 'prefix'")
                return []
            return [S3Trigger("thumbs", "s3:ObjectCreated:*", spec["prefix"])]


        def sizes(path):
            sizes = yaml.safe_load(Path(path).read_text())
            if not isinstance(sizes, list) or not all(isinstance(s, int) for s in sizes):
                raise AppError([f"{path}: must be a list of widths"])
            return f"{len(sizes)} sizes"


        plugin = Plugin(
            name="thumbs",
            app_file=Path(__file__).with_name("reelay.yaml"),
            trigger_kinds={"upload": upload},
            validate_kinds={"sizes": ValidateKind("thumbnail widths", sizes)},
            pages=Path(__file__).with_name("pages"),
            alert_rules=Path(__file__).with_name("alerts.yaml"),
        )
    """,
    "thumbs/pages/thumbs.js": """
        "use strict";
        (() => {
          const { LiveTable, api, esc, main, onLive } = window.reelay;
          window.reelay.nav("Thumbs", "#/thumbs");
          window.reelay.page("thumbs", (params, parts) => {
            main.innerHTML = `<h1>Thumbs</h1><p id="thumbs-hello">${esc(parts.join("/") || "all")}</p><div id="list"></div>`;
            const table = new LiveTable(document.getElementById("list"), [["Function", (f) => esc(f.name)]], { key: (f) => f.name, empty: "No thumbnails." });
            onLive(async () => table.update(await api("/api/functions")));
          });
          window.reelay.overviewSection((section) => { section.innerHTML = `<h2 id="thumbs-section">Thumbnails</h2>`; });
        })();
    """,
    "thumbs/pages/thumbs.css": "#thumbs-hello { color: rgb(1, 2, 3); }\n",
    "thumbs/alerts.yaml": "alerts: [{name: ThumbsBacklog, metric: queue_depth, above: 100}]\n",
}


def install(root: Path, name: str, files: dict[str, str], entry_points: str) -> None:
    """A package installed in ``root`` as pip would: its files and a dist-info."""
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text))
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[reelay.apps]\n{entry_points}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path to install packages into; reelay finds apps afresh."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    plugins.reload()
    yield root
    monkeypatch.undo()
    for name in [m for m in sys.modules if m == "thumbs" or m.startswith("thumbs.")]:
        del sys.modules[name]
    plugins.reload()


@pytest.fixture
def thumbs(site: Path) -> Path:
    install(site, "thumbs", THUMBS, "thumbs = thumbs.plugin:plugin")
    return site


def cli(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_reelays_own_apps_are_found_as_plugins() -> None:
    assert {"demo", "media"} <= set(plugins.installed())
    assert {"ladder", "rules"} <= set(plugins.validate_kinds())
    assert plugins.validate_kinds().owner("ladder") == "media"
    assert plugins.trigger_kinds().names() == ["eventBridge", "s3", "schedule", "stream"]
    assert plugins.trigger_kinds().owner("s3") == plugins.CORE


def test_a_third_party_app_adds_functions_a_trigger_kind_and_a_validate_kind(
    thumbs: Path, tmp_path: Path
) -> None:
    app_file = tmp_path / "reelay.yaml"
    app_file.write_text(
        "include: [thumbs]\n"
        "functions:\n"
        "  index:\n"
        "    handler: thumbs.handlers.thumbnail\n"
        "    events: [{upload: {prefix: in/}}, {s3: uploads}]\n"
    )
    app = load_app(app_file)
    assert sorted(app.functions) == ["index", "thumbnail"]  # its function, included
    index = app.functions["index"]
    assert [(t.bucket, t.prefix) for t in index.s3] == [("thumbs", "in/"), ("uploads", "")]
    assert load_app("thumbs").name == "thumbs"  # by name, as `reelay up --app thumbs`

    bad = app_file.with_name("bad.yaml")
    bad.write_text("functions: {f: {handler: thumbs.handlers.thumbnail, events: [{upload: 3}]}}")
    with pytest.raises(AppError) as caught:
        load_app(bad)
    assert caught.value.problems == [
        f"{bad}: functions.f.events[0].upload: must be a mapping with a 'prefix'"
    ]

    sizes = tmp_path / "sizes.yaml"
    sizes.write_text("[320, 640]\n")
    ok = cli("validate", "--kind", "sizes", sizes)
    assert ok.exit_code == 0 and ok.output == f"{sizes}: ok (2 sizes)\n"
    sizes.write_text("[wide]\n")
    refused = cli("validate", "--kind", "sizes", sizes)
    assert (
        refused.exit_code == 2 and refused.output == f"error: {sizes}: must be a list of widths\n"
    )
    listed = cli("validate", "--kind", "help", sizes).output
    assert "sizes      thumbnail widths (thumbs)" in listed


@pytest.fixture
def served_thumbs(thumbs: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    """The API and dashboard of a home, with thumbs installed beside reelay's own apps:
    a client carrying the token."""
    with Client(Settings.load(tmp_path / "home")) as client:
        token, _ = ensure_token(client.settings.home)
        with (
            Server(create_app(client, token), port=0) as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as http,
        ):
            yield http


def test_a_third_party_app_adds_dashboard_pages_and_alert_rules(
    served_thumbs: httpx.Client,
) -> None:
    http = served_thumbs
    page = http.get("/").text
    # Every app's page files, by app name, after the dashboard's own script.
    order = ["/static/app.js", "/apps/media/titles.js", "/apps/thumbs/thumbs.js"]
    assert [page.index(url) for url in order] == sorted(page.index(url) for url in order)
    assert '<link rel="stylesheet" href="/apps/thumbs/thumbs.css">' in page
    script = http.get("/apps/thumbs/thumbs.js")
    assert script.status_code == 200 and 'reelay.page("thumbs"' in script.text
    assert http.get("/apps/thumbs/plugin.py").status_code == 404  # only its pages
    # Its alert rule comes after reelay's and media's built-in ones.
    assert [r.name for r in load_alert_rules()][-3:] == [
        "TitleHeld",
        "TitleFailed",
        "ThumbsBacklog",
    ]


@pytest.mark.browser
def test_a_third_party_apps_page_is_loaded_by_the_dashboard(served_thumbs: httpx.Client) -> None:
    token = served_thumbs.headers["Authorization"].removeprefix("Bearer ")
    with chromium() as launched:
        page = launched.new_context(viewport={"width": 1440, "height": 1000}).new_page()
        errors = console_errors(page)
        page.goto(f"{served_thumbs.base_url}?token={token}")
        page.wait_for_selector("#connection.live")
        # Its nav link after the overview's and media's; its section on the overview.
        assert page.locator("nav a").all_inner_texts()[:4] == [
            "Overview",
            "Titles",
            "Thumbs",
            "Functions",
        ]
        page.wait_for_selector("#sections #thumbs-section >> text=Thumbnails")
        assert page.locator("#sections h2").all_inner_texts() == ["Titles", "Thumbnails"]
        page.locator("nav a", has_text="Thumbs").click()
        page.wait_for_selector("#list >> text=No thumbnails.")  # drawn with the API and a table
        assert page.locator("#thumbs-hello").inner_text() == "all"
        # The path after its name, decoded; its stylesheet applied.
        page.evaluate("location.hash = '#/thumbs/big%20ones'")
        page.wait_for_selector("#thumbs-hello >> text=big ones")
        color = page.evaluate("getComputedStyle(document.getElementById('thumbs-hello')).color")
        assert color == "rgb(1, 2, 3)"
        assert page.locator("nav a.active").inner_text() == "Thumbs"
        assert errors == []


def test_unknown_kinds_name_the_valid_ones(thumbs: Path, tmp_path: Path) -> None:
    app_file = tmp_path / "reelay.yaml"
    app_file.write_text("functions: {f: {handler: thumbs.handlers.thumbnail, events: [{sqs: q}]}}")
    with pytest.raises(AppError) as caught:
        load_app(app_file)
    assert caught.value.problems == [
        f"{app_file}: functions.f.events[0]: unknown event kind 'sqs'; "
        "valid kinds: eventBridge, s3, schedule, stream, upload"
    ]
    result = cli("validate", "--kind", "sizez", app_file)
    assert result.exit_code == 2
    assert "unknown kind 'sizez'; valid kinds: alerts, app, ladder, rules, sizes" in result.output
    with pytest.raises(ConfigError, match=r"unknown validate kind 'x'; valid: alerts, app, "):
        plugins.validate_kinds().get("x")


def test_a_kind_registered_twice_is_a_clear_error(site: Path) -> None:
    install(
        site,
        "clash",
        {
            "clash/__init__.py": """
                from reelay.plugins import Plugin

                plugin = Plugin(name="clash", trigger_kinds={"s3": lambda spec, site, problems: []})
            """
        },
        "clash = clash:plugin",
    )
    with pytest.raises(ConfigError) as caught:
        plugins.trigger_kinds()
    assert str(caught.value) == (
        "trigger kind 's3' is registered twice: by 'reelay' and by 'clash'; "
        "uninstall one of the two apps"
    )
    registry: Registry[int] = Registry("validate kind")
    registry.register("ladder", 1, by="media")
    with pytest.raises(ConfigError, match="validate kind 'ladder' is registered twice"):
        registry.register("ladder", 2, by="video")


def test_an_entry_point_that_is_not_a_plugin_is_a_clear_error(site: Path) -> None:
    install(site, "odd", {"odd/__init__.py": "plugin = 42\n"}, "odd = odd:plugin")
    with pytest.raises(ConfigError, match=r"entry point 'odd' = 'odd:plugin' in group "):
        plugins.installed()
    result = cli("validate", "--kind", "ladder", "x.yaml")  # the CLI says so, no traceback
    assert result.exit_code == 1 and "must name a reelay.plugins.Plugin" in result.output


def test_web_and_observe_import_no_app() -> None:
    code = (
        "import sys, reelay.web, reelay.web.api, reelay.observe.metrics, reelay.observe.alerts; "
        "print(sorted(m for m in sys.modules if m.startswith(('reelay.media', 'reelay.apps'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
