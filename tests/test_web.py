"""The web dashboard, served for real (`news-monitor web` and the daemon) over real SQLite files."""

from __future__ import annotations

import base64
import html
import re
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import DEFAULT_ENTITIES, XI_PUTIN_CALL, DaemonProcess, rss, run_cli, write_config
from webserver import WebProcess, listening_url

from monitor.items import FeedSpec, Item, Mention
from monitor.store import AlertStatus, AlertWrite, FeedWrite, Intent, ItemWrite, MatchWrite, SqliteStorage

HOSTILE_TITLE = "<script>alert(1)</script> Putin visits"
NOW = datetime.now(UTC).replace(microsecond=0)
TOKEN = "s3cret-token-of-enough-length"


def _mention(title: str, name: str, canonical: str, kind: str) -> Mention:
    start = title.index(name)
    return Mention(name, canonical, kind, "title", start, start + len(name))


def seed(database: Path) -> dict[str, int]:
    """Two feeds, four items (one with a hostile title and a javascript: link), alerts in four states."""
    with SqliteStorage.open(database) as store:
        store.sync_feeds([FeedSpec("wire", "https://wire.example/rss"), FeedSpec("post", "https://post.example/")], NOW)
        wire, post = store.feed("wire").id, store.feed("post").id
        texts = [
            (wire, "a", "Putin and Xi talk trade", "https://wire.example/a", "Vladimir Putin spoke to Xi Jinping."),
            (post, "b", HOSTILE_TITLE, "javascript:alert(1)", "A hostile <b>body</b> about Putin."),
            (wire, "c", "Central bank holds rates", "https://wire.example/c", "Nothing about anyone."),
            (post, "d", "Putin signs the budget", "https://post.example/d", "Vladimir Putin signed it."),
        ]
        ids = {}
        for index, (feed, guid, title, link, text) in enumerate(texts):
            at = NOW - timedelta(hours=3 - index)
            item = Item(guid=guid, link=link, title=title, text=text, published_at=at)
            mentions = tuple(
                _mention(title, name, canonical, kind)
                for name, canonical, kind in (("Putin", "Vladimir Putin", "PERSON"), ("Xi", "Xi Jinping", "PERSON"))
                if name in title
            )
            hits = tuple(
                {"term": "Putin", "field": "title", "start": m.start, "end": m.end, "matched": "Putin", "entity": None}
                for m in mentions
                if m.text == "Putin"
            )
            status = [AlertStatus.PENDING, AlertStatus.PENDING, None, AlertStatus.SUPPRESSED][index]
            alerts = () if status is None else (AlertWrite("putin", "newsroom", status, reason="repeat of a story"),)
            write = ItemWrite(
                feed, item, mentions=mentions, matches=(MatchWrite("putin", hits),) if hits else (), alerts=alerts
            )
            feed_write = FeedWrite(feed, at, at + timedelta(minutes=10), "every 10m", None, None, None)
            [ids[guid]] = store.write(Intent(at, (write,), feed_write))
        alert_ids = {alert.item_id: alert.id for alert in store.list_alerts(limit=10)}
        store.mark_sent(alert_ids[ids["a"]], NOW)
        store.mark_failed(alert_ids[ids["b"]], "HTTP 500 from the receiver", None)  # dead
        return {"dead": alert_ids[ids["b"]], "sent": alert_ids[ids["a"]], **ids}


def config_for(directory: Path, **settings: object) -> Path:
    return write_config(
        directory,
        feeds=[{"name": "wire", "url": "https://wire.example/rss"}, {"name": "post", "url": "https://post.example/"}],
        channels={"newsroom": {"url": "json://127.0.0.1:9/hook"}},
        rules=[{"name": "putin", "query": "Putin", "notify": ["newsroom"]}],
        entities=DEFAULT_ENTITIES,
        **settings,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[WebProcess, dict[str, int], Path]]:
    root = tmp_path_factory.mktemp("web")
    config = config_for(root / "config")
    database = root / "config" / "state" / "news-monitor.db"
    ids = seed(database)
    with WebProcess(config, root / "web.log").start() as web:
        yield web, ids, database
        assert web.stop() == 0


