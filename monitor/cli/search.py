"""Full-text search of the stored items."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from monitor.cli.common import _load, _storage, config_option
from monitor.display import shown


@click.command()
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
        click.echo(shown(f"#{hit.item_id}  {when}  [{hit.feed}]  {marked(hit.title_marked)}"))
        if hit.link:
            click.echo(f"    {hit.link}")
        click.echo(shown(f"    {marked(hit.snippet)}"))
    if not as_json:
        click.echo(f"{len(hits)} items{' (limit reached)' if len(hits) == limit else ''}")
