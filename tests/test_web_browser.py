"""The dashboard in a real browser: Chromium (through Playwright) on the real daemon's dashboard,
over items the daemon polled from a local feed server (the feed fixtures, and a feed with hostile
titles), with alerts that went dead against a failing webhook receiver."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from browser import DESKTOP, PHONE, console_errors, horizontal_overflow
from conftest import DEFAULT_ENTITIES, XI_PUTIN_CALL, DaemonProcess, Story, rss, wait_until, write_config
from feedserver import FeedServer
from receivers import WebhookReceiver
from webserver import listening_url

DATA = Path(__file__).parent / "data" / "feeds"
HOSTILE_TITLE = "<script>alert(1)</script> Putin visits Minsk"
HOSTILE = Story(
    "hostile-1",
    HOSTILE_TITLE,
    'President Vladimir Putin arrived in Minsk. <img src=x onerror="alert(2)"> <a href="javascript:alert(3)">more</a>',
)


@dataclass
class Site:
    url: str  # the dashboard's base URL, ending in "/"
    daemon: DaemonProcess
    webhook: WebhookReceiver


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One daemon for the module: three feeds polled for real, a rule that alerts a webhook which
    answers 500 until the alerts are dead (a retry window of two seconds)."""
    directory = tmp_path_factory.mktemp("web-browser")
    with FeedServer() as feeds, WebhookReceiver() as webhook:
        webhook.set_default(status=500, body=b"receiver down")
        feeds.route("/herald.xml", (DATA / "rss20.xml").read_bytes())
        feeds.route("/atom.xml", (DATA / "atom10.xml").read_bytes(), content_type="application/atom+xml")
        feeds.route("/wire.xml", rss(XI_PUTIN_CALL, HOSTILE, title="Wire <b>bold</b>"))
        config = write_config(
            directory / "config",
            feeds=[
                {"name": "herald", "url": feeds.url("/herald.xml")},
                {"name": "atom-daily", "url": feeds.url("/atom.xml")},
                {"name": "wire", "url": feeds.url("/wire.xml"), "alert_first_fetch": True},
            ],
            channels={"desk": {"url": webhook.json_url("/alerts")}},
            rules=[{"name": "putin", "query": "Putin", "notify": ["desk"]}],
            entities=DEFAULT_ENTITIES,
            delivery={"retry_initial": "1s", "retry_max": "1s", "retry_window": "2s"},
            web={"enabled": True, "port": 0},
        )
        daemon = DaemonProcess(config, directory / "daemon.log").start()
        try:
            url = listening_url(daemon.wait_for_log(r"web\.listening", timeout=120)[0])
            assert url is not None

            def dead_alerts() -> int:
                return httpx.get(url + "?status=dead", timeout=30).text.count('data-status="dead"')

            # Both of the wire's items alerted and went dead; the other feeds' items are stored.
            wait_until(lambda: dead_alerts() >= 2, "two dead alerts", timeout=180, detail=daemon.log)
            wait_until(lambda: "enrich.done" in daemon.log(), "the first fetches enriched", timeout=120)
            yield Site(url, daemon, webhook)
        finally:
            daemon.kill()


def item_url(site: Site, page) -> str:
    """The explanation page of the hostile item, as linked from the alerts page."""
    page.goto(site.url)
    story = page.locator("article.story", has_text="Putin visits Minsk")
    return story.locator("a[href*='/items/']").first.get_attribute("href")


PAGES = ["alerts", "rule tester", "entities", "entity items", "feeds", "item"]


@pytest.mark.parametrize("name", PAGES)
def test_each_page_loads_clean_with_landmarks_at_desktop_and_phone_width(site: Site, page, name: str) -> None:
    path = {
        "alerts": "",
        "rule tester": "rules/test?q=Putin&since=30d",
        "entities": "entities?window=week",
        "entity items": "entities/items?name=Vladimir+Putin&type=PERSON&window=week",
        "feeds": "feeds",
    }.get(name)
    url = site.url + path if path is not None else site.url.rstrip("/") + item_url(site, page)
    errors = console_errors(page)

    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        answer = page.goto(url)
        if name == "rule tester":  # its script may fetch the results again
            page.wait_for_load_state("networkidle")

        assert answer is not None and answer.status == 200, (url, answer and answer.status)
        assert page.title().endswith("news-monitor"), page.title()
        for landmark in ("banner", "main", "contentinfo"):
            assert page.get_by_role(landmark).count() == 1, (name, landmark)
        assert page.get_by_role("navigation", name="Main").is_visible()
        assert page.locator("main h1").first.is_visible()
        assert horizontal_overflow(page) <= 0, f"{name} is wider than {viewport['width']} px"
    assert errors == []


