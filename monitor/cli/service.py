"""The service: run the daemon, check the config, poll once, show each feed's status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import _load, _setup, _storage, _when, config_option, logging_options
from monitor.logs import setup_logging


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

    config = _setup(config_dir).config
    database = Path(config.settings.database)
    if database.exists():
        with open_storage(database) as store:  # refuses a file that is not ours, migrates an older one
            state = f"database {database} (schema {store.schema_version})"
    else:
        state = f"database {database} will be created on the first run"
    click.echo(f"{config.directory}: OK: {config.summary()}; {state}")


@click.command()
@config_option
@logging_options
@click.option("--once", is_flag=True, help="Poll once, deliver the alerts, exit (required).")
@click.option("--feed", "feed_name", metavar="NAME", help="Poll only this feed.")
def poll(config_dir: Path, log_format: str, log_level: str, once: bool, feed_name: str | None) -> None:
    """Poll every feed (or one) now, store and match, deliver the alerts, exit.

    Exits 0 even when some feeds fail (each failure is logged); non-zero only
    when the run itself could not happen.
    """
    if not once:
        raise click.UsageError("poll needs --once (the long-running service is `news-monitor run`)")
    setup_logging(log_level.upper(), log_format)
    setup = _setup(config_dir)

    async def once_() -> tuple[list[Any], Any, list[Any]]:
        from monitor.daemon import Monitor
        from monitor.errors import NotFoundError
        from monitor.store import AlertStatus, open_storage

        monitor = Monitor(setup, open_storage(setup.config.settings.database))
        try:
            try:
                reports, delivery = await monitor.poll_once(feed_name)
            except NotFoundError as exc:
                raise click.BadParameter(str(exc), param_hint="--feed") from None
            waiting = [
                *monitor.store.list_alerts(status=AlertStatus.PENDING, limit=10_000),
                *monitor.store.list_alerts(status=AlertStatus.HELD, limit=10_000),
            ]
            return reports, delivery, waiting
        finally:
            await monitor.close()

    reports, delivery, waiting = asyncio.run(once_())
    failed = [r for r in reports if not r.ok]
    click.echo(
        f"polled {len(reports)} feeds: {len(reports) - len(failed)} ok, {len(failed)} failed; "
        f"{sum(r.new_items for r in reports)} new or changed items; {sum(r.alerts for r in reports)} alerts queued; "
        f"delivered {delivery.sent}, failed {delivery.failed}, dead {delivery.dead}",
        err=True,
    )
    for report in failed:
        click.echo(f"  {report.feed}: {report.error}", err=True)
    _print_waiting(waiting)


def _print_waiting(waiting: list[Any]) -> None:
    """Say what the outbox still holds after a one-shot run, and why: a channel down, a digest."""
    if not waiting:
        return
    from monitor.store import AlertStatus

    groups: dict[tuple[str, str, str], list[Any]] = {}
    for alert in waiting:
        why = alert.last_error if alert.status == AlertStatus.PENDING else alert.reason
        groups.setdefault((alert.status, alert.channel, why or ""), []).append(alert)
    click.echo(f"left in the outbox: {len(waiting)} alerts (the daemon, `news-monitor run`, sends them when due)", err=True)
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
    config = _load(config_dir)
    with _storage(config) as store:
        feeds = store.feed_status()
        outbox = store.alert_counts()
    if as_json:
        document = {"feeds": [feed.to_dict() for feed in feeds], "outbox": {str(k): v for k, v in outbox.items()}}
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
