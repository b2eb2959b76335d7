"""Watch rules against stored history: rules test, rules lint, explain, and how they print a match."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.common import _fail, _setup, _storage, bold, config_option, plural, styled
from monitor.config import RULES_FILE
from monitor.display import shown
from monitor.errors import RuleSyntaxError

if TYPE_CHECKING:
    from monitor.assembly import Setup
    from monitor.config import RuleConfig
    from monitor.items import Item
    from monitor.store import StoredItem


_QUERY_HELP = "Take QUERY_OR_RULE as a query even when it reads like a rule name."


@click.group()
def rules() -> None:
    """Work with watch rules."""


def _compile(query_or_rule: str, setup: Setup, *, as_query: bool = False) -> tuple[Any, RuleConfig | None, Any]:
    """The rule of that name (as assembled), else the text as a query; exits 1 on a syntax error.

    Text that reads as a rule name but names none is refused with the nearest
    rule, unless ``as_query`` (``--query``) says it is a query.
    """
    from monitor.rules.evaluate import compile_rule
    from monitor.rules.names import looks_like_rule_name, nearest_rule

    book = setup.rulebook
    if not as_query and query_or_rule in book.compiled:
        return book.compiled[query_or_rule], book.rules[query_or_rule], book.lexicon
    if not as_query and looks_like_rule_name(query_or_rule, book.rules):
        near = nearest_rule(query_or_rule, book.rules)
        hint = f"; did you mean {near!r}?" if near else ""
        _fail(f"no rule named {query_or_rule!r}{hint} (--query to search for the words)")
    if not as_query and looks_like_rule_name(query_or_rule, book.rules, near_only=False):
        # Shaped like a rule name but near none (``al-Assad``): searched for, and said so.
        click.echo(f"note: no rule is named {query_or_rule!r}; searching for the words", err=True)
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
@click.option("--query", "as_query", is_flag=True, help=_QUERY_HELP)
def rules_test(config_dir: Path, query_or_rule: str, since: str, limit: int, as_json: bool, as_query: bool) -> None:
    """Try a query, or the rule of that name, on the stored items.

    Prints how many items would have matched per day, the newest matches with
    why they matched, and how many alerts that would have sent once copies of
    the same story are counted once.
    """
    from monitor.backtest import render_histogram
    from monitor.durations import parse_duration
    from monitor.history import rule_history

    setup = _setup(config_dir)
    config = setup.config
    rule, rule_config, lexicon = _compile(query_or_rule, setup, as_query=as_query)
    try:
        until = datetime.now(UTC)
        cutoff = until - parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    if rule_config is not None and rule_config.name in setup.rulebook.surges:
        from monitor.cli.surges import test_surge_rule

        test_surge_rule(setup, rule, since, cutoff, until, limit, as_json)
        return
    plan = setup.rulebook.plans.get(rule_config.name) if rule_config else None
    with _storage(config) as store:
        report = rule_history(store, rule, lexicon, plan, config.settings.stories, since=cutoff, until=until).report
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
        click.echo(f"newest {len(sample)} of {plural(len(report.matches), 'match', 'matches')}:")
    for match in sample:
        _print_match(match.item_id, match.feed, match.item, match.first_seen_at, [h.to_dict() for h in match.hits])
    target = plural(len(plan.channels), "channel") if plan and len(plan.channels) > 1 else "one channel"
    notes = [
        f"{report.held} of them in digests" if report.held else "",
        f"{plural(report.suppressed, 'repeat')} suppressed" if report.suppressed else "",
        f"{plural(report.backfill, 'match', 'matches')} came in a first fetch, counted as news"
        if report.backfill
        else "",
    ]
    detail = "; ".join(note for note in notes if note)
    click.echo(
        f"{len(report.matches)} of {plural(report.scanned, 'stored item')} match {rule.query!r}: "
        f"{plural(report.stories, 'story', 'stories')}, {plural(report.alerts, 'alert')} to {target}"
        + (f" ({detail})" if detail else "")
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
    index_of = {rule.name: index for index, rule in enumerate(config.rules)}
    for finding in findings:
        # file:line:column as `check` writes it: the column of the cause inside the rule's query.
        index = index_of.get(finding.rule)
        path = ("rules", index, config.rules[index].text_key) if index is not None else ("rules",)
        where = config.where(RULES_FILE, path, column=finding.column)
        click.echo(f"{where}: {finding.severity}: rule {finding.rule!r}: {finding.message}")
    errors = sum(1 for f in findings if f.severity == "error")
    click.echo(
        f"{plural(len(config.rules), 'rule')} checked against {plural(scanned, 'stored item')}: "
        f"{plural(len(findings), 'finding')}, {plural(errors, 'error')}"
    )
    if errors:
        sys.exit(1)


@click.command()
@config_option
@click.argument("item")
@click.argument("query_or_rule")
@click.option("--query", "as_query", is_flag=True, help=_QUERY_HELP)
def explain(config_dir: Path, item: str, query_or_rule: str, as_query: bool) -> None:
    """Show why a stored ITEM matches a rule (or query), with the hits highlighted.

    ITEM is an item id (shown by `rules test`), a guid (as the feed wrote it,
    relative or not) or a link. Exits 1 when the rule does not match the item.
    """
    from monitor.backtest import document_of
    from monitor.rules.evaluate import explain as explain_match

    setup = _setup(config_dir)
    config = setup.config
    rule, _, lexicon = _compile(query_or_rule, setup, as_query=as_query)
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
    from monitor.alerts.markup import highlight

    item = stored.item
    why = [hit.to_dict() for hit in hits or []]
    click.echo(f"item #{stored.id}  [{stored.feed}]  first seen {stored.first_seen_at:%Y-%m-%d %H:%M} UTC")
    if item.link:
        click.echo(f"link:  {item.link}")
    if item.published_at:
        click.echo(f"published: {item.published_at:%Y-%m-%d %H:%M} UTC")
    click.echo(shown(f"title: {_marked(highlight(item.title, _spans(why, 'title')))}"))
    click.echo("")
    click.echo(shown(_marked(highlight(item.text, _spans(why, "body")))))
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
    """Hits in bold on a terminal, plain text when piped or with NO_COLOR."""
    style = styled()
    return "".join(bold(s.text, style=style) if s.hit else s.text for s in segments)


def _print_match(item_id: int, feed: str, item: Item, first_seen_at: datetime, why: list[dict[str, Any]]) -> None:
    when = (item.published_at or first_seen_at).strftime("%Y-%m-%d %H:%M")
    click.echo(shown(f"#{item_id}  {when}  [{feed}]  {item.title}"))
    if item.link:
        click.echo(f"    {item.link}")
    for hit in why:
        entity = f" (entity {hit['entity']})" if hit.get("entity") else ""
        click.echo(f"    why: {hit['term']} -> {hit['matched']!r} in {hit['field']}{entity}")
