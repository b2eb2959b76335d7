"""monitor.feeds.fetch against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import socket
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from feedserver import FeedServer

from monitor import USER_AGENT
from monitor.errors import FeedError, RetrieveError
from monitor.feeds.addresses import ANY_ADDRESS as LOCAL  # the test server is on 127.0.0.1
from monitor.feeds.fetch import (
    Fetched,
    FetchError,
    HTTPStatusError,
    fetch,
    new_client,
)

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title>
<item><title>Xi and Putin meet in Moscow</title><link>https://wire.example/1</link></item>
</channel></rss>
"""
LAST_MODIFIED = "Wed, 15 May 2024 21:30:00 GMT"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def get(url: str, *, timeout: float = 5.0, **kwargs: Any) -> Fetched:
    """Run one fetch with a fresh client, as the daemon would with its shared one."""

    async def run() -> Fetched:
        async with new_client(timeout=timeout) as client:
            return await fetch(client, url, **{"private": LOCAL, **kwargs})

    return asyncio.run(run())


def fail(url: str, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        get(url, **kwargs)
    return caught.value


# --- success and conditional GET -------------------------------------------------


def test_ok_returns_body_validators_and_headers(server: FeedServer) -> None:
    server.route(
        "/rss.xml",
        FEED,
        etag='"v1"',
        last_modified=LAST_MODIFIED,
        headers={"Cache-Control": "max-age=300"},
    )
    fetched = get(server.url("/rss.xml"))
    assert fetched.content == FEED
    assert not fetched.not_modified
    assert fetched.url == server.url("/rss.xml")
    assert fetched.etag == '"v1"'
    assert fetched.last_modified == LAST_MODIFIED
    assert fetched.content_type == "application/rss+xml; charset=utf-8"
    assert fetched.headers["cache-control"] == "max-age=300"


def test_request_names_the_product_and_prefers_feeds(server: FeedServer) -> None:
    server.route("/rss.xml", FEED)
    get(server.url("/rss.xml"))
    sent = server.requests_for("/rss.xml")[0].headers
    assert sent["user-agent"] == USER_AGENT
    assert sent["user-agent"].startswith("news-monitor/")
    assert sent["accept"].startswith("application/rss+xml, application/atom+xml")
    assert sent["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in sent and "if-modified-since" not in sent


def test_matching_etag_gives_not_modified(server: FeedServer) -> None:
    server.route("/rss.xml", FEED, etag='"v1"')
    fetched = get(server.url("/rss.xml"), etag='"v1"')
    assert fetched.not_modified
    assert fetched.content is None
    assert fetched.etag == '"v1"'
    assert server.requests_for("/rss.xml")[0].headers["if-none-match"] == '"v1"'


def test_changed_etag_gives_the_new_body(server: FeedServer) -> None:
    server.route("/rss.xml", FEED, etag='"v1"')
    first = get(server.url("/rss.xml"))
    updated = FEED.replace(b"Moscow", b"Beijing")
    server.route("/rss.xml", updated, etag='"v2"')
    second = get(server.url("/rss.xml"), etag=first.etag)
    assert second.content == updated
    assert second.etag == '"v2"'


def test_last_modified_gives_not_modified(server: FeedServer) -> None:
    server.route("/rss.xml", FEED, last_modified=LAST_MODIFIED)
    fetched = get(server.url("/rss.xml"), last_modified=LAST_MODIFIED)
    assert fetched.not_modified
    assert fetched.last_modified == LAST_MODIFIED
    assert server.requests_for("/rss.xml")[0].headers["if-modified-since"] == LAST_MODIFIED


def test_not_modified_keeps_validators_the_server_omitted(server: FeedServer) -> None:
    server.route("/rss.xml", FEED, last_modified=LAST_MODIFIED)
    fetched = get(server.url("/rss.xml"), etag='"ours"', last_modified=LAST_MODIFIED)
    # The route has no ETag, so If-None-Match does not match: full answer.
    assert fetched.content == FEED
    server.route("/rss.xml", FEED, etag='"ours"')
    fetched = get(server.url("/rss.xml"), etag='"ours"', last_modified=LAST_MODIFIED)
    assert fetched.not_modified
    assert (fetched.etag, fetched.last_modified) == ('"ours"', LAST_MODIFIED)


# --- HTTP errors -----------------------------------------------------------------


def test_not_found_names_url_and_status(server: FeedServer) -> None:
    url = server.url("/missing.xml")
    error = fail(url)
    assert isinstance(error, HTTPStatusError)
    assert isinstance(error, RetrieveError) and isinstance(error, FeedError)
    assert isinstance(error, OSError)
    assert error.status == 404
    assert error.retry_after is None
    assert str(error).startswith(f"{url}: HTTP 404 Not Found")


def test_server_error_carries_retry_after_seconds(server: FeedServer) -> None:
    server.route("/rss.xml", b"overloaded", status=500, headers={"Retry-After": "120"})
    error = fail(server.url("/rss.xml"))
    assert error.status == 500
    assert error.retry_after == 120.0
    assert "HTTP 500 Internal Server Error" in str(error)
    assert "retry after 120s" in str(error)


def test_retry_after_http_date_is_measured_from_the_server_date(server: FeedServer) -> None:
    # A server clock far from ours must not matter: only the difference counts.
    server_now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    server.route(
        "/rss.xml",
        b"",
        status=503,
        headers={
            "Date": email.utils.format_datetime(server_now, usegmt=True),
            "Retry-After": email.utils.format_datetime(
                server_now + timedelta(seconds=90), usegmt=True
            ),
        },
    )
    error = fail(server.url("/rss.xml"))
    assert (error.status, error.retry_after) == (503, 90.0)


def test_a_retry_after_date_in_the_past_means_now(server: FeedServer) -> None:
    server.route("/rss.xml", b"", status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    error = fail(server.url("/rss.xml"))
    assert (error.status, error.retry_after) == (429, 0.0)


# --- timeouts --------------------------------------------------------------------


def test_slow_server_times_out(server: FeedServer) -> None:
    server.route("/slow.xml", FEED, delay=5)
    error = fail(server.url("/slow.xml"), timeout=0.5)
    assert error.status is None
    assert str(error) == f"{server.url('/slow.xml')}: timed out after 0.5s"


def test_trickling_server_hits_the_overall_deadline(server: FeedServer) -> None:
    # One byte every 50 ms never trips the per-read timeout; only the deadline can.
    server.route("/trickle.xml", FEED, trickle=0.05)
    error = fail(server.url("/trickle.xml"), timeout=1.0)
    assert str(error) == f"{server.url('/trickle.xml')}: timed out after 1s"


def test_explicit_deadline_overrides_client_timeout(server: FeedServer) -> None:
    server.route("/trickle.xml", FEED, trickle=0.05)

    async def run() -> None:
        async with new_client(timeout=30) as client:
            await fetch(client, server.url("/trickle.xml"), timeout=0.5, private=LOCAL)

    with pytest.raises(FetchError, match=r"timed out after 0\.5s$"):
        asyncio.run(run())


# --- size limits and content encodings ---------------------------------------------


def test_declared_length_over_the_cap_is_refused_before_reading(server: FeedServer) -> None:
    server.route("/big.xml", b"x" * 50_000)
    error = fail(server.url("/big.xml"), max_bytes=16 * 1024)
    assert str(error).endswith("response larger than 16 KiB (Content-Length: 48.8 KiB)")


def test_streamed_body_over_the_cap_is_cut_off(server: FeedServer) -> None:
    server.route("/big.xml", b"x" * 50_000, chunked=True)
    error = fail(server.url("/big.xml"), max_bytes=16 * 1024)
    assert str(error).endswith(": response larger than 16 KiB")


def test_endless_body_stops_at_the_cap_not_the_deadline(server: FeedServer) -> None:
    server.route("/endless.xml", b"<rss>", trickle=0.0)
    error = fail(server.url("/endless.xml"), max_bytes=2048, timeout=10)
    assert "response larger than 2 KiB" in str(error)


def test_body_at_the_cap_is_accepted(server: FeedServer) -> None:
    server.route("/exact.xml", b"y" * 4096, chunked=True)
    assert get(server.url("/exact.xml"), max_bytes=4096).content == b"y" * 4096


def test_gzip_body_is_decoded(server: FeedServer) -> None:
    server.route("/rss.xml", FEED, gzip=True)
    assert get(server.url("/rss.xml")).content == FEED


def test_deflate_body_is_decoded(server: FeedServer) -> None:
    server.route("/rss.xml", FEED, deflate=True)
    assert get(server.url("/rss.xml")).content == FEED


def test_raw_deflate_body_is_decoded(server: FeedServer) -> None:
    # Some servers send headerless deflate (RFC 1951) despite RFC 9110.
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = raw.compress(FEED) + raw.flush()
    server.route("/rss.xml", body, headers={"Content-Encoding": "deflate"})
    assert get(server.url("/rss.xml")).content == FEED


def test_gzip_bomb_is_stopped_without_inflating_it(server: FeedServer) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # ~64 KiB on the wire
    server.route("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        error = fail(server.url("/bomb.xml"), max_bytes=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "response larger than 1 MiB" in str(error)
    assert len(bomb) < 1024 * 1024  # the wire size alone would pass the cap
    assert peak < 16 * 1024 * 1024


def test_corrupt_gzip_is_reported(server: FeedServer) -> None:
    server.route("/rss.xml", b"this is not gzip", headers={"Content-Encoding": "gzip"})
    assert "corrupt gzip content" in str(fail(server.url("/rss.xml")))


def test_unsupported_content_encoding_is_reported(server: FeedServer) -> None:
    server.route("/rss.xml", b"\x1b\x00", headers={"Content-Encoding": "br"})
    assert "unsupported Content-Encoding 'br'" in str(fail(server.url("/rss.xml")))


# --- redirects and URL schemes ---------------------------------------------------


def chain(server: FeedServer, hops: int) -> str:
    """/hop0 -> /hop1 -> ... -> /final.xml with ``hops`` redirects in total."""
    server.route("/final.xml", FEED)
    for index in range(hops):
        target = f"/hop{index + 1}" if index + 1 < hops else "/final.xml"
        server.redirect(f"/hop{index}", target, status=301 if index % 2 else 302)
    return server.url("/hop0")


def test_five_redirects_are_followed(server: FeedServer) -> None:
    fetched = get(chain(server, 5))
    assert fetched.content == FEED
    assert fetched.url == server.url("/final.xml")


def test_conditional_headers_survive_redirects(server: FeedServer) -> None:
    server.route("/final.xml", FEED, etag='"v1"')
    server.redirect("/old.xml", "/final.xml", status=301)
    fetched = get(server.url("/old.xml"), etag='"v1"')
    assert fetched.not_modified
    assert fetched.url == server.url("/final.xml")


def test_six_redirects_are_too_many(server: FeedServer) -> None:
    error = fail(chain(server, 6))
    assert str(error) == f"{server.url('/hop0')}: too many redirects (more than 5)"
    assert server.requests_for("/final.xml") == []


def test_redirect_loop_is_too_many_redirects(server: FeedServer) -> None:
    server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    assert "too many redirects" in str(fail(server.url("/a")))


def test_redirect_to_another_scheme_is_refused(server: FeedServer) -> None:
    server.redirect("/rss.xml", "file:///etc/passwd")
    error = fail(server.url("/rss.xml"))
    assert str(error) == (
        f"{server.url('/rss.xml')}: redirected to file:///etc/passwd: "
        "only http and https URLs are supported, not file"
    )


def test_redirect_without_location_is_reported(server: FeedServer) -> None:
    server.route("/rss.xml", b"", status=302)
    error = fail(server.url("/rss.xml"))
    assert error.status == 302
    assert "redirect without a Location header" in str(error)


@pytest.mark.parametrize(
    "url", ["ftp://example.org/feed.xml", "file:///etc/passwd", "feed://example.org/rss"]
)
def test_other_schemes_are_refused_before_any_io(url: str) -> None:
    error = fail(url)
    assert str(error).startswith(f"{url}: only http and https URLs are supported, not ")
    assert error.status is None


def test_connection_refused_is_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/rss.xml"  # nothing listens there any more
    assert str(fail(url)) == f"{url}: connection refused"


# --- the shared client -----------------------------------------------------------


def test_one_client_serves_many_concurrent_fetches(server: FeedServer) -> None:
    for index in range(60):
        server.route(f"/feed/{index}.xml", FEED.replace(b"Wire", b"Wire %d" % index))

    async def run() -> list[Fetched]:
        async with new_client(timeout=5, max_connections=16) as client:
            urls = [server.url(f"/feed/{index}.xml") for index in range(60)]
            return await asyncio.gather(*(fetch(client, url, private=LOCAL) for url in urls))

    results = asyncio.run(run())
    assert [b"Wire %d<" % i in (r.content or b"") for i, r in enumerate(results)] == [True] * 60
