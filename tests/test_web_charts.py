"""The dashboard's charts: every slot of the window, zeros included, bars to scale, when stories happened."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from monitor.web.charts import MAX_BAR_WIDTH
from monitor.web.pages import happened_at, slot_chart

NOW = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)


def bars(svg: str) -> list[dict[str, float | str]]:
    found = []
    for attrs, label in re.findall(r'<rect class="bar[^"]*" ([^>]*)><title>([^<]*)</title></rect>', svg):
        values = dict(re.findall(r'(\w+)="([^"]*)"', attrs))
        found.append({"label": label, **{k: float(v) for k, v in values.items()}})
    return found


def test_a_week_is_seven_day_slots_zeros_included_with_bars_to_scale():
    moments = [NOW - timedelta(days=3)] * 4 + [NOW - timedelta(hours=1)] * 2 + [NOW - timedelta(days=9)]
    svg = str(slot_chart(moments, now=NOW, period=timedelta(days=7), title="t"))
    found = bars(svg)
    assert [bar["label"] for bar in found] == [f"2026-11-{day}: {n}" for day, n in
                                                zip(range(21, 28), [0, 0, 0, 4, 0, 0, 2], strict=True)]  # fmt: skip
    plot = 140 - 20 - 22
    assert [bar["height"] for bar in found] == [0, 0, 0, plot, 0, 0, plot / 2]
    assert all(bar["width"] <= MAX_BAR_WIDTH for bar in found)  # one busy day is a bar, not a block
    assert ">max 4<" in svg and ">2026-11-21<" in svg and ">2026-11-27<" in svg  # the scale, first and last day


def test_thirty_days_and_a_day_of_hours():
    assert len(bars(str(slot_chart([], now=NOW, period=timedelta(days=30), title="t")))) == 30
    hours = bars(str(slot_chart([NOW - timedelta(minutes=10)], now=NOW, period=timedelta(days=1), title="t")))
    assert len(hours) == 24
    assert hours[-1]["label"] == "11-27 14:00: 1" and hours[0]["label"] == "11-26 15:00: 0"


def test_a_story_counts_when_it_was_published_if_that_is_plausible():
    seen, week = NOW, timedelta(days=7)
    assert happened_at(NOW - timedelta(days=2), seen, week) == NOW - timedelta(days=2)
    assert happened_at(NOW + timedelta(hours=1), seen, week) == seen  # in the future of its first sight
    assert happened_at(NOW - timedelta(days=30), seen, week) == seen  # older than the window: a wrong date
    assert happened_at(None, seen, week) == seen