def get(url: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_each_page_answers_with_its_content_and_safety_headers(site):
    web, ids, _ = site
    pages = {
        "": ["<title>Alerts — news-monitor</title>", "Putin and Xi talk trade", "HTTP 500 from the receiver",
             "repeat of a story", 'data-status="sent"', 'data-status="dead"'],
        "rules/test": ["<title>Rule tester — news-monitor</title>", 'id="tester-form"', 'option value="putin"'],
        "entities": ['id="entities-day"', "Vladimir Putin", "Xi Jinping", '<svg class="spark"'],
        "entities?window=week": ['id="entities-week"', "Vladimir Putin"],
        "entities/items?name=Vladimir+Putin&type=PERSON&window=day": ["Putin signs the budget", "Putin and Xi talk"],
        "feeds": ['data-feed="wire"', 'data-feed="post"', '<svg class="spark"', "items per day"],
        f"items/{ids['a']}": ['id="item-title"', "<mark>Putin</mark>", "Xi Jinping", 'id="item-outlets"'],
    }  # fmt: skip
    for path, expected in pages.items():
        answer = get(web.url + path)
        assert answer.status_code == 200, (path, answer.text)
        for text in expected:
            assert text in answer.text, (path, text)
        for landmark in ("<header>", '<nav aria-label="Main">', '<main id="main">'):
            assert landmark in answer.text, (path, landmark)
        headers = answer.headers
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in answer.text and " style=" not in answer.text  # no inline script or style
    assert get(web.url + "items/999999").status_code == 404
    assert get(web.url + "static/tester.js").status_code == 200
    assert get(web.url + "healthz").json()["status"] == "ok"
    assert "news_monitor_alerts" in get(web.url + "metrics").text


def test_hostile_feed_text_is_shown_as_text_and_its_links_are_not_followed(site):
    web, ids, _ = site
    for path in ("", f"items/{ids['b']}", "entities/items?name=Vladimir+Putin&type=PERSON", "rules/test?q=Putin"):
        page = get(web.url + path).text
        assert "<script>alert(1)</script>" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
        assert 'href="javascript:' not in page.lower(), path
    item = get(web.url + f"items/{ids['b']}").text
    assert "A hostile &lt;b&gt;body&lt;/b&gt;" in item
    assert '<span class="unsafe-link">javascript:alert(1)</span>' in item


def test_a_dead_alert_is_retried_only_with_its_csrf_token(site):
    web, ids, database = site
    dead = ids["dead"]
    page = get(web.url).text
    form = re.search(rf'action="/alerts/{dead}/retry">\s*<input type="hidden" name="csrf" value="([0-9a-f]+)"', page)
    assert form, page
    action = web.url + f"alerts/{dead}/retry"
    assert httpx.post(action, timeout=30).status_code == 403
    assert httpx.post(action, data={"csrf": "0" * 64}, timeout=30).status_code == 403
    with SqliteStorage.open(database) as store:
        assert store.alert(dead).status == AlertStatus.DEAD
    answer = httpx.post(action, data={"csrf": form.group(1)}, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == f"/?retried={dead}"
    with SqliteStorage.open(database) as store:
        assert store.alert(dead).status == AlertStatus.PENDING
    # Only a dead alert can be retried: the same POST again changes nothing.
    assert httpx.post(action, data={"csrf": form.group(1)}, timeout=30).status_code == 409
    # A token is good for its own form only.
    sent = ids["sent"]
    assert httpx.post(web.url + f"alerts/{sent}/retry", data={"csrf": form.group(1)}, timeout=30).status_code == 403


def test_the_rule_tester_shows_matches_a_chart_and_a_caret_under_a_syntax_error(site):
    web, ids, _ = site
    page = get(web.url + "rules/test", params={"q": "Putin", "since": "7d"}).text
    assert 'id="matches-chart"' in page and "3 of 4 stored items match" in page, page
    assert "<mark>Putin</mark>" in page
    assert f'href="/items/{ids["d"]}?q=Putin"' in page
    assert re.search(r'id="would-send">It would have sent \d+ alerts? to one channel', page), page
    rule = get(web.url + "rules/test/results", params={"rule": "putin"}).text
    assert "Rule <strong>putin</strong>" in rule and "<html" not in rule  # a fragment, for the live tester
    query = "Putin AND (Xi"
    broken = get(web.url + "rules/test/results", params={"q": query}).text
    caret = re.search(r'<pre class="caret">(.*)\n( *)\^</pre>', broken)
    column = int(re.search(r"column (\d+):", broken).group(1))
    assert caret and html.unescape(caret.group(1)) == query and len(caret.group(2)) == column - 1, broken


def test_requests_for_other_hosts_and_oversized_input_are_refused(site):
    web, _, _ = site
    assert get(web.url, headers={"Host": "rebound.example"}).status_code == 421
    assert get(web.url + "rules/test?q=" + "x" * 3000).status_code == 414
    assert httpx.post(web.url + "alerts/1/retry", content=b"x" * 10_000, timeout=30).status_code == 413


def test_a_non_loopback_address_needs_allow_remote_and_a_token(tmp_path):
    config = config_for(tmp_path / "config", web={"host": "0.0.0.0", "port": 0})
    refused = run_cli("check", config=config)
    assert refused.returncode == 1 and "web.host '0.0.0.0' is not a loopback address" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    config = config_for(tmp_path / "config", web={"host": "0.0.0.0", "port": 0, "allow_remote": True})
    refused = run_cli("check", config=config)
    assert refused.returncode == 1 and "$NEWS_MONITOR_WEB_TOKEN is not set" in refused.stderr
    alone = run_cli("web", config=config, timeout=60)
    assert alone.returncode == 1 and "$NEWS_MONITOR_WEB_TOKEN is not set" in alone.stderr


def test_with_a_token_every_page_needs_it(tmp_path):
    config = config_for(tmp_path / "config", web={"host": "0.0.0.0", "port": 0, "allow_remote": True})
    seed(tmp_path / "config" / "state" / "news-monitor.db")
    env = {"NEWS_MONITOR_WEB_TOKEN": TOKEN}
    with WebProcess(config, tmp_path / "web.log", env=env).start() as web:
        url = web.url.replace("0.0.0.0", "127.0.0.1")
        for path in ("", "feeds", "healthz", "static/app.css"):
            answer = get(url + path)
            assert answer.status_code == 401 and "Basic" in answer.headers["www-authenticate"], path
        assert get(url, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        assert get(url + "feeds", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        basic = base64.b64encode(f"editor:{TOKEN}".encode()).decode()
        assert get(url + "feeds", headers={"Authorization": f"Basic {basic}"}).status_code == 200
        assert web.stop() == 0


def test_the_daemon_serves_the_dashboard_and_its_health(tmp_path, feed_server, webhook, daemons):
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL), etag='"v1"')
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}],
        entities=DEFAULT_ENTITIES,
        web={"enabled": True, "port": 0},
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    [listening] = daemon.wait_for_log(r"web\.listening")
    base = listening_url(listening)
    daemon.wait_for_log(r"alert\.sent")
    assert get(base + "healthz").json()["status"] == "ok"
    alerts = get(base).text
    assert "Xi Jinping and Vladimir Putin hold phone call" in alerts and 'data-status="sent"' in alerts
    assert 'data-feed="wire"' in get(base + "feeds").text
    daemon.process.send_signal(signal.SIGHUP)  # the daemon's own signals still reach it: the dashboard takes none
    daemon.wait_for_log(r"config\.reloaded")
    assert get(base + "healthz").status_code == 200
    assert daemon.stop() == 0  # SIGTERM stops the dashboard with the rest
    assert "web.stopped" in daemon.log()


def test_a_taken_port_leaves_the_daemon_alerting(tmp_path, feed_server, webhook, daemons):
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL), etag='"v1"')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path / "config",
            feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
            channels={"hook": {"url": webhook.json_url("/hook")}},
            rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}],
            entities=DEFAULT_ENTITIES,
            web={"enabled": True, "port": port},
        )
        daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
        daemons.append(daemon)
        [error] = daemon.wait_for_log(r"web\.unavailable")
        assert "ERROR" in error and f"127.0.0.1:{port}" in error and "web.port" in error
        webhook.wait_for(1, timeout=60)
        daemon.wait_for_log(r"alert\.sent")
        assert daemon.stop() == 0


def test_commands_other_than_the_dashboard_never_load_the_web_stack():
    import subprocess
    import sys

    for args in (["--help"], ["poll", "--help"], ["check", "--help"]):
        found = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "monitor", *args], capture_output=True, text=True, timeout=60
        )
        assert found.returncode == 0, found.stderr
        loaded = {line.rsplit("|", 1)[-1].strip() for line in found.stderr.splitlines() if "|" in line}
        assert not {name for name in loaded if name.split(".")[0] in ("uvicorn", "starlette")}, args
