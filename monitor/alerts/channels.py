"""Sending one rendered message to one channel; the only module that imports apprise.

A :class:`Channel` owns one apprise object for its whole life. Apprise keeps its
per-service throttle on that object (at least 5.5 s between two emails, 1.2 s
between two Slack posts, none for json://), so reusing the Channel is what makes
apprise pace a burst of alerts. The throttle sleeps inside ``send()``; run each
channel's sends one after another in a worker thread (``send`` also serialises
them itself), never on the event loop: ``alerts.lanes`` does, and bounds each
send's time.

Apprise's own time limit per service is turned off, and it sends in the calling
thread (no ``async_mode``). With the limit on, apprise runs each send in a small
pool of threads shared by every channel of the process, stops waiting after 60 s
but leaves the thread blocked on a receiver that trickles: a few such receivers
fill the pool and hold up every channel, and the pool's threads are joined at
exit, so the process cannot stop. The lane's timeout replaces it.

``send()`` never raises: apprise answers True/False, so the reason for a failure
is taken from the log lines apprise wrote during that one call (WARNING and
above, redacted) and returned in :class:`SendResult`.

Why not ``apprise.LogCapture``: it attaches a handler to the process-wide
``apprise`` logger and changes that logger's level while active, so with
several channels sending from different threads each capture would collect the
other channels' lines, and the level changes race. Apprise 2.x captures the log
of each ``notify()`` call per service (through contextvars) and returns it in
the call's result, which is exactly one send's log. Apprise's DEBUG lines (which
hold the OS error text, but also payloads and token-bearing URLs) are never
asked for.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monitor import http_headers
from monitor.alerts.render import Message
from monitor.errors import MonitorError
from monitor.logs import log_context
from monitor.redact import channel_secrets, redact_channel_url, redact_text, remember_secrets

if TYPE_CHECKING:
    import apprise
    import requests

# The built-in channel that prints text messages to stdout (not an apprise URL).
CONSOLE_URLS = frozenset({"console", "console://"})

# Message.format -> apprise's NotifyFormat (a str enum of the same values).
BODY_FORMATS: dict[str, str] = {
    "text": "text",
    "markdown": "markdown",
    "html": "html",
}

# Enough for a few of apprise's lines; the alert row keeps the reason.
REASON_LIMIT = 500
_REASON_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})

# One process-wide lock so console output of concurrent channels never interleaves.
_CONSOLE_LOCK = threading.Lock()


class ChannelURLError(MonitorError, ValueError):
    """A channel URL apprise cannot use. The message quotes the URL redacted."""

    def __init__(self, redacted_url: str, problem: str, field: str = "url"):
        self.redacted_url = redacted_url
        self.problem = problem
        self.field = field  # the channel setting at fault: "url" or "webhook_base"
        super().__init__(f"{problem}: {redacted_url}")


@dataclass(frozen=True)
class SendResult:
    ok: bool
    # Apprise's captured log for a failure (redacted), e.g. "...error=500."
    reason: str | None
    # Apprise does not expose the receiver's Retry-After header; always None for now.
    retry_after: float | None = None


def is_console(url: str) -> bool:
    return url.strip().lower() in CONSOLE_URLS


@functools.cache
def _apprise() -> Any:
    """The apprise module, imported on first use: 0.1 s, and a third of a second more when the
    first URL makes it load its plugins, which a run that builds no channel never pays.
    Requests' sends are observed from then on (see Retry-After below)."""
    import apprise
    import requests

    if not getattr(requests.Session.send, "news_monitor_observer", False):
        requests.Session.send = _observe_retry_after(requests.Session.send)  # type: ignore[method-assign]
    return apprise


def _asset() -> apprise.AppriseAsset:
    return _apprise().AppriseAsset(
        app_id="news-monitor",
        app_desc="news-monitor alerts",
        app_url="https://github.com/news-monitor/news-monitor",
        # Nothing written under the service user's home; the outbox is our memory.
        storage_mode="memory",
        # Send in the caller's thread with no time limit of apprise's: see the module's docstring.
        service_timeout=0,
        async_mode=False,
    )


def _load(url: str, asset: apprise.AppriseAsset) -> Any:
    """The apprise plugin instance for ``url``, or ChannelURLError saying why not."""
    redacted = redact_channel_url(url)
    secrets = channel_secrets(url)
    remember_secrets(secrets)  # apprise's and urllib3's own log lines may quote them (a webhook's path)
    if "://" not in url:
        raise ChannelURLError(redacted, "not an apprise URL (expected scheme://...)")
    scheme = url.strip().split("://", 1)[0].lower()
    try:
        plugin = _apprise().Apprise.instantiate(url, asset=asset, suppress_exceptions=False)
    except Exception as error:
        # Plugins raise TypeError naming the bad part, sometimes quoting a token.
        problem = redact_text(str(error).strip() or type(error).__name__, secrets)
        raise ChannelURLError(redacted, f"invalid {scheme}:// URL ({problem})") from None
    if plugin is None:
        known = scheme in _apprise().NotificationManager()
        problem = (
            f"apprise could not parse this {scheme}:// URL or the {scheme}:// plugin is disabled"
            if known
            else f"apprise has no {scheme}:// channel"
        )
        raise ChannelURLError(redacted, problem)
    return plugin


