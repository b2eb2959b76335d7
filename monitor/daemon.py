"""The long-running service: scheduler wiring, signals, reloads, sd_notify, shutdown.

    APScheduler (AsyncIOScheduler, in-process)
     ├─ poll tick      due feeds leased to this instance (as many as free poll slots) -> Runtime.poll
     │                 (bounded, never two polls of one feed at once, in this instance or another)
     ├─ heartbeat      this instance alive in the instances table; whether it runs the singletons
     │                 (feed health, retention, WebSub renewals, digest release: one instance at a time)
     ├─ delivery tick  outbox -> alerts.deliver: a lane per channel, never waited for
     │                 (also kicked right after a poll wrote alerts)
     ├─ config watch   a changed config file -> reload (SIGHUP does the same), feeds rescheduled
     ├─ websub tick    subscriptions renewed, retried, ended (monitor.subscriber), when configured
     ├─ control socket `poll --feed NAME` from the CLI -> the same poll (monitor.control)
     └─ watchdog       WATCHDOG=1 from the event loop when systemd asks for it

The optional listeners (health server, dashboard, control socket) start in monitor.daemon_listeners.

A reload validates everything first and swaps it in whole; a broken edit is
reported and the running config stays in force.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor import control, systemd
from monitor.alerts.deliver import Deliverer, DeliveryReport
from monitor.assembly import Setup, load_setup
from monitor.config import ENTITIES_FILE, MONITOR_FILE, RULES_FILE, Config, no_rules_warning
from monitor.daemon_listeners import start_control, start_dashboard, start_health_server
from monitor.database_url import same_database
from monitor.database_url import shown as shown_database
from monitor.errors import ConfigError, MonitorError, NotFoundError
from monitor.feeds import health as feed_health
from monitor.feeds import schedule
from monitor.feeds.fetch import new_client
from monitor.health import HealthCheck, Metrics
from monitor.instance import HEARTBEAT_SECONDS, SqliteDaemonLock, this_instance
from monitor.nlp import LazyExtractor, Model, check_installed
from monitor.pipeline import PollReport, Runtime, enrich_backlog, poll_feeds
from monitor.store import FeedState, Storage, open_storage
from monitor.subscriber import TICK_SECONDS as WEBSUB_TICK_SECONDS
from monitor.subscriber import Subscriber
from monitor.surges import HistoryLane
from monitor.wording import plural

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("monitor.daemon")

POLL_TICK_SECONDS = 2.0
CONFIG_WATCH_SECONDS = 2.0
MAINTENANCE_SECONDS = 3600.0
FEED_HEALTH_SECONDS = 300.0
SHUTDOWN_GRACE_SECONDS = 10.0
# A feed's lease is this many times its fetch and parse budget (poll.timeout + poll.parse_timeout): room for the
# rest of a poll (a host's turn, analysis, the write). Another instance polls the feed only once the lease has run
# out; should a slow poll outlast it, the two polls' writes still take turns and the second finds the items known.
LEASE_FACTOR = 2
# On shutdown a send in flight gets this long to finish; then it is abandoned and its alert stays pending.
SEND_GRACE_SECONDS = 2.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class Monitor:
    """One news-monitor instance: its config, store, NLP pipeline and workers."""

    def __init__(self, setup: Setup, store: Storage, clock: Callable[[], datetime] = utcnow):
        self.setup = setup
        self.store = store
        self.clock = clock
        config = setup.config
        # Checked now (cheaply), loaded when items first need entities: see monitor.nlp.
        check_installed(config.settings.nlp.model)
        self.model = Model(config.settings.nlp.model)
        settings = config.settings
        self.runtime = Runtime(
            setup=setup,
            store=store,
            client=new_client(timeout=settings.poll.timeout.total_seconds(), max_connections=settings.poll.concurrency),
            extractor=self._extractor(config),
            clock=clock,
            surge_history=HistoryLane(partial(open_storage, settings.database)),
        )
        self.metrics = Metrics()
        self._declare_metrics(config)
        self.health = HealthCheck(self.metrics, store.check_writable)
        self.deliverer = Deliverer(store, setup, clock, metrics=self.metrics)
        self.deliverer.releases_digests = store.holds_singletons
        self.instance = this_instance(clock())  # the name this daemon's feed leases go under
        self._claimed_all = True  # whether the last claim took every due feed (else claim again after a poll)
        self._claim_soon = False  # a claim is already coming (after a poll ended)
        # Whether this instance runs the singletons (digests, health, retention, WebSub); None: not asked yet.
        self._singletons: bool | None = None
        self.store.sync_feeds(config.feed_specs(), clock())
        self._config_stamp = _config_stamp(config.directory)
        self._inflight: dict[str, asyncio.Task[PollReport]] = {}
        self._reschedule_after_poll: set[str] = set()  # feeds whose interval changed while a poll ran
        self._delivery_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._failure: MonitorError | None = None  # why the daemon stopped by itself (the model would not load)
        self.scheduler: AsyncIOScheduler | None = None
        self.subscriber: Subscriber | None = None  # WebSub, when websub.callback is set

    @classmethod
    def open(cls, config_dir: Path, clock: Callable[[], datetime] = utcnow) -> Monitor:
        setup = load_setup(config_dir)
        return cls(setup, open_storage(setup.config.settings.database), clock)

    @property
    def config(self) -> Config:
        return self.setup.config

    def _declare_metrics(self, config: Config) -> None:
        self.metrics.declare(
            feeds=[feed.name for feed in config.settings.feeds],
            rules=[rule.name for rule in config.rules],
            channels=config.channel_names,
        )

    def _extractor(self, config: Config) -> LazyExtractor:
        nlp = config.settings.nlp
        return LazyExtractor(self.model, config.entities, batch_size=nlp.batch_size, max_chars=nlp.max_chars)

    async def close(self) -> None:
        await self.runtime.client.aclose()
        self.runtime.close()
        try:
            self.store.release_claims(self.deliverer.owner)  # a send cut short: its alert is due again at once
        finally:
            self.store.close()

    # --- one-shot ------------------------------------------------------------

    async def poll_once(self, feed_name: str | None = None) -> tuple[list[PollReport], DeliveryReport]:
        """Poll every active feed (or one) now, then deliver everything that is due."""
        reports = await self.poll_now(feed_name)
        return reports, await self.deliver_everything()

    async def poll_now(self, feed_name: str | None = None) -> list[PollReport]:
        """Poll every active feed (or one) now, and analyse every item still waiting for it."""
        feeds = [self.store.feed(feed_name)] if feed_name is not None else self.store.feeds()
        reports = await poll_feeds(self.runtime, feeds)
        await self.runtime.settle_surges()
        while await enrich_backlog(self.runtime):
            pass
        return reports

    async def deliver_everything(self) -> DeliveryReport:
        """Send every alert that is due, each channel's in turn, until none is left."""
        async with self._delivery_lock:
            return await self.deliverer.deliver_all()

    def use_setup(self, setup: Setup) -> None:
        """Follow ``setup`` from now on (the same config, its channels built since)."""
        self.setup = setup
        self.runtime.setup = setup
        self.deliverer.configure(setup)

    async def _enrich_tick(self) -> None:
        # One batch after another, yielding in between so polls get the CPU thread too.
        while not self._stopping.is_set() and await enrich_backlog(self.runtime):
            await asyncio.sleep(0)

    async def deliver(self) -> DeliveryReport:
        async with self._delivery_lock:
            return await self.deliverer.deliver_due()

    async def maintain(self) -> dict[str, int]:
        """Apply the retention settings (the full-text index follows)."""
        retention = self.config.settings.retention
        deleted = self.store.apply_retention(
            self.clock(), items=retention.items, matches=retention.matches, alerts=retention.alerts
        )
        if any(deleted.values()):
            log.info("maintenance.retention", extra=deleted)
        return deleted

    async def check_feed_health(self) -> list[str]:
        """Tell the admin channel about feeds that went bad or recovered; the messages sent."""
        settings = self.config.settings.feed_health
        thresholds = feed_health.HealthSettings(settings.failing_after, settings.silence_factor, settings.min_silence)
        now = self.clock()
        reports = []
        for feed in self.store.feed_histories(now, feed_health.RHYTHM_WINDOW):
            assessment = feed_health.assess(feed, now, thresholds)
            message = feed_health.change_to_report(feed, assessment)
            if message is None:
                continue
            self.store.set_feed_health(feed.name, assessment.state)
            log.warning("feed.health", extra={"feed": feed.name, "state": assessment.state, "report": message})
            await self.deliverer.notify_admin(f"news-monitor: feed {feed.name} {assessment.state}", message)
            reports.append(message)
        return reports

    # --- reload --------------------------------------------------------------

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # keep a reference until done, or the task may vanish
        task.add_done_callback(self._tasks.discard)

    def reload(self) -> bool:
        """Load the config directory again; swap it in only if all of it is valid."""
        systemd.reloading()
        try:
            try:
                setup = load_setup(self.config.directory)
            except ConfigError as exc:
                for problem in exc.problems:
                    log.error("config.invalid", extra={"problem": problem})
                log.error("config.kept", extra={"reason": "the new config has errors; the running config stays in force"})
                self._background(
                    self.deliverer.notify_admin(
                        "news-monitor: config not reloaded",
                        "The edited config has errors; the running config stays in force.\n\n" + "\n".join(exc.problems),
                    )
                )
                return False
            config = setup.config
            if not same_database(config.settings.database, self.config.settings.database):
                log.warning("config.database_changed", extra={"note": "a new database path takes effect on restart"})
            before = {feed.id: (feed.url, self.runtime.limits(feed)) for feed in self.store.feeds()}
            self.setup = setup
            self.runtime.setup = setup
            self.runtime.extractor = self._extractor(config)
            self.deliverer.configure(setup)
            self._declare_metrics(config)
            self.store.sync_feeds(config.feed_specs(), self.clock())
            self._reschedule(before)
            log.info("config.reloaded", extra={"summary": config.summary()})
            _warn_no_rules(config)
            return True
        finally:
            self._config_stamp = _config_stamp(self.config.directory)
            systemd.notify("READY=1")

    def _reschedule(self, before: dict[int, tuple[str, schedule.Limits]]) -> None:
        """Apply a changed interval (or poll limits) at once, not after the wait decided under the old one.

        ``before``: each feed's URL and limits before the reload. New feeds and
        feeds whose URL changed are due now already; a failing feed keeps its
        backoff (a server may have asked for it).
        """
        for feed in self.store.feeds():
            old = before.get(feed.id)
            if old is None or old[0] != feed.url or old[1] == self.runtime.limits(feed) or feed.error_count:
                continue
            if feed.name in self._inflight:
                self._reschedule_after_poll.add(feed.name)  # its poll is about to write the old schedule
                continue
            self._reschedule_feed(feed)

    def _reschedule_changed(self, name: str) -> None:
        """After a poll that ran across a reload: its next poll again, under the new interval."""
        try:
            feed = self.store.feed(name)
        except NotFoundError:
            return  # the reload removed it
        if not feed.error_count:
            self._reschedule_feed(feed)

    def _reschedule_feed(self, feed: FeedState) -> None:
        now = self.clock()
        entries = None if feed.interval is not None else self.store.entries_last_week(feed.id, now)
        limits = self.runtime.limits(feed)
        next_poll = schedule.after_change(now, feed.last_polled_at, limits, entries_last_week=entries)
        self.store.reschedule_feed(feed.id, next_poll.at, next_poll.reason)
        at = next_poll.at.isoformat(timespec="seconds")
        log.info("poll.rescheduled", extra={"feed": feed.name, "next_poll": at, "reason": next_poll.reason})

    async def _watch_config(self) -> None:
        # A coroutine so that it runs on the event loop, like everything that touches the store.
        stamp = _config_stamp(self.config.directory)
        if stamp != self._config_stamp:
            self._config_stamp = stamp
            log.info("config.changed", extra={"directory": str(self.config.directory)})
            self.reload()

    # --- the service ---------------------------------------------------------

    async def run(self) -> None:
        """Run until SIGTERM or SIGINT; SIGHUP reloads the config.

        On SQLite a second daemon on the same file refuses to start (MonitorError); on PostgreSQL
        any number of instances run, sharing the feeds by lease.
        """
        database = self.config.settings.database
        lock = SqliteDaemonLock(database) if isinstance(database, Path) else None
        if lock is not None:
            lock.acquire()
            self._forget_the_dead()
        try:
            self.store.heartbeat(self.instance, self.clock())
            self._runs_singletons()
            await self._serve()
        finally:
            self._leave()
            if lock is not None:
                lock.release()

    def _forget_the_dead(self) -> None:
        """On SQLite, with the file's lock taken: any other instance listed is dead (killed), and its feed leases
        end now, so the feeds it was polling are polled again at once, as before there were leases."""
        for other in self.store.instances(self.clock(), timedelta(days=3650)):
            self.store.remove_instance(other.id)

    def _leave(self) -> None:
        """A clean stop: off the instances list, its feed leases ended (due for the other instances at once)."""
        try:
            self.store.remove_instance(self.instance.id)
        except MonitorError as exc:  # the database is gone: the heartbeat stops, and the leases run out
            log.warning("instance.not_removed", extra={"instance": self.instance.id, "error": str(exc)})

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)

        from apscheduler.schedulers.asyncio import AsyncIOScheduler  # only the daemon schedules (60 ms to import)

        scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler = scheduler
        scheduler.add_job(self._poll_tick, "interval", seconds=POLL_TICK_SECONDS, id="poll", next_run_time=utcnow())
        scheduler.add_job(
            self._deliver_tick,
            "interval",
            seconds=self.config.settings.delivery.interval.total_seconds(),
            id="deliver",
            next_run_time=utcnow(),
        )
        scheduler.add_job(self._watch_config, "interval", seconds=CONFIG_WATCH_SECONDS, id="config-watch")
        scheduler.add_job(self._enrich_tick, "interval", seconds=POLL_TICK_SECONDS, id="enrich")
        scheduler.add_job(self._heartbeat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat")
        # One instance at a time runs these (Storage.holds_singletons); on SQLite always this one.
        scheduler.add_job(
            self._singleton, "interval", args=[self.check_feed_health], seconds=FEED_HEALTH_SECONDS, id="feed-health"
        )
        scheduler.add_job(
            self._singleton, "interval", args=[self.maintain], seconds=MAINTENANCE_SECONDS, id="maintenance",
            next_run_time=utcnow() + timedelta(seconds=60),
        )  # fmt: skip
        watchdog = systemd.watchdog_interval()
        if watchdog:
            scheduler.add_job(self._watchdog, "interval", seconds=watchdog, id="watchdog")
        await self._start_websub(scheduler)  # before the first poll, which may discover a hub
        # A one-shot run starts these when first needed; the daemon starts them now, in the
        # background, so that its first alert does not wait for them.
        self.runtime.parser.start()
        warm_up = loop.run_in_executor(self.runtime.cpu, self.model.get)
        warm_up.add_done_callback(self._model_ready)
        scheduler.start()
        server = await start_health_server(self)
        dashboard = await start_dashboard(self)
        control_server = await start_control(self)
        log.info(
            "daemon.started",
            extra={
                "config": str(self.config.directory),
                "database": shown_database(self.config.settings.database),
                "instance": self.instance.id,
                "summary": self.config.summary(),
            },
        )
        _warn_no_rules(self.config)
        systemd.notify("READY=1", f"STATUS=watching {plural(len(self.config.settings.feeds), 'feed')}")
        try:
            await self._stopping.wait()
        finally:
            systemd.notify("STOPPING=1")
            if control_server is not None:
                control_server.stop_listening()  # from now on `poll --feed` polls by itself
            # Pause rather than shut down first: shutting down cancels running
            # jobs, and a send cut short would be repeated after the restart.
            scheduler.pause()
            self.runtime.stopping = True
            self.deliverer.stopping = True
            if self.subscriber is not None:
                await self.subscriber.stop()  # hubs keep what we could not take, and push it again
            await self._drain()
            scheduler.shutdown(wait=False)
            if control_server is not None:
                await control_server.close()
            if server is not None:
                await server.stop()
            if dashboard is not None:
                await dashboard.stop()
            log.info("daemon.stopped")
        if self._failure is not None:
            raise self._failure

    def _model_ready(self, warm_up: asyncio.Future[Any]) -> None:
        """The model loaded in the background, or could not be: then the daemon stops with the reason."""
        if warm_up.cancelled():
            return
        error = warm_up.exception()
        if error is None:
            log.info("nlp.loaded", extra={"model": self.model.name})
            return
        log.error("nlp.failed", extra={"model": self.model.name, "error": str(error)})
        self._failure = error if isinstance(error, MonitorError) else MonitorError(f"loading the spaCy model: {error!r}")
        self._stopping.set()

    async def answer(self, request: control.Request) -> control.Reply:
        """A control request: poll the feed now (or join its poll in progress) and report it."""
        if self._stopping.is_set():
            return control.failure("stopping", "the daemon is stopping")
        try:
            feed = self.store.feed(request.feed)
        except NotFoundError as exc:
            return control.failure("not_found", str(exc))
        running = self._inflight.get(feed.name)
        log.info("control.poll", extra={"feed": feed.name, "joined": running is not None})
        # Shielded: a client that goes away does not cancel the poll.
        report = await asyncio.shield(running or self._start_poll(feed))
        fields = {name: getattr(report, name) for name in control.REPORT_FIELDS}
        return {"ok": True, "pid": os.getpid(), "joined": running is not None, "reports": [fields]}

    async def _start_websub(self, scheduler: AsyncIOScheduler) -> None:
        """Subscribe to the hubs feeds advertise, when websub.callback is set (changes apply on restart)."""
        settings = self.config.settings.websub
        if not settings.active:
            return
        self.subscriber = Subscriber(settings, self.runtime, self.clock, on_push=self._pushed)
        await self.subscriber.start()
        scheduler.add_job(
            self._singleton, "interval", args=[self.subscriber.tick], seconds=WEBSUB_TICK_SECONDS, id="websub",
            next_run_time=utcnow(),
        )  # fmt: skip

    def _pushed(self, report: PollReport) -> None:
        """A hub pushed news: its alerts go out now, as a poll's would."""
        if report.alerts:
            self.deliver_soon()
        self._observe(report)

    async def _watchdog(self) -> None:
        # Sent from the event loop: a stalled loop stops the pings and systemd restarts us.
        systemd.notify("WATCHDOG=1")

    def _request_stop(self, signum: int) -> None:
        log.info("daemon.stopping", extra={"signal": signal.Signals(signum).name})
        self._stopping.set()

    def _on_sighup(self) -> None:
        log.info("config.sighup")
        self.reload()

    async def _heartbeat(self) -> None:
        try:
            self.store.heartbeat(self.instance, self.clock())
        except MonitorError as exc:  # the database is away: the health check says so; beat again next time
            log.warning("instance.heartbeat_failed", extra={"instance": self.instance.id, "error": str(exc)})
            return
        self._runs_singletons()  # taken over within a beat when the instance that ran them died

    def _runs_singletons(self) -> bool:
        """Whether this instance runs the singletons now (said in the log when that changes)."""
        runs = self.store.holds_singletons()
        if runs != self._singletons:
            self._singletons = runs
            log.info("instance.singletons", extra={"instance": self.instance.id, "runs": runs})
        return runs

    async def _singleton(self, job: Callable[[], Coroutine[Any, Any, object]]) -> None:
        """Run ``job`` if this instance runs the singletons now."""
        if self._runs_singletons():
            await job()

    def _feed_lease(self) -> timedelta:
        poll = self.config.settings.poll
        return (poll.timeout + poll.parse_timeout) * LEASE_FACTOR

    async def _poll_tick(self) -> None:
        self.health.tick()
        self._claim_feeds()

    def _claim_feeds(self) -> None:
        """Lease as many due feeds as there are free poll slots to this instance, and start their polls.

        When more feeds were due than slots, the next claim comes as soon as a poll ends, not at the next tick.
        """
        self._claim_soon = False
        if self._stopping.is_set():
            return
        free = self.config.settings.poll.concurrency - len(self._inflight)
        feeds = self.store.claim_due_feeds(self.instance.id, self.clock(), self._feed_lease(), free)
        self._claimed_all = len(feeds) < free
        for feed in feeds:
            if feed.name not in self._inflight:
                self._start_poll(feed)

    def _poll_soon(self) -> None:
        if not self._claim_soon and not self._stopping.is_set():
            self._claim_soon = True
            asyncio.get_running_loop().call_soon(self._claim_after_poll)

    def _claim_after_poll(self) -> None:
        try:
            self._claim_feeds()
        except MonitorError as exc:  # the database: said once here; the next tick tries again
            log.error("poll.claim_failed", extra={"error": str(exc)})

    def _start_poll(self, feed: FeedState) -> asyncio.Task[PollReport]:
        task = asyncio.create_task(self._poll(feed), name=f"poll:{feed.name}")
        self._inflight[feed.name] = task
        return task

    async def _poll(self, feed: FeedState) -> PollReport:
        try:
            report = await self.runtime.poll(feed)
        finally:
            self._inflight.pop(feed.name, None)
            if not self._claimed_all:
                self._poll_soon()  # a slot is free and more feeds were due than slots
        if feed.name in self._reschedule_after_poll:
            self._reschedule_after_poll.discard(feed.name)
            self._reschedule_changed(feed.name)
        if report.alerts:
            self.deliver_soon()
        self._observe(report)
        if report.advert is not None and self.subscriber is not None:
            self._background(self.subscriber.discovered(feed, report.advert))
        return report

    def _observe(self, report: PollReport) -> None:
        self.metrics.observe_poll(report.feed, report.outcome, items=report.new_items, stage=report.stage)  # type: ignore[arg-type]
        for rule in set(report.matched_rules):
            self.metrics.observe_match(rule, report.matched_rules.count(rule))

    def deliver_soon(self) -> None:
        """Deliver new alerts now rather than at the next delivery tick."""
        if self.scheduler is not None:
            self.scheduler.modify_job("deliver", next_run_time=utcnow())

    async def _deliver_tick(self) -> None:
        # Starts the lane of each channel with alerts due and returns: a lane busy with a slow
        # receiver goes on by itself, and neither this tick nor the other channels wait for it.
        if not self._stopping.is_set():
            self.deliverer.start_due()

    async def _drain(self) -> None:
        """Stop delivering and let polls in flight finish their transaction; cancel what takes too long.

        A send in flight gets SEND_GRACE_SECONDS, then is abandoned: its alert stays pending
        (claim released) and goes out after the restart, so a receiver that trickles cannot
        hold up the exit.
        """
        delivery = asyncio.create_task(self.deliverer.stop(SEND_GRACE_SECONDS))
        tasks = list(self._inflight.values())
        if tasks:
            log.info("daemon.draining", extra={"polls": len(tasks)})
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await delivery


def _warn_no_rules(config: Config) -> None:
    warning = no_rules_warning(config)
    if warning:
        log.warning("config.no_rules", extra={"warning": warning})


def _config_stamp(directory: Path) -> tuple[tuple[str, float, int], ...]:
    stamp = []
    for name in (MONITOR_FILE, RULES_FILE, ENTITIES_FILE):
        try:
            stat = (directory / name).stat()
            stamp.append((name, stat.st_mtime, stat.st_size))
        except OSError:
            stamp.append((name, 0.0, -1))
    return tuple(stamp)
