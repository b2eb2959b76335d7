"""The ``news-monitor`` command. Thin: parse arguments, call the modules, print."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from monitor import __version__
from monitor.config import Config, load_config
from monitor.errors import ConfigError, MonitorError, RuleSyntaxError
from monitor.logs import setup_logging

if TYPE_CHECKING:
    from monitor.assembly import Setup
    from monitor.config import RuleConfig
    from monitor.feeds.discover import DiscoveredFeed
    from monitor.items import Item
    from monitor.store import Storage, StoredItem

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
        _problems(exc)


def _setup(config_dir: Path) -> Setup:
    """Load and assemble the config (rules compiled, channels built) or exit 1 with every problem."""
    from monitor.assembly import load_setup

    try:
        return load_setup(config_dir)
    except ConfigError as exc:
        _problems(exc)


def _problems(exc: ConfigError) -> NoReturn:
    for problem in exc.problems:
        click.echo(problem, err=True)
    sys.exit(1)


@contextmanager
def _storage(config: Config, *, create: bool = False) -> Iterator[Storage]:
    """The open database (closed on the way out); exits 1 when there is none yet and ``create`` is False."""
    from monitor.store import open_storage

    if not create and not Path(config.settings.database).exists():
        _fail(f"no database at {config.settings.database} yet: run `news-monitor poll --once` or `news-monitor run`")
    with open_storage(config.settings.database) as store:
        yield store


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"news-monitor: {message}", err=True)
    sys.exit(code)


class _Commands(click.Group):
    """Every command's own errors end in one line on stderr and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            _fail(str(exc))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
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


@main.command()
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
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for alert in waiting:
        why = alert.last_error if alert.status == "pending" else alert.reason
        groups.setdefault((alert.status, alert.channel, why or ""), []).append(alert)
    click.echo(f"left in the outbox: {len(waiting)} alerts (the daemon, `news-monitor run`, sends them when due)", err=True)
    for (status, channel, why), alerts in sorted(groups.items()):
        when = min(alert.next_attempt_at for alert in alerts)
        verb = "pending, next try" if status == "pending" else "held until"
        reason = f": {why}" if why else ""
        click.echo(f"  {len(alerts)} {verb} {when:%Y-%m-%d %H:%M} UTC on {channel!r}{reason}", err=True)


@main.group()
def rules() -> None:
    """Work with watch rules."""


def _compile(query_or_rule: str, setup: Setup) -> tuple[Any, RuleConfig | None, Any]:
    """The rule of that name (as assembled), else the text as a query; exits 1 on a syntax error."""
    from monitor.rules.evaluate import compile_rule

    book = setup.rulebook
    if query_or_rule in book.compiled:
        return book.compiled[query_or_rule], book.rules[query_or_rule], book.lexicon
    try:
        return compile_rule("query", query_or_rule, book.lexicon), None, book.lexicon
    except RuleSyntaxError as exc:
        click.echo(query_or_rule, err=True)
        click.echo(" " * (exc.column - 1) + "^", err=True)
        _fail(f"query: column {exc.column}: {exc.message}")


