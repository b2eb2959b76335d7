"""The ``news-monitor`` command. Thin: parse arguments, call the modules, print."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from monitor import __version__
from monitor.config import Config, load_config
from monitor.errors import ConfigError, MonitorError, RuleSyntaxError
from monitor.logs import setup_logging

if TYPE_CHECKING:
    from monitor.store import StoredItem

F = TypeVar("F", bound=Callable[..., Any])


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default="config",
        show_default=True,
        envvar="NEWS_MONITOR_CONFIG",
        show_envvar=True,
        help="Directory holding monitor.yaml, rules.yaml and entities.yaml.",
    )(function)


def logging_options(function: F) -> F:
    function = click.option(
        "--log-format", type=click.Choice(["kv", "json"]), default="kv", show_default=True, help="Log line format."
    )(function)
    return click.option(
        "--log-level",
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
        default="INFO",
        show_default=True,
        help="Least severe log level shown.",
    )(function)


def _load(config_dir: Path) -> Config:
    """Load the config or exit 1 with every problem as file:line:column: message."""
    try:
        return load_config(config_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(1)


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"news-monitor: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="news-monitor")
def main() -> None:
    """Watch news feeds and alert when a story matches your watch rules."""
    # Entities are extracted in one worker thread; BLAS threads of their own
    # only contend for the same cores (about 20% slower on two). numpy reads
    # this when it loads, which happens after this point (spaCy loads lazily).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@main.command()
@config_option
@logging_options
def run(config_dir: Path, log_format: str, log_level: str) -> None:
    """Run the daemon in the foreground (logs to stderr).

    SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the config, as does
    saving any of the config files.
    """
    setup_logging(log_level.upper(), log_format)
    config = _load(config_dir)

    async def serve() -> None:
        from monitor.daemon import Monitor
        from monitor.store import Store

        monitor = Monitor(config, Store.open(config.settings.database))
        try:
            await monitor.run()
        finally:
            await monitor.close()

    try:
        asyncio.run(serve())
    except MonitorError as exc:
        _fail(str(exc))


@main.command()
@config_option
def check(config_dir: Path) -> None:
    """Validate every config file; print each problem as file:line:column."""
    config = _load(config_dir)
    click.echo(f"{config.directory}: OK: {config.summary()}")


@main.command()
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
    config = _load(config_dir)
    if feed_name is not None and config.feed(feed_name) is None:
        known = ", ".join(feed.name for feed in config.settings.feeds) or "none"
        raise click.BadParameter(f"no feed named {feed_name!r} (feeds: {known})", param_hint="--feed")

    async def once_() -> tuple[list[Any], Any]:
        from monitor.daemon import Monitor
        from monitor.store import Store

        monitor = Monitor(config, Store.open(config.settings.database))
        try:
            return await monitor.poll_once(feed_name)
        finally:
            await monitor.close()

    try:
        reports, delivery = asyncio.run(once_())
    except MonitorError as exc:
        _fail(str(exc))
    failed = [r for r in reports if not r.ok]
    click.echo(
        f"polled {len(reports)} feeds: {len(reports) - len(failed)} ok, {len(failed)} failed; "
        f"{sum(r.new_items for r in reports)} new or changed items; {sum(r.alerts for r in reports)} alerts queued; "
        f"delivered {delivery.sent}, failed {delivery.failed}, dead {delivery.dead}",
        err=True,
    )
    for report in failed:
        click.echo(f"  {report.feed}: {report.error}", err=True)


@main.group()
def rules() -> None:
    """Work with watch rules."""


@rules.command("test")
@config_option
@click.argument("query_or_rule")
@click.option("--since", default=None, metavar="DURATION", help="Only items first seen within this long (e.g. 7d).")
@click.option("--limit", default=20, show_default=True, help="Show at most this many matches (0: all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per matching item.")
def rules_test(config_dir: Path, query_or_rule: str, since: str | None, limit: int, as_json: bool) -> None:
    """Run a query, or the rule of that name, against the stored items.

    Prints each matching item with why it matched, newest last.
    """
    from monitor.config import parse_duration
    from monitor.pipeline import document_for
    from monitor.rules.match import Lexicon, compile_rule, explain
    from monitor.store import Store

    config = _load(config_dir)
    rule_config = next((r for r in config.rules if r.name == query_or_rule), None)
    query = rule_config.query if rule_config else query_or_rule
    lexicon = Lexicon.from_entities(config.entities)
    try:
        rule = compile_rule(rule_config.name if rule_config else "query", query, lexicon)
    except RuleSyntaxError as exc:
        click.echo(query, err=True)
        click.echo(" " * (exc.column - 1) + "^", err=True)
        _fail(f"query: column {exc.column}: {exc.message}")
    try:
        cutoff = datetime.now(UTC) - parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc

    store = Store.open(config.settings.database)
    scanned = matched = 0
    try:
        for item in store.iter_items(since=cutoff):
            scanned += 1
            feed = config.feed(item.feed)
            document = document_for(item.item, item.feed, feed.tags if feed else (), item.mentions)
            hits = explain(rule, document, lexicon)
            if hits is None:
                continue
            matched += 1
            if limit and matched > limit:
                continue
            why = [hit.to_dict() for hit in hits]
            if as_json:
                click.echo(json.dumps(_match_json(item, why), ensure_ascii=False))
            else:
                _print_match(item, why)
    finally:
        store.close()
    if not as_json:
        shown = f", showing {limit}" if limit and matched > limit else ""
        click.echo(f"{matched} of {scanned} stored items match {query!r}{shown}")


def _match_json(stored: StoredItem, why: list[dict[str, Any]]) -> dict[str, Any]:
    item = stored.item
    return {
        "feed": stored.feed,
        "guid": item.guid,
        "link": item.link,
        "title": item.title,
        "published_at": item.published_at.isoformat() if item.published_at else None,
        "first_seen_at": stored.first_seen_at.isoformat(),
        "why": why,
    }


def _print_match(stored: StoredItem, why: list[dict[str, Any]]) -> None:
    item = stored.item
    when = (item.published_at or stored.first_seen_at).strftime("%Y-%m-%d %H:%M")
    click.echo(f"{when}  [{stored.feed}]  {item.title}")
    if item.link:
        click.echo(f"    {item.link}")
    for hit in why:
        entity = f" (entity {hit['entity']})" if hit.get("entity") else ""
        click.echo(f"    why: {hit['term']} -> {hit['matched']!r} in {hit['field']}{entity}")


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_dir: Path, as_json: bool) -> None:
    """Per feed: last success, last error, next poll, items stored; and the outbox."""
    from monitor.store import Store

    config = _load(config_dir)
    if not Path(config.settings.database).exists():
        _fail(f"no database at {config.settings.database} yet: run `news-monitor poll --once` or `news-monitor run`")
    store = Store.open(config.settings.database)
    try:
        feeds = store.feed_status()
        outbox = store.alert_counts()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"feeds": feeds, "outbox": outbox}, indent=2, ensure_ascii=False))
        return
    for feed in feeds:
        state = "" if feed["active"] else "  (not in config any more)"
        click.echo(f"{feed['name']}{state}  {feed['url']}")
        click.echo(f"    items stored:  {feed['items']}")
        click.echo(f"    last success:  {_when(feed['last_success_at'])}")
        if feed["last_error"]:
            click.echo(
                f"    last error:    {_when(feed['last_error_at'])}: {feed['last_error']} "
                f"({feed['error_count']} in a row)"
            )
        click.echo(f"    next poll:     {_when(feed['next_poll_at'])} ({feed['next_poll_reason'] or 'due'})")
    counts = ", ".join(f"{status} {count}" for status, count in outbox.items()) or "empty"
    click.echo(f"outbox: {counts}")


def _when(value: str | None) -> str:
    if not value:
        return "never"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S UTC")