def _post_webhooks_to(plugin: Any, base: str, redacted_url: str) -> None:
    """Make a Slack webhook channel post to ``base`` instead of Slack's fixed host.

    Apprise keeps the host in a class attribute; set on this one plugin object,
    it moves this channel only.
    """
    from apprise.plugins.slack import NotifySlack, SlackMode

    if not isinstance(plugin, NotifySlack) or plugin.mode is not SlackMode.WEBHOOK:
        raise ChannelURLError(
            redacted_url, "webhook_base applies to Slack webhook URLs only (slack://A/B/C)", field="webhook_base"
        )
    plugin.webhook_url = base


def validate_url(url: str) -> str | None:
    """None if ``url`` can make a Channel, else the (redacted) error message."""
    if is_console(url):
        return None
    try:
        _load(url, _asset())
    except ChannelURLError as error:
        return str(error)
    return None


def _trim(text: str, limit: int = REASON_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- Retry-After ----------------------------------------------------------------
# apprise answers True/False and drops the receiver's response, so a webhook's
# "Retry-After" (429 Too Many Requests, 503 Unavailable) would be lost. Its
# HTTP plugins send through requests, so we observe every response requests
# hands back. Each send puts a fresh box in a context variable; apprise runs
# the plugin in the calling thread (or, were it to use a worker thread, with a
# copy of our context for its own log capture), so the plugin's responses land
# in the box of the send that made them. Observing only; requests' behaviour is
# unchanged.


@dataclass
class _RetryAfterBox:
    seconds: float | None = None


_RETRY_AFTER: contextvars.ContextVar[_RetryAfterBox | None] = contextvars.ContextVar("retry_after", default=None)
_RETRY_STATUSES = frozenset({429, 503})


def _observe_retry_after(send: Any) -> Any:
    @functools.wraps(send)
    def observed(session: requests.Session, request: Any, **kwargs: Any) -> Any:
        response = send(session, request, **kwargs)
        box = _RETRY_AFTER.get()
        if box is not None and response.status_code in _RETRY_STATUSES:
            box.seconds = http_headers.retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        return response

    observed.news_monitor_observer = True  # type: ignore[attr-defined]
    return observed


class Channel:
    """One destination for alerts: an apprise URL, or "console" for stdout.

    Raises ChannelURLError (a ValueError) at construction for a URL apprise
    cannot use. ``redacted_url`` is safe to log.
    """

    def __init__(self, name: str, url: str, *, webhook_base: str | None = None) -> None:
        self.name = name
        self.redacted_url = redact_channel_url(url)
        self._secrets = channel_secrets(url)
        self._console = is_console(url)
        # Sends are sequential per channel: apprise's throttle state is per object.
        self._lock = threading.Lock()
        self._apprise: apprise.Apprise | None = None
        if not self._console:
            asset = _asset()
            plugin = _load(url, asset)
            if webhook_base:
                _post_webhooks_to(plugin, webhook_base, self.redacted_url)
            self._apprise = _apprise().Apprise(asset=asset)
            self._apprise.add(plugin)

    def __repr__(self) -> str:
        return f"Channel({self.name!r}, {self.redacted_url!r})"

    def send(self, message: Message) -> SendResult:
        """Deliver ``message``; blocking (network and apprise's throttle). Never raises."""
        with self._lock:
            try:
                if self._apprise is None:
                    return self._print(message)
                return self._notify(self._apprise, message)
            except Exception as error:
                return SendResult(False, self._reason(f"{type(error).__name__}: {error}"))

    def _print(self, message: Message) -> SendResult:
        text = f"{message.title}\n{message.body}".rstrip("\n") + "\n"
        with _CONSOLE_LOCK:
            # Looked up per call so redirected stdout (tests, the CLI) is honoured.
            sys.stdout.write(text)
            sys.stdout.flush()
        return SendResult(True, None)

    def _notify(self, app: apprise.Apprise, message: Message) -> SendResult:
        body_format = BODY_FORMATS.get(message.format)
        if body_format is None:
            return SendResult(False, f"unknown message format {message.format!r}")
        box = _RetryAfterBox()
        token = _RETRY_AFTER.set(box)
        try:
            with log_context(channel=self.name):  # apprise's own log lines say which channel they are about
                result = app.notify(
                    body=message.body,
                    title=message.title,
                    body_format=body_format,
                    log_level=logging.WARNING,
                )
        finally:
            _RETRY_AFTER.reset(token)
        with result:  # releases apprise's temporary log storage
            if result:
                return SendResult(True, None)
            lines = [entry.message.strip() for entry in result.logs() if entry.level in _REASON_LEVELS]
            status = result.status.name.lower()
            reason = " | ".join(dict.fromkeys(line for line in lines if line))
            retry_after = box.seconds
            if retry_after is not None:
                reason = f"{reason} (the receiver asked to retry after {retry_after:g}s)"
            return SendResult(False, self._reason(reason or f"apprise reported {status}"), retry_after)

    def _reason(self, text: str) -> str:
        return _trim(redact_text(text, self._secrets))