def test_no_feeds_column_header_breaks_inside_a_word(site: Site, page) -> None:
    # Each word of each header is one line box: a word cut in two ("Healt/h") has two.
    split_words = """() => [...document.querySelectorAll('#feeds thead th')].flatMap(th => {
        const text = th.firstChild, found = [];
        for (const match of text.textContent.matchAll(/\\S+/g)) {
            const range = document.createRange();
            range.setStart(text, match.index);
            range.setEnd(text, match.index + match[0].length);
            if (range.getClientRects().length > 1) found.push(match[0]);
        }
        return found;
    })"""
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.goto(site.url + "feeds")
        assert page.locator("#feeds thead th").count() == 6
        assert page.evaluate(split_words) == [], viewport


def test_typing_a_query_shows_its_matches_and_chart(site: Site, page) -> None:
    errors = console_errors(page)
    page.goto(site.url + "rules/test")

    page.locator("#q").press_sequentially("Xi AND Putin", delay=40)

    matches = page.locator("#matches li.match")
    matches.filter(has_text="Xi and Putin sign energy pact in Moscow").wait_for()
    assert matches.filter(has_text=XI_PUTIN_CALL.title).count() == 1
    assert "Putin" in [mark.inner_text() for mark in matches.first.locator("mark").all()]
    chart = page.locator("#matches-chart")
    assert chart.is_visible() and chart.locator("rect").count() >= 1
    assert "match" in page.locator("#tester-summary").inner_text()

    # A syntax error says where, with a caret under the column.
    page.locator("#q").fill("")
    page.locator("#q").press_sequentially("Putin AND (", delay=40)
    caret = page.locator("#syntax-error pre.caret")
    caret.wait_for()
    assert caret.inner_text().splitlines()[-1].strip() == "^"
    assert errors == []


def test_a_dead_alert_is_retried_with_its_token_and_not_without(site: Site, page) -> None:
    errors = console_errors(page)
    page.goto(site.url + "?status=dead")
    dead = page.locator("li.alert[data-status='dead']").first
    alert_id = dead.get_attribute("data-alert-id")
    form = dead.locator("form.retry")

    # A POST forged from the page itself: no token, then a wrong one.
    forged = """([path, token]) => fetch(path, {method: "POST", body: new URLSearchParams(token === null ? {} : {csrf: token})})
        .then(answer => answer.status)"""
    action = form.get_attribute("action")
    assert page.evaluate(forged, [action, None]) == 403
    assert page.evaluate(forged, [action, "0" * 64]) == 403
    page.reload()
    assert page.locator(f"li.alert[data-alert-id='{alert_id}']").get_attribute("data-status") == "dead"
    answered = len(site.webhook.requests)

    site.webhook.set_default(status=200)
    page.locator(f"li.alert[data-alert-id='{alert_id}'] form.retry button").click()

    page.wait_for_url(re.compile(rf"[?&]retried={alert_id}\b"))
    assert page.get_by_role("status").is_visible()
    wait_until(
        lambda: [r for r in site.webhook.requests[answered:] if r.status == 200],
        "the retried alert to reach the receiver",
        timeout=120,
        detail=site.daemon.log,
    )

    def status() -> str | None:
        page.goto(site.url)
        return page.locator(f"li.alert[data-alert-id='{alert_id}']").get_attribute("data-status")

    wait_until(lambda: status() == "sent", f"alert {alert_id} shown as sent", timeout=60)
    # The browser reports the two refused forgeries, and nothing else.
    assert len(errors) == 2 and all("403" in error and f"/alerts/{alert_id}/retry" in error for error in errors), errors


def test_hostile_titles_render_as_text_and_nothing_runs(site: Site, page) -> None:
    errors = console_errors(page)  # a dialog, a script error or a CSP violation would land here

    for url in (site.url, site.url + "rules/test?q=Minsk&since=30d", site.url.rstrip("/") + item_url(site, page)):
        page.goto(url)
        assert page.get_by_text(HOSTILE_TITLE).first.is_visible(), url
        assert page.locator("a[href^='javascript:' i]").count() == 0, url
        assert page.locator("main img, main script").count() == 0, url
    assert errors == []