@rules.command("test")
@config_option
@click.argument("query_or_rule")
@click.option("--since", default="30d", show_default=True, metavar="DURATION", help="How far back: items first seen within this long.")
@click.option("--limit", default=20, show_default=True, help="Show at most this many matches, newest first (0: all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per matching item (feed, guid, link, title, why, ...).")
def rules_test(config_dir: Path, query_or_rule: str, since: str, limit: int, as_json: bool) -> None:
    """Try a query, or the rule of that name, on the stored items.

    Prints how many items would have matched per day, the newest matches with
    why they matched, and how many alerts that would have sent once copies of
    the same story are counted once.
    """
    from monitor.backtest import backtest, render_histogram
    from monitor.durations import parse_duration

    setup = _setup(config_dir)
    config = setup.config
    rule, rule_config, lexicon = _compile(query_or_rule, setup)
    try:
        until = datetime.now(UTC)
        cutoff = until - parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    plan = setup.rulebook.plans.get(rule_config.name) if rule_config else None
    stories = config.settings.stories
    with _storage(config) as store:
        # Days before the first stored item are not quiet days, just days we did not watch.
        start = max(cutoff, store.first_seen(cutoff) or until)
        # Items from a story window earlier are stories the period's items may have joined.
        history = list(store.iter_items(since=cutoff - stories.window))
        report = backtest(
            rule, history, lexicon,
            channels=plan.channels if plan else ("console",), policy=plan.policy if plan else None,
            join_order=store.join_order([stored.id for stored in history]),
            since=start, until=until, story_window=stories.window, threshold=stories.threshold,
        )  # fmt: skip
    sample = report.sample(limit or len(report.matches))
    if as_json:
        for match in sample:
            click.echo(json.dumps(match.to_dict(), ensure_ascii=False))
        return
    click.echo(f"{rule.name}: {rule.query}")
    click.echo(f"matches per day (first seen), up to {since} back:")
    for line in render_histogram(report.per_day):
        click.echo(f"  {line}")
    if sample:
        click.echo(f"newest {len(sample)} of {len(report.matches)} matches:")
    for match in sample:
        _print_match(match.item_id, match.feed, match.item, match.first_seen_at, [h.to_dict() for h in match.hits])
    target = f"{len(plan.channels)} channels" if plan else "one channel"
    notes = [
        f"{report.held} of them in digests" if report.held else "",
        f"{report.suppressed} repeats suppressed" if report.suppressed else "",
        f"{report.backfill} matches came in a first fetch, counted as news" if report.backfill else "",
    ]
    detail = "; ".join(note for note in notes if note)
    click.echo(
        f"{len(report.matches)} of {report.scanned} stored items match {rule.query!r}: "
        f"{report.stories} stories, {report.alerts} alerts to {target}" + (f" ({detail})" if detail else "")
    )


@rules.command("lint")
@config_option
@click.option("--almost-all", default=0.5, show_default=True, help="Flag rules matching more than this share of history.")
def rules_lint(config_dir: Path, almost_all: float) -> None:
    """Flag rules that can never match, match almost everything, or name terms never seen.

    History is every stored item. Exits 1 when a rule can never match.
    """
    from monitor.backtest import document_of
    from monitor.rules.lint import lint

    setup = _setup(config_dir)
    config = setup.config
    lexicon = setup.rulebook.lexicon
    compiled = list(setup.rulebook.compiled.values())
    with _storage(config) as store:
        scanned = store.count("items")
        documents = (document_of(stored) for stored in store.iter_items())
        findings = lint(compiled, documents, lexicon, almost_all=almost_all)
    for finding in findings:
        where = config.rule_positions.get(finding.rule)
        location = f"{config.directory / 'rules.yaml'}:{where[0]}: " if where else ""
        column = f" (column {finding.column})" if finding.column else ""
        click.echo(f"{location}{finding.severity}: rule {finding.rule!r}{column}: {finding.message}")
    errors = sum(1 for f in findings if f.severity == "error")
    click.echo(f"{len(config.rules)} rules checked against {scanned} stored items: {len(findings)} findings, {errors} errors")
    if errors:
        sys.exit(1)


@main.command()
@config_option
@click.argument("item")
@click.argument("query_or_rule")
def explain(config_dir: Path, item: str, query_or_rule: str) -> None:
    """Show why a stored ITEM matches a rule (or query), with the hits highlighted.

    ITEM is an item id (shown by `rules test`), a guid or a link. Exits 1 when
    the rule does not match the item.
    """
    from monitor.backtest import document_of
    from monitor.rules.evaluate import explain as explain_match

    setup = _setup(config_dir)
    config = setup.config
    rule, _, lexicon = _compile(query_or_rule, setup)
    with _storage(config) as store:
        found = store.find_items(item)
    if not found:
        _fail(f"no stored item with id, guid or link {item!r}")
    matched_any = False
    for stored in found:
        hits = explain_match(rule, document_of(stored), lexicon)
        _print_explanation(stored, rule, hits)
        matched_any = matched_any or hits is not None
    if not matched_any:
        sys.exit(1)


