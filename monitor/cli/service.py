"""The service: run the daemon, check the config, poll once, show each feed's status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import _fail, _load, _problems, _setup, _storage, _when, config_option, logging_options, plural
from monitor.config import Config, no_rules_warning
from monitor.logs import setup_logging
from monitor.redact import redact_text


@click.command()
@config_option
@logging_options
def run(config_dir: Path, log_format: str, log_level: str) -> None:
    """Run the daemon in the foreground (logs to stderr).

    SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the config, as does
    saving any of the config files.
    """
    setup_logging(log_level.upper(), log_format)
    setup = _setup(config_dir)

    async def serve() -> None:
        from monitor.daemon import Monitor
        from monitor.store import open_storage

        monitor = Monitor(setup, open_storage(setup.config.settings.database))
        try:
            await monitor.run()
        finally:
            await monitor.close()

    asyncio.run(serve())


@click.command()
@config_option
def check(config_dir: Path) -> None:
    """Validate every config file and the database; print each problem as file:line:column."""
    from monitor.store import open_storage

    setup = _setup(config_dir)
    config = setup.config
    _warn_costly_regexes(setup)
    warning = no_rules_warning(config)
    if warning:
        click.echo(warning, err=True)
    database = config.settings.database
    if isinstance(database, str):  # a PostgreSQL server: reachable? ours? migrated (as a start would)?
        from monitor.database_url import shown

        with open_storage(database) as store:  # a refused connection or password is one line, as any StorageError
            state = f"database {shown(database)} reachable (PostgreSQL, schema {store.schema_version}, up to date)"
    elif database.exists():
        with open_storage(database) as store:  # refuses a file that is not ours, migrates an older one
            state = f"database {database} (schema {store.schema_version})"
    else:
        state = f"database {database} will be created on the first run"
    click.echo(f"{config.directory}: OK: {config.summary()}; {state}")


def _warn_costly_regexes(setup: Any) -> None:
    """Print, as file:line:column: warning, each rule regex that is valid but costly to run."""
    from monitor.config import RULES_FILE
    from monitor.rules.lint import costly_regex_findings

    config = setup.config
    for index, rule in enumerate(config.rules):
        compiled = setup.rulebook.compiled.get(rule.name)
        for finding in costly_regex_findings(compiled) if compiled else []:
            where = config.where(RULES_FILE, ("rules", index, "query"), column=finding.column)
            click.echo(f"{where}: warning: rule {rule.name!r}: {finding.message}", err=True)


@click.command()
@config_option
@logging_options
@click.option("--once", is_flag=True, help="Poll once, deliver the alerts, exit (required without --feed).")
@click.option("--feed", "feed_name", metavar="NAME", help="Poll only this feed (the running daemon does, if any).")
def poll(config_dir: Path, log_format: str, log_level: str, once: bool, feed_name: str | None) -> None:
    """Poll every feed (or one) now, store and match, deliver the alerts, exit.

    With --feed and a daemon running on the same database, the daemon is asked
    to poll that feed now (over its control socket) and its report is printed;
    it delivers the alerts itself. Exits 0 even when some feeds fail (each
    failure is logged); non-zero only when the run itself could not happen.
    """
    if not once and feed_name is None:
        raise click.UsageError("poll needs --once or --feed NAME (the long-running service is `news-monitor run`)")
    setup_logging(log_level.upper(), log_format)
    # The channels (apprise: a third of a second) are built while the feeds are fetched, and
    # checked before anything is sent: a channel problem still stops the run, with its line.
    setup = _setup(config_dir, channels=False)
    if feed_name is not None and _poll_by_daemon(setup.config, feed_name):
        return

    async def once_() -> tuple[list[Any], Any, list[Any], int]:
        from dataclasses import replace

        from monitor.assembly import build_channels
        from monitor.daemon import Monitor
        from monitor.errors import ConfigError, NotFoundError
        from monitor.store import AlertStatus, open_storage

        channels = asyncio.get_running_loop().run_in_executor(None, build_channels, setup.config)
        monitor = Monitor(setup, open_storage(setup.config.settings.database))
        try:
            held_back = monitor.store.backfill_match_count()
            try:
                reports = await monitor.poll_now(feed_name)
            except NotFoundError as exc:
                raise click.BadParameter(str(exc), param_hint="--feed") from None
            finally:
                try:
                    built = await channels
                except ConfigError as exc:
                    _problems(exc)  # after the poll: what it stored stays, its alerts wait in the outbox
            monitor.use_setup(replace(setup, channels=built))
            delivery = await monitor.deliver_everything()
            waiting = [
                *monitor.store.list_alerts(status=AlertStatus.PENDING, limit=10_000),
                *monitor.store.list_alerts(status=AlertStatus.HELD, limit=10_000),
            ]
            return reports, delivery, waiting, monitor.store.backfill_match_count() - held_back
        finally:
            await monitor.close()

    reports, delivery, waiting, held_back = asyncio.run(once_())
    _print_polled(reports, f"delivered {delivery.sent}, failed {delivery.failed}, dead {delivery.dead}")
    if held_back:
        _print_held_back(held_back)
    _print_waiting(waiting)


def _print_held_back(count: int) -> None:
    """Say that matches came with a feed's first fetch, which alerts nobody, and where to see them."""
    where = "in a first fetch was" if count == 1 else "in first fetches were"
    click.echo(
        f"{plural(count, 'match', 'matches')} {where} not alerted (old news); "
        "see `news-monitor alerts list --backfill`",
        err=True,
    )


