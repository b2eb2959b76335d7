"""Is a feed healthy? Pure: the clock and the feed's history are passed in.

A feed is *failing* when its polls have failed for longer than a threshold,
and *silent* when it has published nothing for far longer than its usual
rhythm (a feed that went quiet is often a feed that moved). The daemon reports
each change of state to the admin channel once: when a feed goes bad, and
when it recovers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.durations import format_duration
from monitor.redact import redact_text
from monitor.store.records import FeedHistory
from monitor.store.records import HealthState as State

__all__ = ["Assessment", "FeedHistory", "HealthSettings", "State", "assess", "change_to_report", "silence_threshold"]

RHYTHM_WINDOW = timedelta(days=28)  # how far back a feed's usual rhythm is measured


@dataclass(frozen=True)
class HealthSettings:
    failing_after: timedelta = timedelta(hours=6)
    silence_factor: float = 4.0  # silent when quiet for this many usual gaps between items...
    min_silence: timedelta = timedelta(days=1)  # ...and at least this long
    min_items: int = 4  # fewer items in RHYTHM_WINDOW: too little to know a rhythm


@dataclass(frozen=True)
class Assessment:
    state: State
    message: str


def assess(feed: FeedHistory, now: datetime, settings: HealthSettings) -> Assessment:
    """The feed's state now, and a sentence saying why."""
    if feed.failing_since is not None and now - feed.failing_since >= settings.failing_after:
        return Assessment(
            "failing",
            f"feed {feed.name!r} has failed every poll for {format_duration(now - feed.failing_since)}: "
            f"{redact_text(feed.last_error or 'no reason recorded')}",  # an error may quote the URL's credentials
        )
    silence = silence_threshold(feed.items_in_window, settings)
    if silence is not None and feed.last_item_at is not None and now - feed.last_item_at >= silence:
        rhythm = RHYTHM_WINDOW / feed.items_in_window
        return Assessment(
            "silent",
            f"feed {feed.name!r} has published nothing for {format_duration(now - feed.last_item_at)}; "
            f"it usually publishes every {format_duration(rhythm)}",
        )
    return Assessment("ok", f"feed {feed.name!r} is working again")


def silence_threshold(items_in_window: int, settings: HealthSettings) -> timedelta | None:
    """How long a feed with this rhythm may stay quiet; None when it has no rhythm to judge by."""
    if items_in_window < settings.min_items:
        return None
    return max(settings.min_silence, (RHYTHM_WINDOW / items_in_window) * settings.silence_factor)


def change_to_report(feed: FeedHistory, assessment: Assessment) -> str | None:
    """The message for the admin channel when the state changed, else None."""
    if assessment.state == feed.state:
        return None
    if assessment.state == "ok":
        return f"recovered: {assessment.message}"
    return assessment.message
