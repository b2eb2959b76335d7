"""WebSub (W3C Recommendation, 2018) as a subscriber speaks it. Pure: no I/O, clock or randomness.

    a poll sees a hub ─ discover ─ subscribe_form ─ POST to the hub (feeds.fetch.post_form)
    hub: GET <callback>/<token>?hub.mode&hub.topic&hub.challenge&hub.lease_seconds ─ read_verification ─ answer
    hub: POST <callback>/<token> + X-Hub-Signature ─ signature_valid ─ the pushed feed, parsed like a poll
    renew_at ─ subscribe again before the lease ends;  a removed feed ─ unsubscribe_form

What runs it (the callback server, the store, the requests to hubs) is
:mod:`monitor.subscriber`. Times come in as arguments; tokens and secrets are
made by the caller (from :mod:`secrets`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from monitor.store.records import Subscription

__all__ = [
    "Advert",
    "Answer",
    "Step",
    "Verification",
    "answer",
    "callback_url",
    "discover",
    "is_fresh",
    "next_step",
    "read_verification",
    "signature_valid",
    "subscribe_form",
    "unsubscribe_form",
]

# The HMAC methods a hub may sign with (WebSub 8: sha1, sha256, sha384, sha512).
SIGNATURE_METHODS: Mapping[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
SECRET_MAX_BYTES = 200  # WebSub 5.1: hub.secret MUST be less than 200 bytes
URL_MAX_CHARS = 2048  # a hub or topic longer than this is not subscribed to
CHALLENGE_MAX_CHARS = 1024  # a longer hub.challenge is not echoed
RENEW_MARGIN = timedelta(days=1)  # renew this long before the lease ends (half the lease when shorter)
RENEW_AFTER = timedelta(seconds=10)  # the soonest a renewal follows a verification
VERIFY_WAIT = timedelta(minutes=10)  # a hub that has not verified by then is asked again
RETRY_FAILED = timedelta(minutes=30)  # a hub that failed is asked again after this long
RETRY_DENIED = timedelta(days=1)  # a hub that refused is asked again after this long
FORGET_UNSUBSCRIBING = timedelta(days=1)  # an unsubscription never verified is dropped after this long


# --- discovery -------------------------------------------------------------------------


@dataclass(frozen=True)
class Advert:
    """A feed's WebSub link pair: the hub to ask, and the topic URL to ask about."""

    hub: str
    topic: str


def discover(
    url: str,
    *,
    header_hubs: Sequence[str] = (),
    header_self: str | None = None,
    feed_hubs: Sequence[str] = (),
    feed_self: str | None = None,
) -> Advert | None:
    """The hub and topic a retrieved feed advertises, or None.

    The HTTP Link header is looked at first, then the document (WebSub 4);
    the first usable hub wins. The topic is rel="self", else the URL the feed
    was retrieved from.
    """
    base_hubs, base_self = (header_hubs, header_self) if header_hubs else (feed_hubs, header_self or feed_self)
    hub = next((found for link in base_hubs if (found := _usable_url(link, url))), None)
    if hub is None:
        return None
    topic = _usable_url(base_self, url) if base_self else None
    return Advert(hub, topic or url)


def _usable_url(link: str | None, base: str) -> str | None:
    if not link or len(link) > URL_MAX_CHARS:
        return None
    absolute = urljoin(base, link.strip())
    parts = urlsplit(absolute)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return absolute


# --- the requests to the hub -------------------------------------------------------------


def callback_url(base: str, token: str) -> str:
    """The callback of one subscription: the configured callback plus its token as the last path segment."""
    return f"{base.rstrip('/')}/{token}"


def subscribe_form(*, topic: str, callback: str, secret: str, lease: timedelta) -> dict[str, str]:
    """The form body of a subscription request (WebSub 5.1)."""
    if len(secret.encode()) >= SECRET_MAX_BYTES:
        raise ValueError(f"a WebSub secret must be shorter than {SECRET_MAX_BYTES} bytes")
    return {
        "hub.mode": "subscribe",
        "hub.topic": topic,
        "hub.callback": callback,
        "hub.secret": secret,
        "hub.lease_seconds": str(int(lease.total_seconds())),
    }


def unsubscribe_form(*, topic: str, callback: str) -> dict[str, str]:
    return {"hub.mode": "unsubscribe", "hub.topic": topic, "hub.callback": callback}


# --- the hub's verification of intent -------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """A hub's GET to a callback (WebSub 5.3), or its notice that it denied the subscription (5.2)."""

    mode: Literal["subscribe", "unsubscribe", "denied"]
    topic: str
    challenge: str | None = None
    lease_seconds: int | None = None
    reason: str | None = None


