"""The outbox worker: due alerts -> pacing -> render -> send -> sent, retry later, or dead.

Delivery reads only the outbox that polls wrote. An alert is marked sent only
after its channel took it, so a crash between the two re-sends at most the
alert in flight (at-least-once).

Each channel has its own lane (``alerts.lanes``): its alerts go out one after
the other (apprise blocks, and paces per channel object), each send cut off
after ``delivery.send_timeout``, and a slow or dead channel delays only its own
lane. The daemon starts the lanes that have work (``start_due``) and never
waits for one; ``poll --once`` waits for them all (``deliver_all``).

Before a message is sent its rows are claimed in the outbox, a lease under this
process's name that outlasts the send (``send_timeout`` + ``CLAIM_MARGIN``):
another process delivering from the same database (``poll --once`` beside the
daemon) neither sees nor claims them. Marking a row ends its claim; a process
that dies leaves its claims to run out, after which the rows are due again.

A due row is either *pending* or *held* (released now: the held rows of a
channel go out together as one digest). The pending rows of a channel that are
about one story (several rules matched it) go out as one message naming every
rule; each rule's pacing has already decided that its row is due. Before sending, the
rule's pacing is asked again (``pacing.decide_due``): quiet hours that began
since, or a rule that became a digest rule, hold the row instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.alerts import pacing
from monitor.alerts.channels import SendResult
from monitor.alerts.digest import DigestEntry, group_digest
from monitor.alerts.lanes import Lane
from monitor.alerts.render import AlertView, Message, Outlet, RuleMatch, render_digest, render_surge
from monitor.alerts.retry import give_up, retry_delay
from monitor.assembly import ChannelSetup, Setup
from monitor.health import Metrics
from monitor.store import AlertStatus, PendingAlert, Storage

log = logging.getLogger("monitor.deliver")

BATCH = 200  # due rows of a channel read per round
# A claim outlasts its send by this much: rendering, recording the outcome (which may
# wait for the database's write lock), a busy event loop.
CLAIM_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.sent + other.sent, self.failed + other.failed, self.dead + other.dead, self.held + other.held
        )

    @property
    def settled(self) -> int:
        """Rows this round took out of the due set (sent, dead, held, or put off after a failure)."""
        return self.sent + self.failed + self.dead + self.held


# What to send for the claimed rows of one message: one alert, or a digest of several.
Compose = Callable[[ChannelSetup, Sequence[PendingAlert]], Message]


def claim_owner() -> str:
    """This process's name on the outbox rows it claims: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Deliverer:
    """Sends the due alerts of the outbox through the configured channels."""

    def __init__(
        self,
        store: Storage,
        setup: Setup,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ):
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.stopping = False  # set on shutdown: finish the send in flight, start no other
        self.owner = claim_owner()
        # Whether this process releases digests now: one instance at a time does (Storage.holds_singletons),
        # so that the held rows of a channel go out as one digest, not split between instances.
        self.releases_digests: Callable[[], bool] = lambda: True
        self.channels: dict[str, ChannelSetup] = {}
        self.lanes: dict[str, Lane] = {}
        self.configure(setup)

    def configure(self, setup: Setup) -> None:
        """Follow a new setup; a channel whose URL is unchanged keeps its sender (and apprise's throttle)."""
        channels = {}
        for name, channel in setup.channels.items():
            current = self.channels.get(name)
            if current is not None and current.url == channel.url:
                channel = ChannelSetup(name, channel.url, channel.kind, channel.renderer, current.sender)
            channels[name] = channel
        self.channels = channels
        self.setup = setup

    @property
    def send_timeout(self) -> float:
        return self.setup.config.settings.delivery.send_timeout.total_seconds()

    def lane(self, name: str) -> Lane:
        lane = self.lanes.get(name)
        if lane is None:
            lane = self.lanes[name] = Lane(name)
        return lane

    def start_due(self) -> list[str]:
        """Start the lane of each channel with alerts due and return at once; the channels started.

        A lane still busy is not waited for: it is told to look again before it ends.
        """
        started = []
        if self.stopping:
            return started
        for name in self.store.due_channels(self.clock()):
            lane = self.lane(name)
            if lane.busy:
                lane.again = True
                continue
            lane.again = False
            lane.task = asyncio.get_running_loop().create_task(self._run_lane(name), name=f"deliver:{name}")
            started.append(name)
        return started

    async def _run_lane(self, name: str) -> DeliveryReport:
        """Rounds on one channel until nothing more is due there."""
        lane = self.lane(name)
        total = DeliveryReport()
        try:
            while not self.stopping:
                lane.again = False
                report = await self._deliver_channel(name)
                total += report
                if report.settled == 0 and not lane.again:
                    break
        except Exception:  # a database failure, say: logged, and the next tick starts the lane again
            log.exception("deliver.lane_failed", extra={"channel": name})
        return total

    async def deliver_due(self, limit: int = BATCH) -> DeliveryReport:
        """One round, waited for: up to ``limit`` due rows of each channel, the channels side by side."""
        names = [name for name in self.store.due_channels(self.clock()) if not self.lane(name).busy]
        reports = await asyncio.gather(*(self._deliver_channel(name, limit) for name in names))
        return sum(reports, DeliveryReport())

    async def deliver_all(self) -> DeliveryReport:
        """Rounds until nothing is due now (what ``poll --once`` waits for)."""
        total = DeliveryReport()
        while not self.stopping:
            report = await self.deliver_due()
            total += report
            if report.settled == 0:
                return total
        return total

    async def stop(self, grace: float) -> int:
        """Stop delivering: sends in flight get ``grace`` seconds, then are abandoned; how many were.

        Every claim of this process ends, so what was not sent is pending as it was, due at the
        next start (or for another process) at once.
        """
        self.stopping = True
        running = [lane.task for lane in self.lanes.values() if lane.task is not None and lane.busy]
        abandoned: set[asyncio.Task[DeliveryReport]] = set()
        if running:
            _, abandoned = await asyncio.wait(running, timeout=grace)
            for task in abandoned:
                task.cancel()
            await asyncio.gather(*abandoned, return_exceptions=True)
        released = self.store.release_claims(self.owner)
        if abandoned or released:
            log.warning(
                "deliver.stopped",
                extra={
                    "abandoned_sends": len(abandoned),
                    "released": released,
                    "note": "pending, sent at the next start",
                },
            )
        return len(abandoned)

    async def _deliver_channel(self, name: str, limit: int = BATCH) -> DeliveryReport:
        """One round on one channel: its pending rows a message per story, then its released held rows as one digest."""
        due = self.store.due_alerts(self.clock(), limit=limit, channel=name)
        report = DeliveryReport()
        for story in by_story([a for a in due if a.status != AlertStatus.HELD]):
            if self.stopping:
                return report
            report += await self._deliver(name, story, _alert)
        digest = [a for a in due if a.status == AlertStatus.HELD]
        if digest and not self.stopping and self.releases_digests():
            report += await self._deliver(name, digest, _digest)
        return report

    async def _deliver(self, name: str, alerts: Sequence[PendingAlert], compose: Compose) -> DeliveryReport:
        """Claim the rows of one message, hold what the pacing holds now, send the rest, record the outcome."""
        now = self.clock()
        lease = timedelta(seconds=self.send_timeout) + CLAIM_MARGIN
        claimed = set(self.store.claim_alerts([a.id for a in alerts], self.owner, now, now + lease))
        alerts, held = self._hold([a for a in alerts if a.id in claimed], now)
        report = DeliveryReport(held=held)
        if alerts:
            result = await self._send(name, alerts, compose)
            report += await self._settle(name, alerts, result)
        return report

    def _hold(self, alerts: Sequence[PendingAlert], now: datetime) -> tuple[list[PendingAlert], int]:
        """The rows to send now, and how many the pacing holds instead (quiet hours, a digest rule)."""
        send = []
        held = 0
        for alert in alerts:
            decision = pacing.decide_due(self.setup.policy(alert.rule), now, held=alert.status == AlertStatus.HELD)
            if decision.action == "hold" and decision.release_at is not None:
                self.store.mark_held(alert.id, decision.reason, decision.release_at)
                log.info("alert.held", extra={"alert": alert.id, "rule": alert.rule, "reason": decision.reason})
                held += 1
            else:
                send.append(alert)
        return send, held

    async def _send(self, name: str, alerts: Sequence[PendingAlert], compose: Compose) -> SendResult:
        channel = self.channels.get(name)
        if channel is None:
            return SendResult(ok=False, reason=f"channel {name!r} is not in the config any more")
        try:
            rendered = compose(channel, alerts)
        except Exception as exc:  # a template bug must not lose the alert: keep it and say why
            log.exception("alert.render_failed", extra={"alerts": [a.id for a in alerts], "channel": channel.name})
            return SendResult(ok=False, reason=f"rendering the alert failed: {exc}")
        return await self.lane(name).send(channel.sender.send, rendered, self.send_timeout)

    async def _settle(self, name: str, alerts: Sequence[PendingAlert], result: SendResult) -> DeliveryReport:
        """Record what became of one message: its alerts sent, retried later, or dead."""
        now = self.clock()
        ids = [alert.id for alert in alerts]
        if result.ok:
            for alert in alerts:
                self.store.mark_sent(alert.id, now)
                if self.metrics is not None:
                    self.metrics.observe_delivery(name, "sent", now - alert.created_at)
            log.info(
                "alert.sent",
                extra={
                    "alerts": ids,
                    "rule": _rules(alerts),
                    "channel": name,
                    "digest": any(alert.status == AlertStatus.HELD for alert in alerts),
                },
            )
            return DeliveryReport(sent=len(alerts))
        reason = result.reason or "the channel refused the message (no reason given)"
        retry_at = self._next_attempt(alerts[0], result, now)
        for alert in alerts:
            self.store.mark_failed(alert.id, reason, retry_at)
            if self.metrics is not None:
                self.metrics.observe_delivery(name, "dead" if retry_at is None else "retry")
        if retry_at is not None:
            log.warning(
                "alert.retry",
                extra={
                    "alerts": ids,
                    "rule": _rules(alerts),
                    "channel": name,
                    "attempt": alerts[0].attempts + 1,
                    "next_attempt": retry_at.isoformat(timespec="seconds"),
                    "error": reason,
                },
            )
            return DeliveryReport(failed=len(alerts))
        log.error("alert.dead", extra={"alerts": ids, "rule": _rules(alerts), "channel": name, "error": reason})
        if name != self.setup.config.settings.admin_channel:
            stories = "\n".join(f"  #{a.id} {a.title} {a.link or ''}" for a in alerts)
            await self.notify_admin(
                f"news-monitor: alert #{ids[0]} given up"
                if len(ids) == 1
                else f"news-monitor: {len(ids)} alerts given up",
                f"{'Rules' if len(set(a.rule for a in alerts)) > 1 else 'Rule'} {_rules(alerts)!r} could not reach"
                f" channel {name!r} within the retry window.\n"
                f"{stories}\nLast error: {reason}\n"
                f"Send again with: news-monitor alerts retry {' '.join(map(str, ids))}",
            )
        return DeliveryReport(dead=len(alerts))

    def _next_attempt(self, alert: PendingAlert, result: SendResult, now: datetime) -> datetime | None:
        """When to try a failed alert again; None once its retry window is over."""
        settings = self.setup.config.settings.delivery
        delay = retry_delay(
            alert.attempts + 1,
            initial=settings.retry_initial,
            maximum=settings.retry_max,
            rng=self.rng,
            retry_after=result.retry_after,
        )
        if give_up(alert.due_since or alert.created_at, now + delay, settings.retry_window):
            return None
        return now + delay

    async def notify_admin(self, title: str, body: str) -> None:
        """Tell the admin channel (when configured) about a problem of the service itself.

        Best effort: the problem is logged whatever happens here.
        """
        name = self.setup.config.settings.admin_channel
        channel = self.channels.get(name) if name else None
        if channel is None:
            return
        message = Message(title=title, body=body, format="text")
        result = await self.lane(name).send(channel.sender.send, message, self.send_timeout)
        if not result.ok:
            log.warning("admin.notify_failed", extra={"channel": name, "error": result.reason})


