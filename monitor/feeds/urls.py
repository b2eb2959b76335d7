"""PURE: what a feed URL may be, one rule for every way a feed enters.

``monitor.yaml`` feeds, ``feeds add``, ``feeds import`` (OPML), the feed a web
page links to and every redirect a retrieval follows all pass through
:func:`check_feed_url`, so a URL refused on one way in is refused on all of
them: only absolute ``http://`` and ``https://`` URLs with a host name, of a
bounded length, without spaces or control characters.

Which *addresses* a feed may reach (private networks, this machine) is decided
at connect time, after name resolution, by ``feeds/fetch.py``: a URL alone
cannot say where a name will point tomorrow.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from monitor.errors import FeedUrlError
from monitor.redact import redact_url

__all__ = ["MAX_URL_LENGTH", "check_feed_url", "shown_url"]

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
# How much of a refused URL an error message quotes.
_SHOWN_LENGTH = 120
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Host names the HTTP client takes as they are; others (IDNA, IP literals) are read as it reads them.
_PLAIN_HOST = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$")
_NUMERIC_HOST = re.compile(r"^[0-9.]+$")


def check_feed_url(url: str) -> str:
    """``url`` without surrounding blanks, or FeedUrlError saying why it cannot be a feed.

    >>> check_feed_url(" https://example.org/rss.xml ")
    'https://example.org/rss.xml'
    """
    if not isinstance(url, str):
        raise FeedUrlError(repr(url), "not a URL")
    url = url.strip()
    if not url:
        raise FeedUrlError("''", "not a URL: it is empty")
    shown = shown_url(url)
    if len(url) > MAX_URL_LENGTH:
        raise FeedUrlError(shown, f"URL longer than {MAX_URL_LENGTH:,} characters ({len(url):,})")
    if _SPACE_OR_CONTROL.search(url):
        raise FeedUrlError(shown, "a URL cannot contain spaces or control characters (percent-encode them)")
    scheme = _SCHEME.match(url)
    if scheme is None:
        raise FeedUrlError(shown, "a relative URL: give the full address, starting with http:// or https://")
    if scheme.group(1).lower() not in SCHEMES:
        raise FeedUrlError(shown, f"only http and https URLs are supported, not {scheme.group(1).lower()}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FeedUrlError(shown, f"not a valid URL: {exc}") from None
    if not url[scheme.end() :].startswith("//") or not parts.hostname:
        raise FeedUrlError(shown, "no host name (expected http://host/...)")
    if port == 0:
        raise FeedUrlError(shown, "not a valid URL: port 0")
    if not _PLAIN_HOST.match(parts.hostname) or _NUMERIC_HOST.match(parts.hostname):
        _check_host(shown, url)
    return url


def shown_url(url: str) -> str:
    """``url`` as an error message may quote it: credentials hidden (``redact_url``), length bounded."""
    url = redact_url(url)
    return url if len(url) <= _SHOWN_LENGTH else url[: _SHOWN_LENGTH - 1] + "…"


def _check_host(shown: str, url: str) -> None:
    """The host as the HTTP client will read it (IDNA names, IP literals)."""
    import httpx  # here, not at the top: loading a config needs this module, not an HTTP client

    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FeedUrlError(shown, f"not a valid URL: {exc}") from None
