"""Surges on the dashboard's entities page: real stored items, the real surge check, the page's charts."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from conftest import write_config
from test_surge_store import HOUR, T0, Desk

from monitor.items import Item, Mention
from monitor.pipeline import analyse, record_poll
from monitor.web import pages
from monitor.web.surges import surge_source

PUTIN = Mention("Putin", "Vladimir Putin", "PERSON", "title", 0, 5)


class EntityDesk(Desk):
    """The surge desk, with Putin in entities.yaml and his mentions stored as the model would find them."""

    def store_items(self, at, *titles, feed="feed0", same_text=None):  # noqa: ANN001, ANN002
        items = []
        for title in titles:
            self.n += 1
            items.append(Item(guid=f"{feed}-{self.n}", link=f"https://{feed}.example/{self.n}", title=title,
                              text=f"Report number {self.n} of the day."))  # fmt: skip
        mentions = [(PUTIN,) if title.startswith("Putin") else () for title in titles]
        analysed = analyse(self.setup, items, None, feed, (), mentions)  # type: ignore[arg-type]
        record_poll(self.store, self.setup, self.store.feed(feed).id, analysed, now=at, feed=None)
        self.watch.check(self.store, self.setup, at)


def test_a_spike_rule_on_one_entity_marks_its_chart_and_every_surge_is_listed(tmp_path: Path):
    feeds = [{"name": f"feed{i}", "url": f"http://127.0.0.1:9/{i}"} for i in range(4)]
    rules = [
        {"name": "putin-surge", "spike": "person:Putin", "notify": ["console"]},
        {"name": "putin-words", "spike": "Putin", "notify": ["console"]},  # words: many names may match
    ]
    entities = [{"name": "Vladimir Putin", "type": "PERSON", "aliases": ["Putin"]}]
    config = write_config(tmp_path / "config", feeds=feeds, rules=rules, entities=entities)
    desk = EntityDesk(tmp_path, config)
    try:
        desk.quiet_week(T0)
        desk.burst(T0, 6)
        fired = {alert.rule for alert in desk.store.list_alerts(limit=100) if alert.kind == "surge"}
        assert fired == {"putin-surge", "putin-words"}

        values = pages.entities_page(desk.store, window="week", now=T0 + HOUR, surges=surge_source(lambda: desk.setup))
        listed = {(surge.rule, surge.entity) for surge in values["surges"]}
        assert listed == {("putin-surge", "Vladimir Putin"), ("putin-words", None)}
        [people] = [group for group in values["groups"] if group["key"] == "people"]
        [putin] = [entity for entity in people["entities"] if entity.name == "Vladimir Putin"]
        chart = str(putin.chart)
        points = re.search(r'points="([^"]+)"', chart).group(1).split()
        dots = re.findall(r'<circle class="mark" cx="([\d.]+)" cy="([\d.]+)"', chart)
        assert dots == [tuple(points[-1].split(","))]  # today's point: the surge fired at T0

        # A day earlier nothing had fired: nothing listed, nothing marked.
        before = pages.entities_page(
            desk.store, window="week", now=T0 - timedelta(hours=2), surges=surge_source(lambda: desk.setup)
        )
        assert before["surges"] == [] and "circle" not in str(before["groups"])
    finally:
        desk.store.close()
