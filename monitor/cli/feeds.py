"""The feeds polled: feeds list, add, remove, import and export (OPML)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli.common import _fail, _load, _storage, config_option, plural
from monitor.display import shown
from monitor.durations import format_duration
from monitor.redact import redact_url

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.feeds.discover import DiscoveredFeed


@click.group()
def feeds() -> None:
    """List, add, remove, import and export feeds.

    Feeds added here live in the database and survive reloads; feeds declared
    in monitor.yaml stay governed by it.
    """


@feeds.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed.")
def feeds_list(config_dir: Path, as_json: bool) -> None:
    """Every feed polled: name, where it comes from, URL, tags, interval."""
    config = _load(config_dir)
    with _storage(config, create=True) as store:
        store.sync_feeds(config.feed_specs(), datetime.now(UTC))
        rows = store.feeds()
    for feed in rows:
        interval = f"every {format_duration(feed.interval)}" if feed.interval else "adaptive"
        if as_json:
            record = {
                "name": feed.name, "url": redact_url(feed.url), "source": feed.source, "title": feed.title,
                "tags": list(feed.tags), "interval_seconds": feed.interval.total_seconds() if feed.interval else None,
            }  # fmt: skip
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            tags = f"  tags={','.join(feed.tags)}" if feed.tags else ""
            click.echo(f"{feed.name}  [{feed.source}]  {redact_url(feed.url)}  {interval}{tags}")
    if not as_json:
        click.echo(plural(len(rows), "feed"))


@feeds.command("add")
@config_option
@click.argument("url")
@click.option("--name", help="The feed's name (default: from its title).")
@click.option("--interval", metavar="DURATION", help="Poll this often instead of adapting to the feed (e.g. 5m).")
@click.option("--tag", "tags", multiple=True, help="A tag for tag: rules; repeat for more.")
@click.option("--alert-first-fetch", is_flag=True, help="Alert on the items of the first fetch too.")
def feeds_add(
    config_dir: Path, url: str, name: str | None, interval: str | None, tags: tuple[str, ...], alert_first_fetch: bool
) -> None:
    """Add a feed by its URL, or by a web page that links to its feed."""
    from monitor.durations import parse_duration
    from monitor.feeds.discover import suggest_name
    from monitor.items import FeedSpec

    config = _load(config_dir)
    try:
        every = parse_duration(interval) if interval else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--interval") from exc
    found = asyncio.run(_find_feed(url, config))
    feed_url, title, count = found.url, found.title, len(found.items)
    with _storage(config, create=True) as store:
        taken = {feed.name for feed in store.feeds(active_only=False)}
        chosen = name or suggest_name(title, feed_url, taken)
        store.add_feed(FeedSpec(chosen, feed_url, every, tags, alert_first_fetch), datetime.now(UTC))
    click.echo(
        shown(f"added feed {chosen!r}: {redact_url(feed_url)} ({title or 'untitled'}, {plural(count, 'item')} now)")
    )


async def _find_feed(url: str, config: Config) -> DiscoveredFeed:
    """The feed at ``url``, or the first one the page at ``url`` links to."""
    from monitor.feeds.addresses import private_access
    from monitor.feeds.discover import find_feed
    from monitor.feeds.fetch import new_client

    poll = config.settings.poll
    # A feed added here is not one of the config's: it reaches private addresses only if the config says so.
    private = private_access(poll.allow_private, url, from_config=False)
    async with new_client(timeout=poll.timeout.total_seconds()) as client:
        return await find_feed(client, url, max_bytes=poll.max_bytes, private=private)


@feeds.command("remove")
@config_option
@click.argument("name")
def feeds_remove(config_dir: Path, name: str) -> None:
    """Stop polling a feed added from the CLI; its stored items stay."""
    config = _load(config_dir)
    with _storage(config) as store:
        store.remove_feed(name)
    click.echo(f"removed feed {name!r}")


@feeds.command("import")
@config_option
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def feeds_import(config_dir: Path, opml_file: Path) -> None:
    """Add the feeds of an OPML file; its folders and categories become tags.

    An outline whose URL cannot be a feed is named on stderr, with its line,
    and the others are imported; the exit status is then 1.
    """
    from monitor.feeds.opml import MAX_OPML_BYTES, OpmlError, parse_opml, plan_import

    config = _load(config_dir)
    try:
        with opml_file.open("rb") as file:
            data = file.read(MAX_OPML_BYTES + 1)  # one byte more is enough to refuse a bigger file
        subscriptions = parse_opml(data)
    except OSError as exc:
        _fail(f"{opml_file}: cannot read the file: {exc.strerror or exc}")
    except OpmlError as exc:
        _fail(f"{opml_file}:{exc.line or 1}:{exc.column or 1}: {exc.message}")
    now = datetime.now(UTC)
    with _storage(config, create=True) as store:
        with store.transaction():
            store.sync_feeds(config.feed_specs(), now)
            active = {feed.id for feed in store.feeds()}
            known = [(feed.name, feed.url, feed.id in active) for feed in store.feeds(active_only=False)]
            plan = plan_import(subscriptions, known)
            store.add_feeds(plan.add, now)
    for refused in plan.refused:
        click.echo(f"news-monitor: {opml_file}:{refused.feed.line}:{refused.feed.column}: {refused}", err=True)
    refused_note = f", {len(plan.refused)} refused" if plan.refused else ""
    click.echo(
        f"imported {plural(len(plan.add), 'feed')} from {opml_file} ({plan.present} already there{refused_note})"
    )
    if plan.refused:
        sys.exit(1)


@feeds.command("export")
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
def feeds_export(config_dir: Path, output: Path | None) -> None:
    """Every feed polled, as OPML 2.0 (tags become folders and categories)."""
    from monitor.feeds.opml import OpmlFeed, export_opml

    config = _load(config_dir)
    with _storage(config, create=True) as store:
        store.sync_feeds(config.feed_specs(), datetime.now(UTC))
        subscriptions = [OpmlFeed(feed.url, feed.title or feed.name, None, feed.tags) for feed in store.feeds()]
    document = export_opml(subscriptions, "news-monitor feeds", datetime.now(UTC))
    if output is None:
        click.echo(document.decode("utf-8"), nl=False)
    else:
        output.write_bytes(document)
        click.echo(f"exported {plural(len(subscriptions), 'feed')} to {output}", err=True)