def _print_explanation(stored: StoredItem, rule: Any, hits: list[Any] | None) -> None:
    from monitor.alerts.render import highlight

    item = stored.item
    why = [hit.to_dict() for hit in hits or []]
    click.echo(f"item #{stored.id}  [{stored.feed}]  first seen {stored.first_seen_at:%Y-%m-%d %H:%M} UTC")
    if item.link:
        click.echo(f"link:  {item.link}")
    if item.published_at:
        click.echo(f"published: {item.published_at:%Y-%m-%d %H:%M} UTC")
    click.echo(f"title: {_marked(highlight(item.title, _spans(why, 'title')))}")
    click.echo("")
    click.echo(_marked(highlight(item.text, _spans(why, "body"))))
    click.echo("")
    if stored.mentions:
        names = sorted({f"{m.canonical} ({m.type})" for m in stored.mentions})
        click.echo("entities: " + ", ".join(names))
    if hits is None:
        click.echo(f"rule {rule.name!r} ({rule.query}) does NOT match this item")
        return
    click.echo(f"rule {rule.name!r} ({rule.query}) matches:")
    for hit in why:
        entity = f" (entity {hit['entity']})" if hit.get("entity") else ""
        click.echo(f"    {hit['term']} -> {hit['matched']!r} in {hit['field']} at {hit['start']}-{hit['end']}{entity}")


def _spans(why: list[dict[str, Any]], field: str) -> list[tuple[int, int]]:
    return [(hit["start"], hit["end"]) for hit in why if hit["field"] == field]


def _marked(segments: Any) -> str:
    """Hits in bold on a terminal, between ** elsewhere (so pipes keep them)."""
    tty = sys.stdout.isatty()
    return "".join(
        (click.style(s.text, bold=True, fg="yellow") if tty else f"**{s.text}**") if s.hit else s.text
        for s in segments
    )


def _print_match(item_id: int, feed: str, item: Item, first_seen_at: datetime, why: list[dict[str, Any]]) -> None:
    when = (item.published_at or first_seen_at).strftime("%Y-%m-%d %H:%M")
    click.echo(f"#{item_id}  {when}  [{feed}]  {item.title}")
    if item.link:
        click.echo(f"    {item.link}")
    for hit in why:
        entity = f" (entity {hit['entity']})" if hit.get("entity") else ""
        click.echo(f"    why: {hit['term']} -> {hit['matched']!r} in {hit['field']}{entity}")


@main.group()
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
        interval = f"every {feed.interval}" if feed.interval else "adaptive"
        if as_json:
            record = {
                "name": feed.name, "url": feed.url, "source": feed.source, "title": feed.title,
                "tags": list(feed.tags), "interval_seconds": feed.interval.total_seconds() if feed.interval else None,
            }  # fmt: skip
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            tags = f"  tags={','.join(feed.tags)}" if feed.tags else ""
            click.echo(f"{feed.name}  [{feed.source}]  {feed.url}  {interval}{tags}")
    if not as_json:
        click.echo(f"{len(rows)} feeds")


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
    click.echo(f"added feed {chosen!r}: {feed_url} ({title or 'untitled'}, {count} items now)")


async def _find_feed(url: str, config: Config) -> DiscoveredFeed:
    """The feed at ``url``, or the first one the page at ``url`` links to."""
    from monitor.feeds.discover import find_feed
    from monitor.feeds.fetch import new_client

    poll = config.settings.poll
    async with new_client(timeout=poll.timeout.total_seconds()) as client:
        return await find_feed(client, url, max_bytes=poll.max_bytes)


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
    """Add the feeds of an OPML file; its folders and categories become tags."""
    from monitor.feeds.discover import suggest_name
    from monitor.feeds.opml import OpmlError, parse_opml
    from monitor.items import FeedSpec

    config = _load(config_dir)
    try:
        subscriptions = parse_opml(opml_file.read_bytes())
    except OpmlError as exc:
        _fail(f"{opml_file}:{exc.line or 1}:{exc.column or 1}: {exc.message}")
    added = skipped = 0
    now = datetime.now(UTC)
    with _storage(config, create=True) as store:
        store.sync_feeds(config.feed_specs(), now)
        known = store.feeds(active_only=False)
        taken = {feed.name for feed in known}
        urls = {feed.url for feed in known}
        for subscription in subscriptions:
            if subscription.url in urls:
                skipped += 1
                continue
            name = suggest_name(subscription.title, subscription.url, taken)
            store.add_feed(FeedSpec(name, subscription.url, tags=subscription.tags), now)
            taken.add(name)
            urls.add(subscription.url)
            added += 1
    click.echo(f"imported {added} feeds from {opml_file} ({skipped} already there)")


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
        click.echo(f"exported {len(subscriptions)} feeds to {output}", err=True)