def read_verification(query: Mapping[str, str]) -> Verification | None:
    """The verification a query string carries; None when it is not one we can answer."""
    mode = query.get("hub.mode")
    topic = query.get("hub.topic")
    if not topic:
        return None
    if mode == "denied":
        return Verification("denied", topic, reason=(query.get("hub.reason") or "")[:500] or None)
    if mode not in ("subscribe", "unsubscribe"):
        return None
    challenge = query.get("hub.challenge")
    if not challenge or len(challenge) > CHALLENGE_MAX_CHARS:
        return None
    lease = query.get("hub.lease_seconds", "")
    lease_seconds = int(lease) if lease.isascii() and lease.isdigit() and len(lease) <= 10 else None
    if mode == "subscribe" and lease_seconds is None:
        return None  # REQUIRED for subscriptions (WebSub 5.3)
    return Verification(mode, topic, challenge, lease_seconds)


class Answer(StrEnum):
    """What to do with a verification request."""

    CONFIRM = "confirm"  # echo the challenge: the subscription is active until the lease ends
    UNSUBSCRIBED = "unsubscribed"  # echo the challenge, then forget the subscription
    DENIED = "denied"  # 200, and keep the hub's reason on the subscription
    REFUSE = "refuse"  # 404: not a subscription we asked for, or not its topic


def answer(verification: Verification, subscription: Subscription | None) -> Answer:
    """Confirm only what we asked for: this subscription, this topic, this mode (WebSub 5.3.1)."""
    if subscription is None or verification.topic != subscription.topic:
        return Answer.REFUSE
    if verification.mode == "subscribe":
        # "failed" too: a hub may verify although its answer to our request was an error
        wanted = subscription.feed_active and subscription.state in ("requested", "active", "failed")
        return Answer.CONFIRM if wanted else Answer.REFUSE
    if verification.mode == "unsubscribe":
        return Answer.UNSUBSCRIBED if subscription.state == "unsubscribing" else Answer.REFUSE
    return Answer.DENIED if subscription.state in ("requested", "active") else Answer.REFUSE


def lease_end(now: datetime, lease_seconds: int | None, asked: timedelta) -> datetime:
    """Until when a verified subscription lasts: the hub's lease, else what we asked (capped at a year)."""
    seconds = asked.total_seconds() if lease_seconds is None else min(lease_seconds, 366 * 86400)
    return now + timedelta(seconds=seconds)


# --- content distribution -------------------------------------------------------------------


def signature_valid(header: str | None, body: bytes, secret: str) -> bool:
    """Whether ``X-Hub-Signature: method=hexdigest`` is the HMAC of ``body`` with ``secret`` (WebSub 8).

    A missing header, an unknown method or a malformed digest is invalid: a
    subscription made with a secret accepts signed content only.
    """
    if not header:
        return False
    method, _, digest = header.strip().partition("=")
    algorithm = SIGNATURE_METHODS.get(method.strip().lower())
    if algorithm is None or not digest:
        return False
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    return hmac.compare_digest(expected.encode(), digest.strip().lower().encode("utf-8", "replace"))


# --- the life of a subscription ---------------------------------------------------------------


def is_fresh(subscription: Subscription, now: datetime) -> bool:
    """Pushed to now: verified and within its lease (a renewal under way keeps the lease it has)."""
    return (
        subscription.state in ("active", "requested")
        and subscription.lease_until is not None
        and subscription.lease_until > now
    )


def renew_at(subscription: Subscription) -> datetime | None:
    """When to ask for a new lease: a day before it ends, or halfway through a lease shorter than two days."""
    if subscription.verified_at is None or subscription.lease_until is None:
        return None
    lease = subscription.lease_until - subscription.verified_at
    # Never sooner than RENEW_AFTER: a hub granting leases of a second must not have us asking it in a loop.
    return max(subscription.verified_at + RENEW_AFTER, subscription.lease_until - min(lease / 2, RENEW_MARGIN))


class Step(StrEnum):
    SUBSCRIBE = "subscribe"  # ask the hub (again): a renewal, a retry
    UNSUBSCRIBE = "unsubscribe"  # the feed is gone, or the subscription was replaced
    FORGET = "forget"  # drop the row without asking anyone


def next_step(subscription: Subscription, now: datetime, *, current: bool = True) -> Step | None:
    """What a subscription needs now, if anything.

    ``current`` is False for a subscription that a newer one of its feed
    replaced (the feed moved to another hub or topic).
    """
    state = subscription.state
    if state == "unsubscribing":
        return Step.FORGET if now - subscription.requested_at >= FORGET_UNSUBSCRIBING else None
    if not subscription.feed_active or not current:
        # Only a hub that may be pushing needs to be told; the others are just forgotten.
        return Step.UNSUBSCRIBE if state in ("requested", "active") else Step.FORGET
    if state == "active":
        renew = renew_at(subscription)
        return Step.SUBSCRIBE if renew is None or now >= renew else None
    waited = now - subscription.requested_at
    if state == "requested":
        return Step.SUBSCRIBE if waited >= VERIFY_WAIT else None
    if state == "failed":
        return Step.SUBSCRIBE if waited >= RETRY_FAILED else None
    return Step.SUBSCRIBE if waited >= RETRY_DENIED else None
