"""monitor.http_headers: Retry-After, HTTP-dates and Content-Type, including what hostile servers send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.http_headers import MAX_DELTA_SECONDS, charset, http_date, media_type, parameter, retry_after

NOON = datetime(2025, 1, 14, 12, 0, tzinfo=UTC)
CAP = float(MAX_DELTA_SECONDS)


# --- Retry-After --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("3600", 3600.0),
        (" 5 ", 5.0),
        ("1.5", 1.5),  # not HTTP, but some receivers send fractions
        ("0", 0.0),
        ("007", 7.0),
        ("Tue, 14 Jan 2025 12:02:00 GMT", 120.0),
        ("Tue, 14 Jan 2025 13:02:00 +0100", 120.0),
        ("Tue, 14 Jan 2025 12:02:00 -0000", 120.0),
        ("Tuesday, 14-Jan-25 12:02:00 GMT", 120.0),  # RFC 850, obsolete but still to be read
        ("Tue Jan 14 12:02:00 2025", 120.0),  # asctime, no zone: UTC
        ("Tue, 14 Jan 2025 11:00:00 GMT", 0.0),  # already past
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # long past
        ("-5", None),
        ("soon", None),
        ("later please", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_retry_after_forms(value: str | None, seconds: float | None) -> None:
    assert retry_after(value, NOON) == seconds


def test_a_retry_after_date_is_measured_from_the_now_given() -> None:
    # A caller passes the response's Date as now: only the server's own difference counts.
    served_at = http_date("Wed, 21 Oct 2015 07:28:00 GMT")
    assert served_at is not None
    assert retry_after("Wed, 21 Oct 2015 07:30:00 GMT", served_at) == 120.0
    assert retry_after("120", served_at) == 120.0  # delta-seconds do not depend on now


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        # Huge values are capped, never inf or an overflow.
        ("99999999999999999999", CAP),
        ("9" * 400, CAP),  # float() of this is inf
        ("9" * 5000, CAP),  # int() refuses more than 4300 digits
        (str(MAX_DELTA_SECONDS + 1), CAP),
        (str(MAX_DELTA_SECONDS - 1), CAP - 1),
        ("Fri, 31 Dec 9999 23:59:59 GMT", CAP),
        # Dates datetime cannot hold.
        ("Fri, 31 Dec 9999 23:30:00 -0100", None),
        ("Mon, 01 Jan 99999 00:00:00 GMT", None),
        ("Mon, 01 Jan 2025 00:00:00 +9999", None),
        ("Mon, 01 Jan 0001 00:00:00 GMT", 0.0),
        # Numbers that are not delta-seconds.
        ("-0", None),
        ("+5", None),
        ("5s", None),
        ("5 s", None),
        ("1e3", None),
        ("0x10", None),
        (".5", None),
        ("5.", None),
        ("1.5.2", None),
        ("1,5", None),
        ("inf", None),
        ("nan", None),
        ("Infinity", None),
        # Non-ASCII digits: int() and float() read some of them, HTTP does not.
        ("١٢٠", None),
        ("１２０", None),
        ("²", None),
        ("120\u00a0", 120.0),  # surrounding whitespace of any kind is still whitespace
        ("é" * 100, None),
        ("\x00", None),
        ("120\x00", None),
        ("a" * 100_000, None),
    ],
)
def test_retry_after_survives_hostile_values(value: str, seconds: float | None) -> None:
    assert retry_after(value, NOON) == seconds


def test_retry_after_is_never_negative_nor_beyond_the_cap() -> None:
    for value in ("0", "1", "Tue, 14 Jan 2025 11:59:59 GMT", "Sat, 01 Jan 2000 00:00:00 GMT", "9" * 30):
        seconds = retry_after(value, NOON)
        assert seconds is not None and 0.0 <= seconds <= CAP
        timedelta(seconds=seconds)  # always fits a timedelta


def test_retry_after_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        retry_after("120", datetime(2025, 1, 14, 12, 0))


# --- HTTP-dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 14 Jan 2025 12:00:00 GMT", NOON),
        ("Tue, 14 Jan 2025 13:00:00 +0100", NOON),
        ("Tue, 14 Jan 2025 12:00:00 -0000", NOON),
        ("  Tue, 14 Jan 2025 12:00:00 GMT  ", NOON),
        ("Tuesday, 14-Jan-25 12:00:00 GMT", NOON),
        ("Tue Jan 14 12:00:00 2025", NOON),
        ("Mon, 04 May 2026 14:00:00 GMT", datetime(2026, 5, 4, 14, 0, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("0", None),  # Expires: 0 means "already expired", and is no date
        ("-1", None),
        ("soon", None),
        ("Tue, 14 Jan 2025 25:00:00 GMT", None),
        ("Mon, 01 Jan 99999 00:00:00 GMT", None),
        ("Mon, 01 Jan 2025 00:00:00 +9999", None),
        ("Fri, 31 Dec 9999 23:30:00 -0100", None),  # past year 9999 in UTC
        ("é" * 100, None),
        ("\x00", None),
    ],
)
def test_http_date(value: str | None, expected: datetime | None) -> None:
    assert http_date(value) == expected


def test_http_dates_come_back_in_utc() -> None:
    for value in ("Tue, 14 Jan 2025 13:00:00 +0100", "Tue, 14 Jan 2025 12:00:00 -0000", "Tue Jan 14 12:00:00 2025"):
        parsed = http_date(value)
        assert parsed is not None and parsed.tzinfo is UTC


# --- Content-Type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/rss+xml", "application/rss+xml"),
        ("Application/RSS+XML; charset=utf-8", "application/rss+xml"),
        ("  text/HTML  ;", "text/html"),
        ("text/html;charset=utf-8", "text/html"),
        ("application/vnd.api+json", "application/vnd.api+json"),
        (None, None),
        ("", None),
        ("; charset=utf-8", None),
        ("html", None),
        ("text/", None),
        ("/html", None),
        ("text/html/extra", None),
        ("text /html", None),
        ("tëxt/html", None),
        ("text/html\x00", None),
        ("a" * 10_000, None),
    ],
)
def test_media_type(content_type: str | None, expected: str | None) -> None:
    assert media_type(content_type) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html; charset=utf-8", "utf-8"),
        ("text/html; charset=UTF8", "utf-8"),
        ('text/xml; charset="Windows-1251"', "cp1251"),
        ("text/xml; CHARSET = 'ISO-8859-1'", "iso8859-1"),
        ("text/plain; format=flowed; charset=latin1", "iso8859-1"),
        ("text/html; charset=utf-8; charset=latin1", "utf-8"),  # the first counts
        ("text/html", None),
        (None, None),
        ("", None),
        ("text/html; charset=", None),
        ('text/html; charset=""', None),
        ("text/html; charset", None),
        ("text/html; charset=x-no-such-thing", None),
        # Python codecs that are not text encodings: bytes.decode() refuses them.
        ("text/html; charset=zlib", None),
        ("text/html; charset=rot13", None),
        ("text/html; charset=base64", None),
        ("text/html; charset=hex", None),
        ("text/html; charset=undefined", None),
        # Hostile labels.
        ("text/html; charset=utf-8\x00", None),
        ("text/html; charset=ütf-8", None),
        ("text/html; charset=" + "x" * 10_000, None),
        ("text/html; charset=../../etc/passwd", None),
    ],
)
def test_charset(content_type: str | None, expected: str | None) -> None:
    assert charset(content_type) == expected


def test_a_charset_is_always_usable_to_decode() -> None:
    for label in ("utf-8", "cp1251", "latin1", "shift_jis", "utf-16", "koi8-r", "gb2312"):
        name = charset(f"text/html; charset={label}")
        assert name is not None
        b"<p>".decode(name, "replace")


@pytest.mark.parametrize(
    ("content_type", "name", "expected"),
    [
        ("text/xml; charset=X-Unknown", "charset", "X-Unknown"),  # as written, even unknown
        ('text/xml; Charset="utf-8"', "CHARSET", "utf-8"),
        ("text/plain; format=flowed", "format", "flowed"),
        ("text/plain; format=flowed", "charset", None),
        ("text/plain; charset=", "charset", None),
        (None, "charset", None),
    ],
)
def test_parameter(content_type: str | None, name: str, expected: str | None) -> None:
    assert parameter(content_type, name) == expected
