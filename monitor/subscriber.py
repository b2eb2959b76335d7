"""WebSub in the running daemon: subscribing to the hubs that feeds advertise, answering them, taking their pushes.

    a poll saw a hub ─ discovered ─ store: new subscription (token, secret) ─ POST subscribe to the hub
    hub GET  <callback>/<token> ─ websub.answer ─ store: active until the lease ends | 404
    hub POST <callback>/<token> ─ X-Hub-Signature checked ─ Runtime.push (parse, analyse, one transaction)
    tick ─ websub.next_step of each subscription ─ renew, retry, unsubscribe (feed removed or moved), forget

The protocol's rules are :mod:`monitor.feeds.websub` (pure); the HTTP server is
:mod:`monitor.callback`; requests to hubs go out through
:func:`monitor.feeds.fetch.post_form`, as a feed's would. Polling goes on as
the safety net: a feed whose subscription is verified and within its lease is
polled every ``poll.max_interval`` (:meth:`Subscriber.pushes`).

A push is acknowledged once it is stored, so a hub whose push was cut short
sends it again; a push that alerted once does not alert again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from urllib.parse import urlsplit

from monitor.callback import CallbackServer, Request, Response, text
from monitor.config import WebSubSettings
from monitor.errors import FeedError, NotFoundError
from monitor.feeds import websub
from monitor.feeds.addresses import PUBLIC_ONLY, PrivateAccess, private_access
from monitor.feeds.fetch import post_form
from monitor.pipeline import PollReport, Runtime
from monitor.redact import redact_url
from monitor.store import FeedState, Storage, Subscription, SubscriptionState

log = logging.getLogger("monitor.websub")

TICK_SECONDS = 10.0  # how often subscriptions are looked after (renewals, retries, removals)
PUSHES_AT_ONCE = 4  # pushes being parsed and analysed at the same time


class Subscriber:
    """The daemon's WebSub subscriptions: one callback server, requests to hubs, pushes into the pipeline.

    Everything runs on the daemon's event loop (the store is used from it
    only). ``on_push`` hears about each push taken, as the daemon hears about
    polls (to deliver its alerts at once and count it).
    """

    def __init__(
        self,
        settings: WebSubSettings,
        runtime: Runtime,
        clock: Callable[[], datetime],
        *,
        on_push: Callable[[PollReport], None] = lambda report: None,
    ):
        assert settings.callback is not None, "a Subscriber needs websub.callback"
        self.settings = settings
        self.callback = settings.callback
        self.runtime = runtime
        self.clock = clock
        self.on_push = on_push
        self.server = CallbackServer(
            self.handle,
            settings.host,
            settings.port,
            max_body=lambda: runtime.setup.config.settings.poll.max_bytes,
            admit=self.admit,
            allow_remote=settings.allow_remote,
        )
        self._prefix = urlsplit(settings.callback).path.rstrip("/") + "/"
        self._busy: set[str] = set()  # feeds ("feed:<id>") and subscriptions (tokens) with a request to a hub in flight
        self._pushes = asyncio.Semaphore(PUSHES_AT_ONCE)

    @property
    def store(self) -> Storage:
        return self.runtime.store

    async def start(self) -> None:
        await self.server.start()
        self.runtime.pushed = self.pushes

    async def stop(self) -> None:
        self.runtime.pushed = lambda feed_id, now: False
        await self.server.stop()

    def pushes(self, feed_id: int, now: datetime) -> bool:
        """Whether a hub pushes this feed now: a verified subscription within its lease."""
        return any(websub.is_fresh(one, now) for one in self.store.subscriptions(feed_id))

    # --- subscribing ---------------------------------------------------------------------

    async def discovered(self, feed: FeedState, advert: websub.Advert) -> None:
        """A poll saw the feed advertise a hub: subscribe, unless its current subscription is to that hub and topic.

        A subscription it replaces is unsubscribed by the next :meth:`tick`.
        """
        try:
            await self._discovered(feed, advert)
        except Exception:  # a failure here must not go unseen, nor stop the polls
            log.exception("websub.subscribe_crashed", extra={"feed": feed.name})

    async def _discovered(self, feed: FeedState, advert: websub.Advert) -> None:
        key = f"feed:{feed.id}"
        if key in self._busy:
            return
        current = [one for one in self.store.subscriptions(feed.id) if one.state != "unsubscribing"]
        if current and (current[-1].hub, current[-1].topic) == (advert.hub, advert.topic):
            return  # tick() renews and retries it
        self._busy.add(key)
        try:
            subscription = self.store.add_subscription(
                feed.id,
                hub=advert.hub,
                topic=advert.topic,
                token=secrets.token_urlsafe(18),
                secret=secrets.token_urlsafe(32),
                now=self.clock(),
            )
            log.info(
                "websub.discovered",
                extra={"feed": feed.name, "hub": redact_url(advert.hub), "topic": redact_url(advert.topic)},
            )
            await self._ask(subscription, "subscribe", self._access(feed))
        finally:
            self._busy.discard(key)

    async def tick(self) -> None:
        """Renew what nears the end of its lease, retry what failed, unsubscribe what is no longer wanted."""
        now = self.clock()
        subscriptions = self.store.subscriptions()
        newest: dict[int, int] = {}
        for one in subscriptions:
            if one.state != "unsubscribing":
                newest[one.feed_id] = one.id
        work = []
        for one in subscriptions:
            if one.token in self._busy or f"feed:{one.feed_id}" in self._busy:
                continue
            step = websub.next_step(one, now, current=newest.get(one.feed_id) == one.id)
            if step is websub.Step.FORGET:
                self.store.remove_subscription(one.token)
                log.info("websub.forgotten", extra={"feed": one.feed, "hub": redact_url(one.hub), "state": one.state})
            elif step is not None:
                work.append(self._step(one, step))
        await asyncio.gather(*work)

    async def _step(self, subscription: Subscription, step: websub.Step) -> None:
        self._busy.add(subscription.token)
        try:
            access = self._access_for(subscription)
            await self._ask(subscription, "subscribe" if step is websub.Step.SUBSCRIBE else "unsubscribe", access)
        finally:
            self._busy.discard(subscription.token)

    async def _ask(self, subscription: Subscription, mode: str, access: PrivateAccess) -> None:
        """Send a (un)subscription request; the hub's verification of intent comes to the callback server."""
        callback = websub.callback_url(self.callback, subscription.token)
        if mode == "subscribe":
            form = websub.subscribe_form(
                topic=subscription.topic, callback=callback, secret=subscription.secret, lease=self.settings.lease
            )
            self.store.mark_subscription(subscription.token, "requested", self.clock())
        else:
            form = websub.unsubscribe_form(topic=subscription.topic, callback=callback)
            self.store.mark_subscription(subscription.token, "unsubscribing", self.clock())
        where = {"feed": subscription.feed, "hub": redact_url(subscription.hub), "mode": mode}
        timeout = self.runtime.setup.config.settings.poll.timeout.total_seconds()
        try:
            await post_form(self.runtime.client, subscription.hub, form, private=access, timeout=timeout)
        except FeedError as exc:
            log.warning("websub.request_failed", extra={**where, "error": str(exc)})
            if mode == "subscribe":
                self._mark(subscription.token, "failed", error=str(exc))
            return  # an unsubscription that failed is forgotten in time; its pushes are answered 410 Gone
        log.info("websub.requested", extra=where)

    def _access(self, feed: FeedState) -> PrivateAccess:
        """A hub may be reached where its feed may: a config feed's own host, else public addresses only."""
        allow = self.runtime.setup.config.settings.poll.allow_private
        return private_access(allow, feed.url, from_config=feed.source == "config")

    def _access_for(self, subscription: Subscription) -> PrivateAccess:
        try:
            return self._access(self.store.feed(subscription.feed))
        except NotFoundError:  # the feed was removed: its hub is told as a CLI feed's would be
            allow = self.runtime.setup.config.settings.poll.allow_private
            return private_access(allow, subscription.hub, from_config=False) if allow else PUBLIC_ONLY

    def _mark(
        self, token: str, state: SubscriptionState, *, lease_until: datetime | None = None, error: str | None = None
    ) -> None:
        try:
            self.store.mark_subscription(token, state, self.clock(), lease_until=lease_until, error=error)
        except NotFoundError:
            pass  # forgotten meanwhile

    # --- the callback server's requests ----------------------------------------------------

    async def handle(self, request: Request) -> Response:
        subscription = self._subscription(request.path)
        if request.method == "GET":
            return self._verify(request, subscription)
        return await self._receive(request, subscription)

    def admit(self, method: str, path: str) -> Response | None:
        """Content for no live subscription is refused before its body is read."""
        if method != "POST":
            return None
        subscription = self._subscription(path)
        if subscription is None or subscription.state == "unsubscribing" or not subscription.feed_active:
            return text(HTTPStatus.GONE, "no such subscription")  # WebSub 7: the hub may end the subscription
        return None

    def _subscription(self, path: str) -> Subscription | None:
        token = self._token(path)
        if token is None:
            return None
        try:
            return self.store.subscription(token)
        except NotFoundError:
            return None

    def _token(self, path: str) -> str | None:
        """The token of a callback path, as the reverse proxy passed it on: whole, or without the callback's path."""
        token = path[len(self._prefix) :] if path.startswith(self._prefix) else path[1:]
        return token if token and "/" not in token and len(token) <= 64 else None

    def _verify(self, request: Request, subscription: Subscription | None) -> Response:
        verification = websub.read_verification(request.query)
        if verification is None:
            log.warning("websub.verification_refused", extra={"reason": "not a WebSub verification request"})
            return text(HTTPStatus.NOT_FOUND)
        answer = websub.answer(verification, subscription)
        if answer is websub.Answer.REFUSE or subscription is None:
            reason = (
                "no such subscription" if subscription is None
                else "topic does not match" if verification.topic != subscription.topic
                else f"not asked for ({verification.mode} while {subscription.state})"
            )  # fmt: skip
            log.warning(
                "websub.verification_refused",
                extra={
                    "feed": subscription.feed if subscription else None,
                    "mode": verification.mode,
                    "reason": reason,
                },
            )
            return text(HTTPStatus.NOT_FOUND)
        where = {"feed": subscription.feed, "hub": redact_url(subscription.hub)}
        now = self.clock()
        if answer is websub.Answer.CONFIRM:
            lease_until = websub.lease_end(now, verification.lease_seconds, self.settings.lease)
            self._mark(subscription.token, "active", lease_until=lease_until)
            log.info("websub.verified", extra={**where, "lease_until": lease_until.isoformat(timespec="seconds")})
        elif answer is websub.Answer.UNSUBSCRIBED:
            self.store.remove_subscription(subscription.token)
            log.info("websub.unsubscribed", extra=where)
        else:
            reason = f"the hub denied the subscription: {verification.reason or 'no reason given'}"
            self._mark(subscription.token, "denied", error=reason)
            log.warning("websub.denied", extra={**where, "reason": verification.reason})
            return text(HTTPStatus.OK, "ok")
        return Response(HTTPStatus.OK, (verification.challenge or "").encode())

    async def _receive(self, request: Request, subscription: Subscription | None) -> Response:
        if subscription is None or subscription.state == "unsubscribing" or not subscription.feed_active:
            # WebSub 7: 410 tells the hub that this subscription is over.
            return text(HTTPStatus.GONE, "no such subscription")
        signature = request.headers.get("x-hub-signature")
        if not websub.signature_valid(signature, request.body, subscription.secret):
            # WebSub 8: acknowledge, but ignore what was sent.
            log.warning(
                "websub.bad_signature",
                extra={
                    "feed": subscription.feed,
                    "signature": "missing" if not signature else "wrong",
                    "bytes": len(request.body),
                },
            )
            return text(HTTPStatus.ACCEPTED, "ignored")
        try:
            feed = self.store.feed(subscription.feed)
        except NotFoundError:
            return text(HTTPStatus.GONE, "no such subscription")
        if self.runtime.stopping:
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "stopping; try again later")
        self.store.record_push(subscription.token, self.clock())
        async with self._pushes:
            report = await self.runtime.push(
                feed, request.body, request.headers.get("content-type"), subscription.topic
            )
        self.on_push(report)
        if not report.ok and report.stage == "internal":
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "not taken; try again later")
        return text(HTTPStatus.OK, "ok")  # taken, or not a feed: sending it again would not help