def _print_polled(reports: list[Any], delivered: str) -> None:
    failed = [r for r in reports if not r.ok]
    click.echo(
        f"polled {plural(len(reports), 'feed')}: {len(reports) - len(failed)} ok, {len(failed)} failed; "
        f"{plural(sum(r.new_items for r in reports), 'new or changed item')}; "
        f"{plural(sum(r.alerts for r in reports), 'alert')} queued; "
        f"{delivered}",
        err=True,
    )
    for report in failed:
        click.echo(f"  {report.feed}: {redact_text(report.error or '')}", err=True)


def _poll_by_daemon(config: Config, feed_name: str) -> bool:
    """Ask the daemon running on this database to poll the feed, and print its report.

    False when no daemon listens (no socket, or one left by a daemon that was
    killed): the caller polls by itself then.
    """
    from monitor import control
    from monitor.errors import ControlError
    from monitor.pipeline import PollReport

    path = control.socket_path(config.settings)
    try:
        reply = control.ask(path, control.Request("poll", feed_name))
    except ControlError as exc:
        _fail(str(exc))
    if reply is None:
        return False
    if not reply["ok"]:
        if reply.get("kind") == "not_found":
            raise click.BadParameter(str(reply.get("error")), param_hint="--feed")
        _fail(f"the running daemon refused: {reply.get('error')}")
    try:
        reports = [PollReport(**{name: fields[name] for name in control.REPORT_FIELDS}) for fields in reply["reports"]]
        pid = int(reply["pid"])
    except (KeyError, TypeError, ValueError):
        _fail(f"the running daemon at {path} gave an unreadable answer")
    joined = "joined the poll it was running" if reply.get("joined") else "it polled now"
    click.echo(f"asked the running daemon (pid {pid}, {path}) to poll {feed_name}: {joined}", err=True)
    _print_polled(reports, "the daemon delivers them")
    return True


def _print_waiting(waiting: list[Any]) -> None:
    """Say what the outbox still holds after a one-shot run, and why: a channel down, a digest."""
    if not waiting:
        return
    from monitor.store import AlertStatus

    groups: dict[tuple[str, str, str], list[Any]] = {}
    for alert in waiting:
        why = alert.last_error if alert.status == AlertStatus.PENDING else alert.reason
        groups.setdefault((alert.status, alert.channel, why or ""), []).append(alert)
    click.echo(
        f"left in the outbox: {plural(len(waiting), 'alert')} (the daemon, `news-monitor run`, sends them when due)",
        err=True,
    )
    for (status, channel, why), alerts in sorted(groups.items()):
        when = min(alert.next_attempt_at for alert in alerts)
        verb = "pending, next try" if status == AlertStatus.PENDING else "held until"
        reason = f": {why}" if why else ""
        click.echo(f"  {len(alerts)} {verb} {when:%Y-%m-%d %H:%M} UTC on {channel!r}{reason}", err=True)


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_dir: Path, as_json: bool) -> None:
    """Per feed: last success, last error, next poll, items stored; and the outbox."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from monitor.instance import dead_after
    from monitor.redact import redact_url

    config = _load(config_dir)
    with _storage(config) as store:
        # Shown, so without the credentials a feed URL (or an error quoting it) may carry.
        feeds = [
            replace(feed, url=redact_url(feed.url), last_error=feed.last_error and redact_text(feed.last_error))
            for feed in store.feed_status()
        ]
        outbox = store.alert_counts()
        held_back = store.backfill_match_count()
        instances = store.instances(datetime.now(UTC), dead_after())
    if as_json:
        document = {
            "instances": [instance.to_dict() for instance in instances],
            "feeds": [feed.to_dict() for feed in feeds],
            "outbox": {str(k): v for k, v in outbox.items()},
            "backfill_matches": held_back,
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for feed in feeds:
        state = "" if feed.active else "  (not in config any more)"
        click.echo(f"{feed.name}{state}  {feed.url}")
        click.echo(f"    items stored:  {feed.items}")
        click.echo(f"    last success:  {_when(feed.last_success_at)}")
        if feed.last_error:
            click.echo(
                f"    last error:    {_when(feed.last_error_at)}: {feed.last_error} ({feed.error_count} in a row)"
            )
        click.echo(f"    next poll:     {_when(feed.next_poll_at)} ({feed.next_poll_reason or 'due'})")
    counts = ", ".join(f"{status} {count}" for status, count in outbox.items()) or "empty"
    click.echo(f"outbox: {counts}")
    click.echo(f"instances running: {len(instances) or 'none'}")
    for instance in instances:
        click.echo(
            f"    {instance.host}  pid {instance.pid}  started {_when(instance.started_at)}"
            f"  last heartbeat {_when(instance.heartbeat_at)}  feeds leased {instance.feeds_leased}"
        )
    if held_back:
        click.echo(
            f"first fetches: {plural(held_back, 'match', 'matches')} not alerted (old news); "
            "see `news-monitor alerts list --backfill`"
        )