def by_story(alerts: Sequence[PendingAlert]) -> list[list[PendingAlert]]:
    """The due rows of one channel, one group per story (in the order their first row came), each a message."""
    groups: dict[Hashable, list[PendingAlert]] = {}
    for alert in alerts:
        key: Hashable = ("story", alert.story_id) if alert.story_id else ("alert", alert.id)
        groups.setdefault(key, []).append(alert)
    return list(groups.values())


def _rules(alerts: Sequence[PendingAlert]) -> str:
    return ", ".join(dict.fromkeys(alert.rule for alert in alerts))


def _alert(channel: ChannelSetup, alerts: Sequence[PendingAlert]) -> Message:
    """The pending rows of one story, as one alert naming every rule (a surge: its own message)."""
    if alerts[0].kind == "surge":
        return render_surge(alerts[0].payload or {}, channel.kind, channel.renderer.zone)
    return channel.renderer.render(_view(alerts), channel.kind)


def _digest(channel: ChannelSetup, alerts: Sequence[PendingAlert]) -> Message:
    """The held rows of one channel, released together, as one digest message."""
    entries = [
        (channel.name, DigestEntry(a.id, a.rule, a.title, a.link, a.feed, a.outlet_links, a.published_at))
        if a.kind != "surge"
        else (channel.name, _surge_entry(a))
        for a in alerts
    ]
    [digest] = group_digest(entries).values()
    return render_digest(digest, channel.kind, channel.renderer.zone)


