"""Full-text search of the stored items."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import click

from monitor.cli.common import _fail, _load, _storage, bold, config_option, plural, styled
from monitor.display import shown

# What the rule language has and full-text search lacks: fields other than title/text, NEAR/n, /regex/, -word.
_RULE_FIELD = re.compile(r"(?:^|[\s(])-?((?:person|org|place|entity|author|feed|tag|site):)", re.IGNORECASE)
_RULE_NEAR = re.compile(r"\bNEAR/\d+")
_RULE_REGEX = re.compile(r"(?:^|[\s(:])(/[^/\s][^/]*/)(?=$|[\s)])")
_RULE_NOT = re.compile(r"(?:^|[\s(])(-[\w\"(])")


@click.command()
@config_option
@click.argument("query")
@click.option("--since", default=None, metavar="DURATION", help="Only items first seen within this long (e.g. 7d).")
@click.option("--limit", default=20, show_default=True, help="Show at most this many items.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item.")
def search(config_dir: Path, query: str, since: str | None, limit: int, as_json: bool) -> None:
    """Full-text search of the stored titles and texts, best matches first.

    \b
    QUERY takes full-text syntax (SQLite FTS5), not the rule language:
      words              every word, in any order
      "exact phrase"     the words side by side
      prefix*            words that start so
      OR, NOT, AND       in capitals; title:word searches titles only
    Entity fields (person:), NEAR/n and /regex/ belong to the rule language:
    try those with `news-monitor rules test QUERY`. Matched words are
    highlighted in the snippet.
    """
    from monitor.durations import parse_duration
    from monitor.store import HIGHLIGHT_END, HIGHLIGHT_START

    rule_language = _rule_language(query)
    if rule_language:
        _fail(
            f'search takes full-text words, "phrases", OR, NOT and prefix*; {rule_language} is rule language: '
            f"try `news-monitor rules test {shlex.quote(query)}`"
        )
    config = _load(config_dir)
    try:
        cutoff = datetime.now(UTC) - parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    with _storage(config) as store:
        hits = store.search(query, since=cutoff, limit=limit)
    style = styled() and not as_json

    def marked(text: str) -> str:
        """Hits in bold on a terminal, plain text when piped, with NO_COLOR or in JSON."""
        parts = re.split(f"{re.escape(HIGHLIGHT_START)}(.*?){re.escape(HIGHLIGHT_END)}", text, flags=re.DOTALL)
        joined = "".join(bold(part, style=style) if index % 2 else part for index, part in enumerate(parts))
        # A highlight mark left unclosed (a snippet cut inside one) is dropped too.
        joined = joined.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "")
        return joined if as_json else " ".join(joined.split())

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
        click.echo(shown(f"#{hit.item_id}  {when}  [{hit.feed}]  {marked(hit.title_marked)}"))
        if hit.link:
            click.echo(f"    {hit.link}")
        click.echo(shown(f"    {marked(hit.snippet)}"))
    if not as_json:
        click.echo(f"{plural(len(hits), 'item')}{' (limit reached)' if len(hits) == limit else ''}")


def _rule_language(query: str) -> str | None:
    """The first piece of the rule language in ``query`` (``'person:'``, ``'NEAR/5'``...), else None."""
    if '"' in query:  # within a phrase anything is words; a quoted query is full-text by intent
        query = re.sub(r'"[^"]*"?', " ", query)
    for pattern in (_RULE_FIELD, _RULE_NEAR, _RULE_REGEX, _RULE_NOT):
        found = pattern.search(query)
        if found:
            return repr(found.group(found.lastindex or 0))
    return None
