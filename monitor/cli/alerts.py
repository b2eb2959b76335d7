"""The alert outbox and channels: alerts list, alerts retry, notify-test."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import _fail, _load, _setup, _storage, _when, config_option, logging_options, plural
from monitor.display import shown


@click.group()
def alerts() -> None:
    """Look at the alert outbox and send alerts again."""


@alerts.command("list")
@config_option
@click.option(
    "--status",
    type=click.Choice(["pending", "held", "sent", "dead", "suppressed"]),
    help="Only alerts in this state.",
)
@click.option("--rule", metavar="NAME", help="Only alerts of this rule.")
@click.option("--limit", default=50, show_default=True, help="Show at most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert.")
@click.option(
    "--backfill", is_flag=True, help="Instead: matches that came with a feed's first fetch and alerted nobody."
)
def alerts_list(
    config_dir: Path, status: str | None, rule: str | None, limit: int, as_json: bool, backfill: bool
) -> None:
    """The newest alerts with their state, attempts and the reason of the last failure.

    With --backfill: the matches found in the items of a feed's first fetch,
    which are old news and alert nobody (unless the feed sets alert_first_fetch).
    """
    from monitor.store import AlertStatus

    if backfill and status:
        raise click.UsageError("--backfill lists matches that were never alerted: it takes no --status")
    config = _load(config_dir)
    if backfill:
        _list_backfill(config, rule, limit, as_json)
        return
    with _storage(config) as store:
        rows = store.list_alerts(status=AlertStatus(status) if status else None, rule=rule, limit=limit)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row.to_dict(), ensure_ascii=False))
            continue
        when = _when(row.sent_at if row.status == AlertStatus.SENT else row.next_attempt_at)
        state = {
            AlertStatus.SENT: f"sent {when}",
            AlertStatus.PENDING: f"pending, next try {when}",
            AlertStatus.HELD: f"held until {when}",
        }.get(row.status, str(row.status))
        click.echo(f"#{row.id}  {state}  rule={row.rule} channel={row.channel} attempts={row.attempts}")
        if row.kind == "surge":  # what surged and how much, not one of the items that counted
            click.echo(shown(f"    {row.title} — {row.summary}" if row.summary else f"    {row.title}"))
        else:
            click.echo(shown(f"    [{row.feed}] {row.title}"))
        if len(row.outlets) > 1:
            click.echo(f"    outlets: {', '.join(row.outlets)}")
        if row.reason:
            click.echo(f"    why {row.status}: {row.reason}")
        if row.last_error:
            click.echo(f"    last error: {row.last_error}")
    if not as_json:
        click.echo(plural(len(rows), "alert"))


def _list_backfill(config: Any, rule: str | None, limit: int, as_json: bool) -> None:
    with _storage(config) as store:
        rows = store.backfill_matches(rule=rule, limit=limit)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row.to_dict(), ensure_ascii=False))
            continue
        click.echo(f"item {row.item_id}  rule={row.rule}  first seen {_when(row.first_seen_at)}")
        click.echo(shown(f"    [{row.feed}] {row.title}"))
        if row.link:
            click.echo(shown(f"    {row.link}"))
    if not as_json:
        click.echo(f"{plural(len(rows), 'match', 'matches')} in first fetches, not alerted")


@alerts.command("retry")
@config_option
@click.argument("alert_ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--dead", is_flag=True, help="Every dead alert.")
def alerts_retry(config_dir: Path, alert_ids: tuple[int, ...], dead: bool) -> None:
    """Send alerts again: by ID, or every dead one with --dead.

    The running daemon picks them up at its next delivery tick. An alert given
    up after its retry window gets one more attempt.
    """
    if not alert_ids and not dead:
        raise click.UsageError("name alert IDs or use --dead")
    config = _load(config_dir)
    with _storage(config) as store:
        changed = store.retry_alerts(datetime.now(UTC), ids=alert_ids, dead=dead)
    click.echo(f"{plural(changed, 'alert')} due again")


@click.command("notify-test")
@config_option
@logging_options
@click.argument("channel")
def notify_test(config_dir: Path, log_format: str, log_level: str, channel: str) -> None:
    """Send a test message to CHANNEL and say why when it fails."""
    import asyncio

    from monitor.alerts.lanes import Lane
    from monitor.alerts.render import render_test_message
    from monitor.logs import setup_logging

    setup_logging(log_level.upper(), log_format)  # apprise's own lines, in the product's format
    setup = _setup(config_dir)
    found = setup.channels.get(channel)
    if found is None:
        raise click.BadParameter(f"no channel named {channel!r} (channels: {', '.join(setup.channels)})")
    message = render_test_message(channel, found.kind, datetime.now(UTC), found.renderer)
    timeout = setup.config.settings.delivery.send_timeout.total_seconds()
    result = asyncio.run(Lane(channel).send(found.sender.send, message, timeout))  # bounded, as the daemon's sends
    if not result.ok:
        _fail(f"channel {channel!r} ({found.sender.redacted_url}) failed: {result.reason or 'no reason given'}")
    click.echo(f"sent a test message to {channel!r} ({found.sender.redacted_url})", err=True)
