"""How fast story clustering fingerprints items and decides which story they join.

Generates a window of 5,000 earlier items and 1,000 fresh ones, news-like in
shape: about 150 words in 7 sentences, each story drawn from one of 60 topics
(its own vocabulary) plus common words, so same-topic stories share words as
real ones do. A third of the fresh items are rewrites of a window item
(sentences reordered, one word in eight changed, a sentence dropped and
one added, another headline); the rest are new stories.

Prints, best of --repeat passes:
  - fingerprints per second (title + text -> Fingerprint),
  - same_story decisions per second against the window, with candidates
    retrieved by lookup keys from a dict (key -> candidates) as the store's
    index would return them, and the average number of candidates per item,
  - the same decision against all 5,000 candidates, i.e. without the index,
  - how many rewrites were found and how many new stories were wrongly joined.

    .venv/bin/python bench/stories.py [--window 5000] [--fresh 1000] [--seed 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.stories import Candidate, Fingerprint, canonical_link, fingerprint, lookup_keys, same_story

TOPICS = 60
TOPIC_WORDS = 400
COMMON_WORDS = 20_000
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Story:
    topic: int
    title: str
    sentences: tuple[str, ...]
    link: str

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


class Newsroom:
    """Writes stories and rewrites them, reproducibly from a seed."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.topics = [[f"t{t}w{w}" for w in range(TOPIC_WORDS)] for t in range(TOPICS)]
        self.common = [f"c{w}" for w in range(COMMON_WORDS)]
        # Zipf-like popularity: a few words everywhere, most words rare.
        self.common_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(COMMON_WORDS)))
        self.count = 0

    def word(self, topic: int) -> str:
        if self.rng.random() < 0.55:
            return self.rng.choice(self.topics[topic])
        return self.rng.choices(self.common, cum_weights=self.common_weights)[0]

    def sentence(self, topic: int) -> str:
        return " ".join(self.word(topic) for _ in range(self.rng.randint(15, 28))) + "."

    def story(self) -> Story:
        self.count += 1
        topic = self.rng.randrange(TOPICS)
        title = " ".join(self.word(topic) for _ in range(8))
        sentences = tuple(self.sentence(topic) for _ in range(7))
        return Story(
            topic, title, sentences, f"https://outlet{self.count % 40}.example/news/{self.count}?utm_source=rss"
        )

    def rewrite(self, story: Story) -> Story:
        self.count += 1
        topic = story.topic
        sentences = list(story.sentences)
        self.rng.shuffle(sentences)
        sentences.pop()
        sentences.append(self.sentence(topic))
        changed = [
            " ".join(w if self.rng.random() > 0.125 else self.word(topic) for w in sentence.split())
            for sentence in sentences
        ]
        title = " ".join(self.word(topic) for _ in range(8))
        return Story(topic, title, tuple(changed), f"https://outlet{self.count % 40}.example/world/{self.count}")


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=5000)
    parser.add_argument("--fresh", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    newsroom = Newsroom(random.Random(args.seed))
    window = [newsroom.story() for _ in range(args.window)]
    originals = {}  # fresh index -> window index of the story it rewrites
    fresh = []
    for n in range(args.fresh):
        if n % 3 == 0:
            originals[n] = newsroom.rng.randrange(args.window)
            fresh.append(newsroom.rewrite(window[originals[n]]))
        else:
            fresh.append(newsroom.story())

    seconds = best_of(args.repeat, lambda: [fingerprint(s.title, s.text) for s in fresh])
    print(f"fingerprint: {len(fresh) / seconds:,.0f} items/s ({seconds / len(fresh) * 1e6:.0f} µs each)")

    # The store's side: every window item indexed under its lookup keys.
    index: dict[str, list[Candidate]] = {}
    candidates: list[Candidate] = []
    for item_id, story in enumerate(window):
        link_key = canonical_link(story.link)
        fp = fingerprint(story.title, story.text)
        stored = Candidate(item_id, item_id, link_key, fp, NOW - timedelta(seconds=args.window - item_id))
        candidates.append(stored)
        for key in lookup_keys(link_key, fp):
            index.setdefault(key, []).append(stored)
    prints = [(canonical_link(s.link), fingerprint(s.title, s.text)) for s in fresh]

    def retrieve(link_key: str | None, fp: Fingerprint) -> list[Candidate]:
        found = {c.item_id: c for key in lookup_keys(link_key, fp) for c in index.get(key, ())}
        return list(found.values())

    def decide_indexed() -> list[int | None]:
        decisions = []
        for link_key, fp in prints:
            match = same_story(link_key, fp, retrieve(link_key, fp))
            decisions.append(match.story_id if match else None)
        return decisions

    def decide_scanning() -> list[int | None]:
        decisions = []
        for link_key, fp in prints:
            match = same_story(link_key, fp, candidates)
            decisions.append(match.story_id if match else None)
        return decisions

    retrieved = sum(len(retrieve(link_key, fp)) for link_key, fp in prints) / len(prints)
    seconds = best_of(args.repeat, decide_indexed)
    print(
        f"same_story via lookup keys: {len(prints) / seconds:,.0f} decisions/s"
        f" ({seconds / len(prints) * 1e6:.0f} µs each, retrieval included;"
        f" {retrieved:.1f} candidates per item of a {args.window:,}-item window)"
    )
    scan_items = prints[:100]
    start = time.perf_counter()
    scanned = [same_story(link_key, fp, candidates) for link_key, fp in scan_items]
    seconds = time.perf_counter() - start
    print(f"same_story scanning all {args.window:,} candidates: {len(scan_items) / seconds:,.0f} decisions/s")

    decisions = decide_indexed()
    found = sum(decisions[n] == original for n, original in originals.items())
    wrongly_joined = sum(decision is not None for n, decision in enumerate(decisions) if n not in originals)
    agree = sum((m.story_id if m else None) == d for m, d in zip(scanned, decisions[: len(scan_items)], strict=True))
    print(
        f"rewrites found: {found}/{len(originals)}; new stories wrongly joined: {wrongly_joined}/"
        f"{len(fresh) - len(originals)}; index agrees with full scan on {agree}/{len(scan_items)}"
    )


if __name__ == "__main__":
    main()