def _surge_entry(alert: PendingAlert) -> DigestEntry:
    """A surge in a digest: its summary as the headline, linked to its top story."""
    payload = alert.payload or {}
    stories = payload.get("stories") or [{}]
    title = f"{payload.get('title') or 'Surge'} — {payload.get('summary') or ''}"
    return DigestEntry(alert.id, alert.rule, title, stories[0].get("link"), stories[0].get("feed") or alert.feed)


def _view(alerts: Sequence[PendingAlert]) -> AlertView:
    """The message about one story: the first row's item, and why each rule matched.

    Only the hits on that item mark its text; a rule that matched another item of the
    story still says why.
    """
    lead = alerts[0]
    hits: dict[str, list[dict]] = {}
    for alert in alerts:
        hits.setdefault(alert.rule, []).extend(alert.hits)
    shown = [alert for alert in alerts if alert.item_id == lead.item_id] if lead.item_id else [lead]
    outlets = tuple(Outlet(feed, link) for feed, link in lead.outlet_links) or lead.outlets
    return AlertView(
        rule=lead.rule,
        title=lead.title,
        link=lead.link,
        feed=lead.feed,
        published_at=lead.published_at,
        body=lead.text,
        hits=tuple(hit for alert in shown for hit in alert.hits),
        outlets=outlets,
        matches=tuple(RuleMatch(rule, tuple(found)) for rule, found in hits.items()),
    )