@main.group()
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
def alerts_list(config_dir: Path, status: str | None, rule: str | None, limit: int, as_json: bool) -> None:
    """The newest alerts with their state, attempts and the reason of the last failure."""
    from monitor.store import AlertStatus

    config = _load(config_dir)
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
        click.echo(f"    [{row.feed}] {row.title}")
        if len(row.outlets) > 1:
            click.echo(f"    outlets: {', '.join(row.outlets)}")
        if row.reason:
            click.echo(f"    why {row.status}: {row.reason}")
        if row.last_error:
            click.echo(f"    last error: {row.last_error}")
    if not as_json:
        click.echo(f"{len(rows)} alerts")


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
    click.echo(f"{changed} alerts due again")


@main.command("notify-test")
@config_option
@click.argument("channel")
def notify_test(config_dir: Path, channel: str) -> None:
    """Send a test message to CHANNEL and say why when it fails."""
    from monitor.alerts.render import render_test_message

    setup = _setup(config_dir)
    found = setup.channels.get(channel)
    if found is None:
        raise click.BadParameter(f"no channel named {channel!r} (channels: {', '.join(setup.channels)})")
    message = render_test_message(channel, found.kind, datetime.now(UTC), found.renderer)
    result = found.sender.send(message)
    if not result.ok:
        _fail(f"channel {channel!r} ({found.sender.redacted_url}) failed: {result.reason or 'no reason given'}")
    click.echo(f"sent a test message to {channel!r} ({found.sender.redacted_url})", err=True)


@main.command()
@config_option
@click.argument("query")
@click.option("--since", default=None, metavar="DURATION", help="Only items first seen within this long (e.g. 7d).")
@click.option("--limit", default=20, show_default=True, help="Show at most this many items.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item.")
def search(config_dir: Path, query: str, since: str | None, limit: int, as_json: bool) -> None:
    """Full-text search of the stored titles and texts, best matches first.

    QUERY is plain words, or SQLite FTS5 syntax: "exact phrase", prefix*,
    AND, OR, NOT, title:word. Matched words are highlighted in the snippet.
    """
    from monitor.durations import parse_duration
    from monitor.store import HIGHLIGHT_END, HIGHLIGHT_START

    config = _load(config_dir)
    try:
        cutoff = datetime.now(UTC) - parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    with _storage(config) as store:
        hits = store.search(query, since=cutoff, limit=limit)
    tty = sys.stdout.isatty()

    def marked(text: str) -> str:
        if as_json:
            return text.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "")
        start, end = ("\x1b[1;33m", "\x1b[0m") if tty else ("**", "**")
        return " ".join(text.replace(HIGHLIGHT_START, start).replace(HIGHLIGHT_END, end).split())

    for hit in hits:
        if as_json:
            record = {
                "id": hit.item_id, "feed": hit.feed, "title": hit.title, "link": hit.link,
                "published_at": hit.published_at.isoformat() if hit.published_at else None,
                "snippet": marked(hit.snippet),
            }  # fmt: skip
            click.echo(json.dumps(record, ensure_ascii=False))
            continue
        when = (hit.published_at or hit.first_seen_at).strftime("%Y-%m-%d %H:%M")
        click.echo(f"#{hit.item_id}  {when}  [{hit.feed}]  {marked(hit.title_marked)}")
        if hit.link:
            click.echo(f"    {hit.link}")
        click.echo(f"    {marked(hit.snippet)}")
    if not as_json:
        click.echo(f"{len(hits)} items{' (limit reached)' if len(hits) == limit else ''}")


@main.command()
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


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"

