"""``rules test`` on a spike rule: when it would have fired over the stored history, and on what."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.common import _storage, plural
from monitor.display import shown

if TYPE_CHECKING:
    from monitor.assembly import Setup
    from monitor.rules.evaluate import CompiledRule


def test_surge_rule(
    setup: Setup, rule: CompiledRule, since: str, cutoff: datetime, until: datetime, limit: int, as_json: bool
) -> None:
    """Replay the spike rule's checks over history (the live check, at each matching arrival) and print its surges."""
    from monitor.backtest import document_of
    from monitor.durations import format_duration
    from monitor.rules import surge
    from monitor.rules.evaluate import explain
    from monitor.surges import point_of

    book = setup.rulebook
    spec = book.surges[rule.name].spec
    points: list[surge.Point] = []
    first_fetch = 0
    with _storage(setup.config) as store:
        watched = store.first_seen()
        # The lookback before the period: the baseline of its first checks, and the state it starts in.
        for stored in store.iter_items(since=cutoff - spec.lookback):
            if explain(rule, document_of(stored), book.lexicon) is None:
                continue
            if stored.backfill:
                first_fetch += stored.first_seen_at >= cutoff
            else:
                points.append(point_of(stored))
    start = max(cutoff, watched or until)
    firings = surge.replay(points, spec, watched, since=start, query=rule.query)
    shown_firings = firings[::-1][: limit or len(firings)]
    if as_json:
        for firing in shown_firings:
            click.echo(json.dumps(_firing_dict(firing, spec), ensure_ascii=False))
        return
    click.echo(f"{rule.name}: spike {rule.query}")
    click.echo(
        f"fires when the stories that surfaced in {format_duration(spec.window)} reach {spec.factor:g}x their usual "
        f"rate over {format_duration(spec.baseline)}, and at least {spec.min_count}"
        + (f"; no new surge alert within {format_duration(spec.cooldown)} of the last" if spec.cooldown else "")
    )
    if shown_firings:
        click.echo(f"newest {len(shown_firings)} of {plural(len(firings), 'surge')}, up to {since} back:")
    for firing in shown_firings:
        click.echo(f"{firing.measure.at:%Y-%m-%d %H:%M}  {surge.describe(firing.measure, spec)}")
        for story in firing.stories[:3]:
            others = f" (+{plural(len(story.outlets) - 1, 'outlet')})" if len(story.outlets) > 1 else ""
            click.echo(shown(f"    #{story.first.item_id}  [{story.first.feed}]{others}  {story.first.title}"))
            if story.first.link:
                click.echo(f"        {story.first.link}")
    in_period = [p for p in points if p.seen_at >= cutoff]
    stories = len({p.story_id for p in in_period})
    note = f" ({plural(first_fetch, 'match', 'matches')} came in a first fetch, not counted)" if first_fetch else ""
    history = "" if watched is None or watched <= cutoff else f"; history starts {watched:%Y-%m-%d %H:%M}"
    click.echo(
        f"{plural(len(firings), 'surge')} in {since}: {plural(len(in_period), 'matching item')} in "
        f"{plural(stories, 'story', 'stories')}{note}{history}"
    )


def _firing_dict(firing: Any, spec: Any) -> dict[str, Any]:
    from monitor.rules.surge import describe

    found = firing.measure
    return {
        "at": found.at.isoformat(),
        "count": found.count,
        "usual": round(found.usual, 3),
        "level": round(found.level, 3),
        "ratio": None if found.ratio is None else round(found.ratio, 1),
        "summary": describe(found, spec),
        "stories": [
            {
                "id": story.first.item_id,
                "feed": story.first.feed,
                "title": story.first.title,
                "link": story.first.link,
                "first_seen_at": story.first.seen_at.isoformat(),
                "outlets": [feed for feed, _ in story.outlets],
            }
            for story in firing.stories
        ],
    }
