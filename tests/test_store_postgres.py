"""What only the PostgreSQL store has to show: claims racing on row locks, migrating once among several
instances, writers taking turns, refusing what is not ours, and search that finds what SQLite's finds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from test_store_contract import item, new, poll, send

from monitor.errors import StorageError
from monitor.items import FeedSpec, Item
from monitor.store import SqliteStorage
from monitor.store.postgres import MIGRATIONS, PostgresStorage
from monitor.store.postgres.schema import connection_parameters

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FEEDS = [FeedSpec("wire", "http://127.0.0.1/wire.xml"), FeedSpec("bbc", "http://127.0.0.1/bbc.xml")]


@pytest.fixture
def stores(pg_dsn):
    """Two store objects on one database: two connections, as two instances have."""
    with PostgresStorage.open(pg_dsn) as one, PostgresStorage.open(pg_dsn) as two:
        one.sync_feeds(FEEDS, NOW)
        yield one, two


def test_a_claim_waits_for_a_claim_in_flight_and_then_sees_it(stores):
    one, two = stores
    poll(one, *(new(guid, alerts=(send(),)) for guid in "abc"))
    ids = [alert.id for alert in one.due_alerts(NOW)]
    lease = NOW + timedelta(minutes=1)
    results: dict[str, list[int]] = {}
    started = threading.Event()

    def claim_from_two() -> None:
        started.set()
        results["two"] = two.claim_alerts(ids, "two", NOW, lease)

    # "one" claims inside a transaction left open: "two" claiming the same rows waits on their row locks,
    # and once "one" commits it finds them taken.
    with one.transaction():
        assert one.claim_alerts(ids, "one", NOW, lease) == sorted(ids)
        thread = threading.Thread(target=claim_from_two)
        thread.start()
        started.wait(10)
        thread.join(0.5)
        assert thread.is_alive()  # waiting for "one"'s transaction, not answering from a stale view
    thread.join(30)
    assert results["two"] == []
    assert one.due_alerts(NOW) == []


def test_a_claim_rolled_back_leaves_the_rows_to_the_other_claimant(stores):
    one, two = stores
    poll(one, *(new(guid, alerts=(send(),)) for guid in "ab"))
    ids = [alert.id for alert in one.due_alerts(NOW)]
    lease = NOW + timedelta(minutes=1)
    results: dict[str, list[int]] = {}
    thread = threading.Thread(target=lambda: results.setdefault("two", two.claim_alerts(ids, "two", NOW, lease)))
    with pytest.raises(RuntimeError), one.transaction():
        assert one.claim_alerts(ids, "one", NOW, lease) == sorted(ids)
        thread.start()
        thread.join(0.5)
        raise RuntimeError("the sender died before its claim was committed")
    thread.join(30)
    assert results["two"] == sorted(ids)
    assert {one.alert(alert_id).status for alert_id in ids} == {"pending"}


def test_writers_take_turns_and_the_health_probe_says_so(stores):
    one, two = stores
    two.check_writable()
    with one.transaction():
        with pytest.raises(StorageError, match="lock timeout"):
            two.check_writable()  # within its second, not the writers' usual 30
    two.check_writable()


def test_instances_starting_together_migrate_once(pg_empty):
    dsn = pg_empty()
    opened: list[PostgresStorage] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        barrier.wait()
        try:
            opened.append(PostgresStorage.open(dsn))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and len(opened) == 3
    for store in opened:
        assert store.schema_version == len(MIGRATIONS)
        store.close()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT application, version FROM schema_version").fetchall() == [
            ("news-monitor", len(MIGRATIONS))
        ]


def test_a_newer_schema_is_refused(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", [len(MIGRATIONS) + 1])
    with pytest.raises(StorageError, match="newer than this news-monitor knows"):
        PostgresStorage.open(pg_dsn)


def test_text_postgresql_cannot_hold_is_stored_as_a_replacement_character(pg_dsn):
    with PostgresStorage.open(pg_dsn) as store:
        store.sync_feeds(FEEDS, NOW)
        [item_id] = poll(store, new("nul", item=item("nul", title="Bad\x00byte", text="in\x00text")))
        stored = store.item(item_id).item
        assert (stored.title, stored.text) == ("Bad\ufffdbyte", "in\ufffdtext")


# --- search finds the same on both ----------------------------------------------------------------

CORPUS = [
    ("Ceasefire talks resume in Doha", "Delegations met again after a week of strikes."),
    ("Markets steady", "Traders watched the ceasefire talks closely, and oil fell."),
    ("Café owners protest new rules", "Paris cafés say the naïve law hurts small businesses."),
    ("Weather", "Sunny spells, then rain; the talks about talks go on."),
    ("Al-Assad meets envoy", "The envoy's visit to Damascus was not announced."),
    ("Putin and Xi speak by phone", "The Kremlin said the call lasted an hour."),
    ("Xi visits Moscow", "President Xi arrived for talks with Putin on Monday."),
    ("Rate decision", "The central bank held rates; ceasefire hopes lifted shares."),
    ("Straße gesperrt", "Die Polizei sperrte die Straße nach dem Unfall."),
    ("Election night", "Turnout was high; counting goes on overnight in Doha and Paris."),
]
QUERIES = [
    "ceasefire", "talks", "ceasefire talks", '"ceasefire talks"', "cease*", "ceasefire OR weather",
    "talks NOT ceasefire", "title:talks", "text:talks", "title:ceasefire OR text:oil", "-title:talks",
    "{title text}:doha", "xi AND putin", "xi putin OR doha", "xi OR putin doha", "xi NOT moscow putin",
    "(xi OR paris) NOT moscow", "title:(xi OR weather)", "cafe", "CAFÉ", "naive", "strasse", "straße",
    "al-assad", '"al-Assad"', "assad", "envoy's", "NEAR(xi putin)", "^xi", "xi + visits", "talks*", "t*",
    "ceasefire AND", "OR", "talks (", 'ceasefire "talks', "foo:bar", "rate: decision", "", "...", '""',
    "title:(text:talks)", "Doha OR", "NOT doha", "c++", "1", "kremlin hour", "the",
]  # fmt: skip


@pytest.fixture
def both(pg_dsn):
    sqlite = SqliteStorage.memory()
    postgres = PostgresStorage.open(pg_dsn)
    for store in (sqlite, postgres):
        store.sync_feeds(FEEDS, NOW)
        poll(store, *(new(f"n{n}", item=Item(f"n{n}", None, title, text)) for n, (title, text) in enumerate(CORPUS)))
    yield sqlite, postgres
    sqlite.close()
    postgres.close()


def test_search_finds_on_postgresql_what_it_finds_on_sqlite(both):
    sqlite, postgres = both
    differ = {}
    for query in QUERIES:
        on_sqlite = {hit.title for hit in sqlite.search(query, limit=50)}
        on_postgres = {hit.title for hit in postgres.search(query, limit=50)}
        if on_sqlite != on_postgres:
            differ[query] = (sorted(on_sqlite), sorted(on_postgres))
    assert differ == {}
    assert {hit.title for hit in sqlite.search("talks")} >= {"Ceasefire talks resume in Doha", "Weather"}


def test_search_marks_and_cuts_as_sqlite_does(both):
    sqlite, postgres = both
    for query in ("ceasefire", '"ceasefire talks"', "cafe", "xi OR putin", "talks NOT doha", "doha"):
        on_sqlite = [(hit.title_marked, hit.snippet) for hit in sorted(sqlite.search(query), key=lambda h: h.item_id)]
        on_postgres = [
            (hit.title_marked, hit.snippet) for hit in sorted(postgres.search(query), key=lambda h: h.item_id)
        ]
        assert on_postgres == on_sqlite, query
    long_text = " ".join(f"word{n}" for n in range(60)) + " ceasefire " + " ".join(f"tail{n}" for n in range(60))
    for store in both:
        poll(store, new("long", item=Item("long", None, "Long one", long_text)), feed="bbc")
    [on_sqlite] = sqlite.search("ceasefire word59")
    [on_postgres] = postgres.search("ceasefire word59")
    assert on_postgres.snippet == on_sqlite.snippet and on_postgres.snippet.startswith("…")


def test_a_lost_connection_fails_one_call_and_the_next_connects_again(stores):
    one, two = stores
    pid = one.conn.info.backend_pid
    two.conn.execute("SELECT pg_terminate_backend(%s)", [pid])  # the server restarted, say
    with pytest.raises(StorageError, match="database postgresql://"):
        one.feeds()
    assert [feed.name for feed in one.feeds()] == ["bbc", "wire"]
    assert one.conn.info.backend_pid != pid


def test_the_url_says_how_to_connect_and_the_store_adds_only_what_it_leaves_out():
    params = connection_parameters("postgresql://news:pw@db.example/nm?connect_timeout=3&options=-csearch_path%3Dnm")
    assert (params["connect_timeout"], params["keepalives"], params["application_name"]) == ("3", 1, "news-monitor")
    # The session speaks UTC whatever else it says, and asks the server to probe it (keepalives).
    assert params["options"] == (
        "-csearch_path=nm -c TimeZone=UTC -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10"
        " -c tcp_keepalives_count=3 -c tcp_user_timeout=60000"
    )
    given = connection_parameters("postgresql://db.example/nm?options=-c%20tcp_keepalives_idle%3D5")
    assert "tcp_keepalives_idle=30" not in given["options"] and "tcp_keepalives_interval=10" in given["options"]
    with pytest.raises(StorageError, match=r"^database URL postgresql://news:\*\*\*@db.example/nm\?bogus=1: "):
        connection_parameters("postgresql://news:pw@db.example/nm?bogus=1")


def test_the_server_finds_a_vanished_instance_within_a_minute(stores):
    # The singletons' lock lives as long as its session: a client gone without a word (a power cut)
    # must not keep it for the operating system's two hours.
    one, _ = stores
    settings = dict(one.conn.execute(
        "SELECT name, setting FROM pg_settings WHERE name IN"
        " ('tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count')"
    ).fetchall())  # fmt: skip
    assert settings == {"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"}


def test_a_schema_of_its_own_in_a_shared_database(postgres, pg_empty):
    dsn = pg_empty()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id integer)")  # someone else's table in public
        conn.execute("CREATE SCHEMA news")
    with pytest.raises(StorageError, match="not a news-monitor database"):
        PostgresStorage.open(dsn)
    with PostgresStorage.open(f"{dsn}?options=-csearch_path%3Dnews") as store:
        store.sync_feeds(FEEDS, NOW)
        assert [feed.name for feed in store.feeds()] == ["bbc", "wire"]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM news.feeds").fetchone()[0] == 2
