"""WebSub's parts: the protocol's rules (pure), hub discovery in feeds and headers, and the callback server
meeting hostile clients over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from conftest import BACKFILL, rss, run_cli, write_config

from monitor.callback import CallbackServer, Request, Response
from monitor.errors import ConfigError
from monitor.feeds import websub
from monitor.feeds.addresses import private_access
from monitor.feeds.fetch import fetch, new_client
from monitor.feeds.parse import parse_feed
from monitor.http_headers import links
from monitor.store import Subscription

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOPIC = "https://news.example/wire.xml"


def subscription(state="active", *, topic=TOPIC, feed_active=True, verified=NOW, lease=timedelta(days=7), **kw):
    return Subscription(
        id=1,
        feed_id=1,
        feed="wire",
        feed_active=feed_active,
        token="tok",
        hub="https://hub.example/",
        topic=topic,
        secret="s3cret",
        state=state,
        requested_at=kw.pop("requested_at", NOW),
        verified_at=verified if state == "active" else None,
        lease_until=verified + lease if state == "active" else None,
        **kw,
    )


# --- signatures --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_a_signature_by_any_method_of_the_spec_is_checked_over_the_exact_body(method):
    body = b"<rss>\r\n news </rss>"
    digest = hmac.new(b"s3cret", body, getattr(hashlib, method)).hexdigest()
    assert websub.signature_valid(f"{method}={digest}", body, "s3cret")
    assert websub.signature_valid(f"{method.upper()}={digest.upper()}", body, "s3cret")
    assert not websub.signature_valid(f"{method}={digest}", body + b" ", "s3cret")
    assert not websub.signature_valid(f"{method}={digest}", body, "other")


@pytest.mark.parametrize(
    "header", [None, "", "sha256", "sha256=", "md5=" + hashlib.md5(b"x").hexdigest(), "sha256=zz", "sha256=é€"]
)
def test_a_missing_or_malformed_signature_is_invalid(header):
    assert not websub.signature_valid(header, b"x", "s3cret")


# --- discovery ---------------------------------------------------------------------------------


def test_the_link_header_comes_first_then_the_document_and_self_names_the_topic():
    url = "https://news.example/feed"
    assert websub.discover(url, header_hubs=["/hub"], feed_hubs=["https://other/"]) == websub.Advert(
        "https://news.example/hub", url
    )
    assert websub.discover(url, feed_hubs=["https://hub/"], feed_self="https://news.example/wire.xml") == (
        websub.Advert("https://hub/", "https://news.example/wire.xml")
    )
    assert websub.discover(url, feed_hubs=["javascript:alert(1)", "ftp://x/", "https://hub/"]).hub == "https://hub/"
    assert websub.discover(url, feed_hubs=["https://" + "h" * 3000]) is None
    assert websub.discover(url) is None


def test_link_headers_are_read_as_rfc_8288_says_and_linearly():
    value = '<https://hub.example/>; rel="hub", </wire.xml>; rel=self, <https://a,b/>; rel="alternate hub"'
    assert links(value) == [
        ("https://hub.example/", ("hub",)),
        ("/wire.xml", ("self",)),
        ("https://a,b/", ("alternate", "hub")),
    ]
    assert links("<" * 16000) == [] and links(None) == []


def test_feeds_name_their_hubs_in_atom_links_rss_and_json_feed():
    atom = (
        b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>t</title>"
        b"<link rel='hub' href='/hub'/><link rel='self' href='https://news.example/atom'/>"
        b"<entry><id>1</id><title>a</title></entry></feed>"
    )
    parsed = parse_feed(atom, url="https://news.example/feed.atom")
    assert (parsed.hubs, parsed.self_url) == (("https://news.example/hub",), "https://news.example/atom")
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "feed_url": "https://news.example/feed.json",
        "hubs": [{"type": "rssCloud", "url": "https://cloud/"}, {"type": "WebSub", "url": "https://hub/"}, "junk"],
        "items": [{"id": "1", "title": "a"}],
    }
    parsed = parse_feed(json.dumps(feed).encode(), url="https://news.example/feed.json")
    assert (parsed.hubs, parsed.self_url) == (("https://hub/",), "https://news.example/feed.json")
    assert parse_feed(rss(*BACKFILL), url="https://news.example/rss").hubs == ()


def test_a_fetch_exposes_the_link_header(feed_server):
    feed_server.route("/wire.xml", rss(*BACKFILL), headers={"Link": '</hub>; rel="hub", <https://x/w>; rel="self"'})

    async def go():
        async with new_client(timeout=5) as client:
            url = feed_server.url("/wire.xml")
            return await fetch(client, url, private=private_access(None, url, from_config=True))

    fetched = asyncio.run(go())
    assert fetched.links("hub") == [feed_server.url("/hub")] and fetched.links("self") == ["https://x/w"]


# --- verification of intent --------------------------------------------------------------------


def verification(**query):
    return websub.read_verification({"hub.topic": TOPIC, "hub.challenge": "c", **query})


def test_only_what_we_asked_for_is_confirmed():
    subscribe = verification(**{"hub.mode": "subscribe", "hub.lease_seconds": "3600"})
    assert websub.answer(subscribe, subscription("requested")) is websub.Answer.CONFIRM
    assert websub.answer(subscribe, subscription("active")) is websub.Answer.CONFIRM  # a renewal
    assert websub.answer(subscribe, subscription("requested", topic="https://other/")) is websub.Answer.REFUSE
    assert websub.answer(subscribe, None) is websub.Answer.REFUSE
    assert websub.answer(subscribe, subscription("unsubscribing")) is websub.Answer.REFUSE
    assert websub.answer(subscribe, subscription("requested", feed_active=False)) is websub.Answer.REFUSE
    unsubscribe = verification(**{"hub.mode": "unsubscribe"})
    assert websub.answer(unsubscribe, subscription("active")) is websub.Answer.REFUSE
    assert websub.answer(unsubscribe, subscription("unsubscribing")) is websub.Answer.UNSUBSCRIBED
    denied = websub.read_verification({"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "no"})
    assert websub.answer(denied, subscription("requested")) is websub.Answer.DENIED


def test_malformed_verifications_are_not_answered():
    assert verification(**{"hub.mode": "subscribe"}) is None  # no lease: required for a subscription
    assert verification(**{"hub.mode": "subscribe", "hub.lease_seconds": "-5"}) is None
    assert verification(**{"hub.mode": "subscribe", "hub.lease_seconds": "1", "hub.challenge": "x" * 2000}) is None
    assert verification(**{"hub.mode": "publish"}) is None
    assert websub.read_verification({"hub.mode": "subscribe", "hub.challenge": "c", "hub.lease_seconds": "1"}) is None


# --- the life of a subscription ------------------------------------------------------------------


def test_a_lease_is_renewed_a_day_before_it_ends_or_halfway_when_short():
    week = subscription("active")
    assert websub.next_step(week, NOW + timedelta(days=5)) is None
    assert websub.next_step(week, NOW + timedelta(days=6)) is websub.Step.SUBSCRIBE
    short = subscription("active", lease=timedelta(seconds=20))
    assert websub.next_step(short, NOW + timedelta(seconds=9)) is None
    assert websub.next_step(short, NOW + timedelta(seconds=10)) is websub.Step.SUBSCRIBE
    assert websub.is_fresh(short, NOW + timedelta(seconds=19)) and not websub.is_fresh(
        short, NOW + timedelta(seconds=20)
    )
    tiny = subscription("active", lease=timedelta(seconds=1))  # a hub cannot make us ask in a loop
    assert websub.next_step(tiny, NOW + timedelta(seconds=5)) is None


def test_unverified_failed_and_denied_subscriptions_are_retried_and_removed_feeds_unsubscribed():
    later = NOW + websub.VERIFY_WAIT
    assert websub.next_step(subscription("requested"), later - timedelta(seconds=1)) is None
    assert websub.next_step(subscription("requested"), later) is websub.Step.SUBSCRIBE
    assert websub.next_step(subscription("failed"), NOW + websub.RETRY_FAILED) is websub.Step.SUBSCRIBE
    assert websub.next_step(subscription("denied"), NOW + websub.RETRY_FAILED) is None
    assert websub.next_step(subscription("denied"), NOW + websub.RETRY_DENIED) is websub.Step.SUBSCRIBE
    assert websub.next_step(subscription("active", feed_active=False), NOW) is websub.Step.UNSUBSCRIBE
    assert websub.next_step(subscription("active"), NOW, current=False) is websub.Step.UNSUBSCRIBE
    assert websub.next_step(subscription("failed", feed_active=False), NOW) is websub.Step.FORGET
    assert websub.next_step(subscription("unsubscribing"), NOW) is None
    assert websub.next_step(subscription("unsubscribing"), NOW + websub.FORGET_UNSUBSCRIBING) is websub.Step.FORGET


def test_requests_to_the_hub_follow_the_spec():
    form = websub.subscribe_form(topic=TOPIC, callback="https://cb/x", secret="s", lease=timedelta(days=7))
    assert form == {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.callback": "https://cb/x",
        "hub.secret": "s",
        "hub.lease_seconds": "604800",
    }
    with pytest.raises(ValueError):
        websub.subscribe_form(topic=TOPIC, callback="https://cb/x", secret="s" * 200, lease=timedelta(days=1))
    assert websub.callback_url("https://news.example.org/websub/", "tok") == "https://news.example.org/websub/tok"


# --- the callback server against hostile clients ----------------------------------------------------


async def exchange(port: int, data: bytes, *, pause: float = 0.0) -> bytes:
    """Send ``data`` with a Host header after its first line (HTTP/1.1 requires one: RFC 9112 3.2), read the answer."""
    data = data.replace(b"\r\n", b"\r\nHost: 127.0.0.1\r\n", 1)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if pause:
        await asyncio.sleep(pause)
    answer = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    return answer


def serve(scenario, *, max_body: int = 1000, read_timeout: float = 5.0, handle_timeout: float = 5.0):
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        if request.path == "/boom":
            raise RuntimeError("a bug")
        if request.path == "/slow":
            await asyncio.sleep(60)
        return Response(HTTPStatus.OK, b"got %d bytes" % len(request.body))

    async def run():
        server = CallbackServer(
            handler, "127.0.0.1", 0, max_body=lambda: max_body, read_timeout=read_timeout, handle_timeout=handle_timeout
        )
        await server.start()
        try:
            return await scenario(server.port)
        finally:
            await server.stop()

    return asyncio.run(run()), seen


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def test_bodies_are_read_by_length_or_in_chunks_and_capped_before_reading():
    async def scenario(port):
        return [
            await exchange(port, b"POST /cb/t HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            await exchange(
                port, b"POST /cb/t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
            ),
            await exchange(port, b"POST /cb/t HTTP/1.1\r\nContent-Length: 1001\r\n\r\n"),  # refused unread
            await exchange(port, b"POST /cb/t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" + b"a" * 1001),
            await exchange(port, b"POST /cb/t HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            await exchange(port, b"POST /cb/t HTTP/1.1\r\n\r\n"),
            await exchange(port, b"POST /cb/t HTTP/1.1\r\nContent-Length: 3\r\nContent-Encoding: gzip\r\n\r\nabc"),
            await exchange(port, b"POST /cb/t HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"),
        ]

    answers, seen = serve(scenario)
    assert [status(a) for a in answers] == [200, 200, 413, 413, 400, 411, 415, 100]
    assert b"200 OK" in answers[-1] and [r.body for r in seen] == [b"hello", b"abcde", b"abc"]


def test_hostile_heads_get_an_error_and_nothing_raises():
    async def scenario(port):
        return [
            await exchange(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"),
            await exchange(port, b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n"),
            await exchange(port, b"DELETE /cb/t HTTP/1.1\r\n\r\n"),
            await exchange(port, b"GET /cb/t?" + b"&".join(b"a%d=1" % i for i in range(40)) + b" HTTP/1.1\r\n\r\n"),
            await exchange(port, b"garbage\r\n\r\n"),
            await exchange(port, b"GET /boom HTTP/1.1\r\n\r\n"),
            await exchange(port, b"GET /cb/t?hub.mode=x&hub.mode=y HTTP/1.1\r\n\r\n"),
        ]

    answers, seen = serve(scenario)
    assert [status(a) for a in answers] == [431, 431, 405, 400, 400, 500, 200]
    assert seen[-1].query == {"hub.mode": "x"}


def test_slow_clients_and_slow_handlers_are_cut_off():
    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /cb/t HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc")  # and then nothing
        await writer.drain()
        trickled = await asyncio.wait_for(reader.read(), timeout=30)
        writer.close()
        silent = await exchange(port, b"GET /cb/t HTTP/1.1\r\n", pause=0)  # a head never finished: cut off
        return trickled, silent, await exchange(port, b"GET /slow HTTP/1.1\r\n\r\n")

    (trickled, silent, slow), _ = serve(scenario, read_timeout=0.5, handle_timeout=0.5)
    assert status(trickled) == 408 and silent == b"" and status(slow) == 503


def test_content_for_no_subscription_is_refused_from_the_head_alone():
    async def handler(request: Request) -> Response:
        return Response(HTTPStatus.OK)

    def admit(method: str, path: str) -> Response | None:
        return Response(HTTPStatus.GONE) if path != "/cb/live" else None

    async def scenario():
        server = CallbackServer(handler, "127.0.0.1", 0, max_body=lambda: 10**9, admit=admit)
        await server.start()
        try:
            # Announces a gigabyte and sends none of it: answered at once, nothing read or waited for.
            return await exchange(server.port, b"POST /cb/other HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n")
        finally:
            await server.stop()

    assert status(asyncio.run(scenario())) == 410


def test_the_callback_server_stays_on_loopback_unless_allowed():
    async def handler(request: Request) -> Response:
        return Response(HTTPStatus.OK)

    with pytest.raises(ConfigError, match="refusing to listen"):
        CallbackServer(handler, "0.0.0.0", 0, max_body=lambda: 10)
    CallbackServer(handler, "0.0.0.0", 0, max_body=lambda: 10, allow_remote=True)


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"callback": "http://news.example.org/websub"}, "callback must be an https:// URL"),
        ({"callback": "https://news.example.org/websub?x=1"}, "without query or fragment"),
        ({"listen": "127.0.0.1:8751"}, "websub.callback is required"),
        ({"callback": "https://news.example.org/websub", "listen": "0.0.0.0:8751"}, "not a loopback address"),
        ({"callback": "https://news.example.org/websub", "listen": "8751"}, "expected host:port"),
        ({"callback": "https://news.example.org/websub", "lease": "10s"}, "lease must be between"),
    ],
)
def test_websub_settings_are_checked_with_their_place_in_the_file(tmp_path, block, message):
    config = write_config(tmp_path / "config", feeds=[], websub=block)
    result = run_cli("check", config=config)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert re.search(r"monitor\.yaml:\d+:\d+: ", result.stderr), result.stderr


def test_websub_settings_that_are_fine_pass(tmp_path):
    block = {"callback": "https://news.example.org/websub", "listen": "[::1]:8751", "lease": "2d"}
    assert run_cli("check", config=write_config(tmp_path / "a", feeds=[], websub=block)).returncode == 0
    remote = {"callback": "https://news.example.org/websub", "listen": "0.0.0.0:8751", "allow_remote": True}
    assert run_cli("check", config=write_config(tmp_path / "b", feeds=[], websub=remote)).returncode == 0
    assert run_cli("check", config=write_config(tmp_path / "c", feeds=[], websub={"enabled": False})).returncode == 0
