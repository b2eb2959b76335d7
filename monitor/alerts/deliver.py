"""The outbox worker: due alerts -> pacing -> render -> send -> sent, retry later, or dead.

Delivery reads only the outbox that polls wrote. An alert is marked sent only
after its channel took it, so a crash between the two re-sends at most the
alert in flight (at-least-once). Each channel's alerts go out one after the
other in a worker thread (apprise blocks, and throttles per channel object);
different channels proceed side by side.

A due row is either *pending* (sent on its own) or *held* (released now: the
held rows of a channel go out together as one digest). Before sending, the
rule's pacing is asked again (``pacing.decide_due``): quiet hours that began
since, or a rule that became a digest rule, hold the row instead.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from monitor.alerts import pacing
from monitor.alerts.channels import SendResult
from monitor.alerts.digest import DigestEntry, group_digest
from monitor.alerts.render import AlertView, Message, render_digest
from monitor.alerts.retry import give_up, retry_delay
from monitor.assembly import ChannelSetup, Setup
from monitor.health import Metrics
from monitor.store import AlertStatus, PendingAlert, Storage

log = logging.getLogger("monitor.deliver")

BATCH = 200  # due rows read per round


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


@dataclass
class _ChannelWork:
    singles: list[PendingAlert] = field(default_factory=list)  # sent one by one
    digest: list[PendingAlert] = field(default_factory=list)  # released held rows: one message


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
        self.channels: dict[str, ChannelSetup] = {}
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

    async def deliver_due(self, limit: int = BATCH) -> DeliveryReport:
        """One round: at most ``limit`` due rows, each channel in its own lane."""
        now = self.clock()
        work, held = self._plan(self.store.due_alerts(now, limit=limit), now)
        reports = await asyncio.gather(*(self._deliver_channel(name, plan) for name, plan in work.items()))
        total = DeliveryReport(held=held)
        for report in reports:
            total += report
        return total

    async def deliver_all(self) -> DeliveryReport:
        """Rounds until nothing is due now (what ``poll --once`` waits for)."""
        total = DeliveryReport()
        while not self.stopping:
            report = await self.deliver_due()
            total += report
            if report.settled == 0:
                return total
        return total

    def _plan(self, due: Sequence[PendingAlert], now: datetime) -> tuple[dict[str, _ChannelWork], int]:
        """Sort due rows per channel into singles and digest; hold what the pacing holds now."""
        work: dict[str, _ChannelWork] = {}
        held = 0
        for alert in due:
            is_held = alert.status == AlertStatus.HELD
            decision = pacing.decide_due(self.setup.policy(alert.rule), now, held=is_held)
            if decision.action == "hold" and decision.release_at is not None:
                self.store.mark_held(alert.id, decision.reason, decision.release_at)
                log.info("alert.held", extra={"alert": alert.id, "rule": alert.rule, "reason": decision.reason})
                held += 1
                continue
            plan = work.setdefault(alert.channel, _ChannelWork())
            (plan.digest if is_held else plan.singles).append(alert)
        return work, held

    async def _deliver_channel(self, name: str, work: _ChannelWork) -> DeliveryReport:
        report = DeliveryReport()
        channel = self.channels.get(name)
        for alert in work.singles:
            if self.stopping:
                return report
            result = await self._send(channel, [alert], lambda c, a=alert: c.renderer.render(_view(a), c.kind))
            report += await self._settle(name, [alert], result)
        if work.digest and not self.stopping:
            result = await self._send(channel, work.digest, lambda c: _digest(c, work.digest))
            report += await self._settle(name, work.digest, result)
        return report

    async def _send(
        self,
        channel: ChannelSetup | None,
        alerts: Sequence[PendingAlert],
        message: Callable[[ChannelSetup], Message],
    ) -> SendResult:
        if channel is None:
            return SendResult(ok=False, reason=f"channel {alerts[0].channel!r} is not in the config any more")
        try:
            rendered = message(channel)
        except Exception as exc:  # a template bug must not lose the alert: keep it and say why
            log.exception("alert.render_failed", extra={"alerts": [a.id for a in alerts], "channel": channel.name})
            return SendResult(ok=False, reason=f"rendering the alert failed: {exc}")
        return await asyncio.to_thread(channel.sender.send, rendered)

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
                    "rule": alerts[0].rule,
                    "channel": name,
                    "digest": len(alerts) > 1 or alerts[0].status == AlertStatus.HELD,
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
                    "rule": alerts[0].rule,
                    "channel": name,
                    "attempt": alerts[0].attempts + 1,
                    "next_attempt": retry_at.isoformat(timespec="seconds"),
                    "error": reason,
                },
            )
            return DeliveryReport(failed=len(alerts))
        log.error("alert.dead", extra={"alerts": ids, "rule": alerts[0].rule, "channel": name, "error": reason})
        if name != self.setup.config.settings.admin_channel:
            stories = "\n".join(f"  #{a.id} {a.title} {a.link or ''}" for a in alerts)
            await self.notify_admin(
                f"news-monitor: alert #{ids[0]} given up" if len(ids) == 1 else f"news-monitor: {len(ids)} alerts given up",
                f"Rule {alerts[0].rule!r} could not reach channel {name!r} within the retry window.\n"
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
        result = await asyncio.to_thread(channel.sender.send, Message(title=title, body=body, format="text"))
        if not result.ok:
            log.warning("admin.notify_failed", extra={"channel": name, "error": result.reason})


def _digest(channel: ChannelSetup, alerts: Sequence[PendingAlert]) -> Message:
    entries = [
        (channel.name, DigestEntry(a.id, a.rule, a.title, a.link, a.feed, a.outlets, a.published_at)) for a in alerts
    ]
    [digest] = group_digest(entries).values()
    return render_digest(digest, channel.kind)


def _view(alert: PendingAlert) -> AlertView:
    return AlertView(
        rule=alert.rule,
        title=alert.title,
        link=alert.link,
        feed=alert.feed,
        published_at=alert.published_at,
        body=alert.text,
        hits=tuple(alert.hits),
        outlets=alert.outlets,
    )
