"""The outbox worker: due alerts -> render -> send -> sent, retry later, or dead.

Delivery reads only the outbox that polls wrote. An alert is marked sent only
after its channel took it, so a crash between the two re-sends at most the
alert in flight (at-least-once). Each channel's alerts go out one after the
other in a worker thread (apprise blocks, and throttles per channel object);
different channels proceed side by side.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.alerts.channels import Channel, SendResult
from monitor.alerts.render import AlertView, Message, Renderer, kind_for_url
from monitor.config import Config, DeliverySettings
from monitor.health import Metrics
from monitor.store import PendingAlert, Store

log = logging.getLogger("monitor.deliver")


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0


def retry_delay(attempts: int, settings: DeliverySettings, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter on the upper half: attempt 1 waits ~initial."""
    ceiling = min(settings.retry_initial * (2 ** max(0, attempts - 1)), settings.retry_max)
    return ceiling * (0.5 + 0.5 * rng.random())


def next_attempt(
    alert: PendingAlert, result: SendResult, now: datetime, settings: DeliverySettings, rng: random.Random
) -> datetime | None:
    """When to try a failed alert again; None once the retry window is over."""
    delay = retry_delay(alert.attempts + 1, settings, rng)
    if result.retry_after is not None:
        delay = max(delay, timedelta(seconds=result.retry_after))
    at = now + delay
    if at > alert.created_at + settings.retry_window:
        return None
    return at


class Deliverer:
    """Sends the due alerts of the outbox through the configured channels."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ):
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.stopping = False  # set on shutdown: finish the send in flight, start no other
        self._channels: dict[str, tuple[str, Channel]] = {}  # name -> (url, channel)
        self.configure(config)

    def configure(self, config: Config) -> None:
        """Follow a new config; channel objects whose URL is unchanged are kept (and keep their throttle)."""
        channels = {}
        for name in config.channel_names:
            url = config.channel_url(name)
            current = self._channels.get(name)
            channels[name] = current if current is not None and current[0] == url else (url, Channel(name, url))
        self._channels = channels
        self._renderers = {name: Renderer(template=config.channel_template(name)) for name in config.channel_names}
        self.config = config

    async def deliver_due(self, limit: int = 200) -> DeliveryReport:
        due = self.store.due_alerts(self.clock(), limit=limit)
        if not due:
            return DeliveryReport()
        by_channel: dict[str, list[PendingAlert]] = {}
        for alert in due:
            by_channel.setdefault(alert.channel, []).append(alert)
        reports = await asyncio.gather(
            *(self._deliver_channel(name, alerts) for name, alerts in by_channel.items())
        )
        return DeliveryReport(
            sent=sum(r.sent for r in reports),
            failed=sum(r.failed for r in reports),
            dead=sum(r.dead for r in reports),
        )

    async def _deliver_channel(self, name: str, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        sent = failed = dead = 0
        url, channel = self._channels.get(name, ("", None))
        for alert in alerts:
            if self.stopping:
                break
            if channel is None:
                result = SendResult(ok=False, reason=f"channel {name!r} is not in the config any more")
            else:
                result = await self._send(channel, url, alert)
            if result.ok:
                now = self.clock()
                self.store.mark_sent(alert.id, now)
                if self.metrics is not None:
                    self.metrics.observe_delivery(name, "sent", now - alert.created_at)
                sent += 1
                log.info("alert.sent", extra={"alert": alert.id, "rule": alert.rule, "channel": name})
                continue
            reason = result.reason or "the channel refused the message (no reason given)"
            retry_at = next_attempt(alert, result, self.clock(), self.config.settings.delivery, self.rng)
            self.store.mark_failed(alert.id, reason, retry_at)
            if self.metrics is not None:
                self.metrics.observe_delivery(name, "dead" if retry_at is None else "retry")
            if retry_at is None:
                dead += 1
                log.error("alert.dead", extra={"alert": alert.id, "rule": alert.rule, "channel": name, "error": reason})
                if name != self.config.settings.admin_channel:
                    await self.notify_admin(
                        f"news-monitor: alert #{alert.id} given up",
                        f"Rule {alert.rule!r} could not reach channel {name!r} within the retry window.\n"
                        f"Story: {alert.title}\n{alert.link or ''}\nLast error: {reason}\n"
                        f"Send it again with: news-monitor alerts retry {alert.id}",
                    )
            else:
                failed += 1
                log.warning(
                    "alert.retry",
                    extra={
                        "alert": alert.id,
                        "rule": alert.rule,
                        "channel": name,
                        "attempt": alert.attempts + 1,
                        "next_attempt": retry_at.isoformat(timespec="seconds"),
                        "error": reason,
                    },
                )
        return DeliveryReport(sent, failed, dead)

    async def _send(self, channel: Channel, url: str, alert: PendingAlert) -> SendResult:
        try:
            kind = kind_for_url(url, self.config.channel_format(channel.name))
            message = self._renderers[channel.name].render(self._view(alert), kind)
        except Exception as exc:  # a template bug must not lose the alert: keep it and say why
            log.exception("alert.render_failed", extra={"alert": alert.id, "channel": channel.name})
            return SendResult(ok=False, reason=f"rendering the alert failed: {exc}")
        return await asyncio.to_thread(channel.send, message)

    async def notify_admin(self, title: str, body: str) -> None:
        """Tell the admin channel (when configured) about a problem of the service itself.

        Best effort: the problem is logged whatever happens here.
        """
        name = self.config.settings.admin_channel
        if name is None or name not in self._channels:
            return
        _, channel = self._channels[name]
        result = await asyncio.to_thread(channel.send, Message(title=title, body=body, format="text"))
        if not result.ok:
            log.warning("admin.notify_failed", extra={"channel": name, "error": result.reason})

    @staticmethod
    def _view(alert: PendingAlert) -> AlertView:
        return AlertView(
            rule=alert.rule,
            title=alert.title,
            link=alert.link,
            feed=alert.feed,
            published_at=alert.published_at,
            body=alert.text,
            hits=tuple(alert.hits),
        )
