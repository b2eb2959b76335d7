"""The singletons' lock on PostgreSQL: one store (process) at a time holds it, and it passes on when that one's
session ends. (Feed leases and instances are in the contract suite, tests/test_store_contract.py.)"""

from __future__ import annotations

import threading

from conftest import wait_until

from monitor.store.postgres import PostgresStorage
from monitor.store.sqlite import SqliteStorage


def test_one_store_at_a_time_runs_the_singletons_and_they_pass_on_when_it_goes(pg_dsn, postgres):
    one, two, three = (PostgresStorage.open(pg_dsn) for _ in range(3))
    try:
        assert one.holds_singletons()
        assert one.holds_singletons()  # kept, asked again
        assert not two.holds_singletons() and not three.holds_singletons()
        one.close()  # its session ends, and the lock with it (once the server has seen it go)
        wait_until(lambda: two.holds_singletons() or three.holds_singletons(), "another store to take the lock")
        assert [two.holds_singletons(), three.holds_singletons()].count(True) == 1
        holder = two if two.holds_singletons() else three
        other = three if holder is two else two
        # The server cuts the holder's session (a crash, a network cut): the other takes over.
        postgres.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid <> pg_backend_pid()",
            database=pg_dsn.rsplit("/", 1)[1],
        )
        assert not holder.holds_singletons()  # it notices it lost the lock
        wait_until(other.holds_singletons, "the other store to take the lock")
        assert not holder.holds_singletons()
    finally:
        for store in (one, two, three):
            store.close()


def test_on_sqlite_the_one_daemon_runs_the_singletons(tmp_path):
    with SqliteStorage.open(tmp_path / "one.db") as store:
        assert store.holds_singletons()


def test_one_story_written_by_two_instances_at_the_same_moment_alerts_once(pg_dsn, tmp_path):
    """Two processes record polls of two feeds that carry the same story, released together round after round:
    the writers take turns (the writers' advisory lock), so the second decides from what the first wrote."""
    from datetime import UTC, datetime, timedelta

    from conftest import write_config

    from monitor.assembly import load_setup
    from monitor.items import Item
    from monitor.pipeline import analyse, record_poll

    config = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "wire", "url": "http://127.0.0.1:9/wire.xml"},
            {"name": "agency", "url": "http://127.0.0.1:9/a"},
        ],
        channels={"hook": {"url": "json://127.0.0.1:9/hook"}},
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
        database=pg_dsn,
    )
    setup = load_setup(config)
    now = datetime.now(UTC)
    with PostgresStorage.open(pg_dsn) as store:
        store.sync_feeds(setup.config.feed_specs(), now)
        feed_ids = {name: store.feed(name).id for name in ("wire", "agency")}
    rounds = 25
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def instance(feed: str) -> None:
        try:
            with PostgresStorage.open(pg_dsn) as store:
                for n in range(rounds):
                    item = Item(
                        guid=f"{feed}-{n}",
                        link=f"https://news.example.org/story-{n}",
                        title=f"Ceasefire agreed in region {n}",
                        text=f"Both sides agreed to a ceasefire in region {n} on Friday.",
                        published_at=now - timedelta(minutes=1),
                    )
                    analysed = analyse(setup, [item], extractor=None, feed_name=feed, feed_tags=(), mentions=[[]])  # type: ignore[arg-type]
                    start.wait(timeout=30)
                    record_poll(store, setup, feed_ids[feed], analysed, now=now + timedelta(seconds=n), feed=None)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
            start.abort()

    threads = [threading.Thread(target=instance, args=(feed,)) for feed in ("wire", "agency")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    with PostgresStorage.open(pg_dsn) as store:
        assert store.count("items") == 2 * rounds
        counts = {str(status): count for status, count in store.alert_counts().items()}
        # One alert per story, from whichever instance stored it first; the other outlet's copy is a repeat.
        assert counts.get("pending") == rounds, counts


def test_only_the_instance_running_the_singletons_releases_a_digest(pg_dsn, tmp_path, webhook):
    """Two instances' delivery workers on one database: the held rows of a digest go out from the one that runs
    the singletons, as one message; when it is gone, the other releases the next digest."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from conftest import OTHER_TEXT, WIRE_TEXT, write_config

    from monitor.alerts.deliver import Deliverer
    from monitor.assembly import load_setup
    from monitor.decide import Analysed, story_info
    from monitor.items import FeedSpec, Item
    from monitor.pipeline import record_poll
    from monitor.store import FeedWrite

    config = write_config(
        tmp_path / "config",
        feeds=[],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"], "mode": "digest",
                "schedule": "0 8 * * *"}],
        database=pg_dsn,
    )  # fmt: skip
    setup = load_setup(config)
    now = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    clock = [now]
    stores = [PostgresStorage.open(pg_dsn) for _ in range(2)]
    try:
        stores[0].sync_feeds([FeedSpec("reuters", "http://127.0.0.1/r")], now)
        feed_id = stores[0].feed("reuters").id

        writer = [stores[0]]

        def arrive(n: int, title: str, text: str) -> None:
            item = Item(guid=f"r-{n}", link=f"https://reuters.example.org/{n}", title=title, text=text)
            written = FeedWrite(feed_id, clock[0], clock[0] + timedelta(minutes=10), "test", None, None, None)
            analysed = Analysed(item, matches=(("xi-putin", ()),), story=story_info(item))
            record_poll(writer[0], setup, feed_id, [analysed], now=clock[0], feed=written)

        arrive(1, "Putin and Xi discuss Ukraine by phone", WIRE_TEXT)
        arrive(2, "Xi Putin budget", OTHER_TEXT + " Xi was briefed.")
        workers = []
        for store in stores:
            worker = Deliverer(store, setup, lambda: clock[0])
            worker.releases_digests = store.holds_singletons
            workers.append(worker)
        holder = 0 if stores[0].holds_singletons() else 1
        other = 1 - holder
        assert not stores[other].holds_singletons()

        clock[0] = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
        asyncio.run(workers[other].deliver_due())
        assert webhook.requests == []  # not the one that releases digests
        asyncio.run(workers[holder].deliver_due())
        [digest] = [r.json for r in webhook.requests]
        assert digest["title"].startswith("news-monitor digest: 2 stories")

        stores[holder].close()  # that instance is gone: the other takes the singletons (and writes from now on)
        wait_until(stores[other].holds_singletons, "the other instance to take the singletons")
        writer[0] = stores[other]
        clock[0] = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
        arrive(3, "Xi and Putin open a rail link", "A freight line from Harbin to Vladivostok opened on Tuesday.")
        clock[0] = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
        asyncio.run(workers[other].deliver_due())
        assert len(webhook.requests) == 2 and webhook.requests[1].json["title"].startswith("news-monitor digest")
    finally:
        for store in stores:
            store.close()
