"""Signing in to the dashboard in a real headless Chromium: the form posts the token
(never in the address bar), a wrong token is said to be wrong, and a sign-in link's
token leaves the address bar at once."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from .conftest import Served, chromium, console_errors

pytestmark = pytest.mark.browser


@pytest.fixture
def page(api: Served) -> Iterator[Page]:
    with chromium() as launched:
        yield launched.new_context(viewport={"width": 390, "height": 844}).new_page()


def signed_in(page: Page) -> bool:
    return any(c["name"] == "reelay_token" for c in page.context.cookies())


def test_the_sign_in_form_posts_and_says_when_the_token_is_wrong(api: Served, page: Page) -> None:
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    page.goto(f"{api.url}/titles?tab=qc")
    assert page.locator("input[name=token]").is_visible()
    assert page.locator(".problem").count() == 0

    page.fill("input[name=token]", "not-the-token")
    with page.expect_navigation():
        page.click("button")
    assert page.locator(".problem").inner_text() == "That token is wrong."
    assert page.url == f"{api.url}/sign-in"  # where the form went; no token in it
    assert not signed_in(page)

    page.fill("input[name=token]", api.token)
    with page.expect_navigation():
        page.click("button")
    page.wait_for_load_state()
    assert urlsplit(page.url)[2:4] == ("/titles", "tab=qc")  # back where it began
    assert signed_in(page)
    assert page.locator("input[name=token]").count() == 0  # the dashboard, not the form
    assert not [url for _, url in requests if api.token in url]
    assert [m for m, url in requests if url.endswith("/sign-in")] == ["POST", "POST"]


def test_a_sign_in_link_leaves_the_address_bar_at_once(api: Served, page: Page) -> None:
    page.goto(f"{api.url}/titles?token={api.token}")
    assert page.url == f"{api.url}/titles"
    assert signed_in(page)

    page.context.clear_cookies()
    page.goto(f"{api.url}/?token=wrong")
    assert page.locator(".problem").inner_text() == "The token in that link is wrong."
    page.fill("input[name=token]", api.token)
    with page.expect_navigation():
        page.click("button")
    assert page.url == f"{api.url}/"
    assert signed_in(page)


def test_sign_in_returns_to_the_dashboard_page_in_the_fragment(api: Served, page: Page) -> None:
    # The dashboard's pages live in the fragment, which the browser never sends: the
    # form's own script carries it, under the Content-Security-Policy the page is sent.
    problems = console_errors(page)
    page.goto(f"{api.url}/#/titles/t1")
    assert page.locator("input[name=next]").input_value() == "/#/titles/t1"

    page.fill("input[name=token]", "not-the-token")  # a wrong try keeps the page asked for
    with page.expect_navigation():
        page.click("button")
    assert page.locator(".problem").inner_text() == "That token is wrong."
    page.fill("input[name=token]", api.token)
    with page.expect_navigation():
        page.click("button")
    page.wait_for_load_state()
    assert page.url == f"{api.url}/#/titles/t1"
    assert signed_in(page)
    assert page.locator("input[name=token]").count() == 0
    # No refusal by the policy (nor anything else) on the sign-in pages.
    assert not [p for p in problems if "Content Security Policy" in p or "page error" in p]
