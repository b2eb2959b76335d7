"""Feeds that lead to this machine or a private network: poll.allow_private, checked at connect time.

The test server is on 127.0.0.1, so "public" cannot be served here: the policy
is tested on addresses, and the refusal at connect time against the local
server, by IP literal and by a name (``localhost``) resolved then checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from pathlib import Path

import pytest
from conftest import BACKFILL, DaemonProcess, rss, run_cli, write_config

from monitor.feeds import addresses as addresses_module
from monitor.feeds.addresses import ANY_ADDRESS, PUBLIC_ONLY, PrivateAccess, non_public, private_access
from monitor.feeds.fetch import Fetched, FetchError, fetch, new_client

HINT = "set poll.allow_private: true to allow"
DEFAULT = {"allow_private": None}  # unset: the default policy


def refused(host: str, address: str = "127.0.0.1", kind: str = "a loopback address") -> str:
    where = f"{host} is {kind}" if host == address else f"{host} resolves to {address}, {kind}"
    return f"refused: {where}; {HINT}"


def feed_errors(config: Path) -> dict[str, str | None]:
    result = run_cli("status", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return {feed["name"]: feed["last_error"] for feed in json.loads(result.stdout)["feeds"]}


def poll_once(config: Path) -> None:
    result = run_cli("poll", "--once", config=config)
    assert "Traceback" not in result.stderr, result.stderr


# --- the policy, on addresses ---------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("172.16.3.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata services
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.1", "a private address"),  # documentation range
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped
        ("::ffff:10.0.0.5", "a private address"),
        ("::127.0.0.1", "a loopback address"),  # IPv4-compatible (deprecated)
        ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
        ("2002:a00:5::", "a private address"),  # 6to4 of 10.0.0.5
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "a link-local address"),  # NAT64 of 169.254.169.254
    ],
)
def test_non_public_addresses_are_named(address, kind):
    assert non_public(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::808:808"],
)
def test_public_addresses_pass(address):
    assert non_public(ipaddress.ip_address(address)) is None


def test_who_may_reach_private_addresses():
    url = "http://Intranet.Example:8080/feed.xml"
    # Unset: a config feed reaches its own host (any port, any scheme), nothing else; CLI and OPML feeds nothing.
    config_feed = private_access(None, url, from_config=True)
    assert config_feed.allows("http://intranet.example:8080/feed.xml")
    assert config_feed.allows("https://intranet.example/other.xml")
    assert not config_feed.allows("http://127.0.0.1:8080/feed.xml")
    assert private_access(None, url, from_config=False) == PUBLIC_ONLY
    # true: everything; false: nothing, config feeds included.
    assert private_access(True, url, from_config=False) == ANY_ADDRESS
    assert private_access(False, url, from_config=True) == PUBLIC_ONLY
    assert not PUBLIC_ONLY.allows(url) and ANY_ADDRESS.allows("http://10.0.0.5/")


# --- at connect time, on the resolved addresses -----------------------------------------


def fetch_with(url: str, private: PrivateAccess) -> Fetched:
    async def run() -> Fetched:
        async with new_client(timeout=5) as client:
            return await fetch(client, url, private=private)

    return asyncio.run(run())


def test_a_name_is_resolved_then_checked(feed_server):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    url = feed_server.url("/wire.xml").replace("127.0.0.1", "localhost")
    with pytest.raises(FetchError) as caught:
        fetch_with(url, PUBLIC_ONLY)
    assert str(caught.value) in {f"{url}: {refused('localhost', address)}" for address in ("127.0.0.1", "::1")}
    assert feed_server.requests_for("/wire.xml") == []
    assert fetch_with(url, PrivateAccess(hosts=frozenset({"localhost"}))).content == rss(*BACKFILL)


def test_the_checked_address_is_the_one_connected_to(feed_server, monkeypatch):
    """A name is resolved once: no second lookup at connect time could point it elsewhere (DNS rebinding)."""
    feed_server.route("/wire.xml", rss(*BACKFILL))
    port = feed_server.port
    resolved: list[str] = []

    async def resolve(host, port, timeout):
        resolved.append(host)
        return [ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(addresses_module, "_resolve", resolve)
    # Pretend loopback is public here: the private 10.0.0.5 is skipped, 127.0.0.1 is connected to.
    real = addresses_module.non_public
    monkeypatch.setattr(addresses_module, "non_public", lambda a: None if a.is_loopback else real(a))
    fetched = fetch_with(f"http://feed.example:{port}/wire.xml", PUBLIC_ONLY)
    assert fetched.content == rss(*BACKFILL) and resolved == ["feed.example"]
    assert feed_server.requests_for("/wire.xml")[0].headers["host"] == f"feed.example:{port}"


def test_a_name_resolving_only_to_private_addresses_is_refused_with_the_address(monkeypatch):
    async def resolve(host, port, timeout):
        return [ipaddress.ip_address("10.0.0.5")]

    monkeypatch.setattr(addresses_module, "_resolve", resolve)
    with pytest.raises(FetchError) as caught:
        fetch_with("http://feed.example/rss.xml", PUBLIC_ONLY)
    assert str(caught.value) == (
        "http://feed.example/rss.xml: refused: feed.example resolves to 10.0.0.5, a private address; " + HINT
    )


def test_a_connection_opened_for_an_allowed_feed_never_carries_a_refused_one(feed_server):
    feed_server.route("/a.xml", rss(*BACKFILL))
    feed_server.route("/b.xml", rss(*BACKFILL))

    async def run() -> FetchError:
        async with new_client(timeout=5) as client:
            await fetch(client, feed_server.url("/a.xml"), private=ANY_ADDRESS)  # kept alive in its pool
            with pytest.raises(FetchError) as caught:
                await fetch(client, feed_server.url("/b.xml"), private=PUBLIC_ONLY)
            return caught.value

    assert str(asyncio.run(run())).endswith(refused("127.0.0.1"))
    assert feed_server.requests_for("/b.xml") == []


# --- through the CLI and the daemon ---------------------------------------------------------


def test_feeds_add_refuses_this_machine_by_default_in_one_line(tmp_path, feed_server):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    config = write_config(tmp_path / "config", feeds=[], poll=DEFAULT)
    for host in ("127.0.0.1", "localhost"):
        url = feed_server.url("/wire.xml").replace("127.0.0.1", host)
        added = run_cli("feeds", "add", url, config=config)
        assert added.returncode == 1
        [line] = added.stderr.splitlines()
        assert line.startswith(f"news-monitor: {url}: refused: {host} ") and line.endswith(HINT), line
    assert feed_server.requests_for("/wire.xml") == []
    listed = run_cli("feeds", "list", config=config)
    assert listed.returncode == 0 and listed.stdout.strip() == "0 feeds"


def test_the_daemon_polls_a_config_feed_on_this_machine_but_refuses_an_imported_one(tmp_path, feed_server, daemons):
    feed_server.route("/config.xml", rss(*BACKFILL))
    feed_server.route("/imported.xml", rss(*BACKFILL))
    config = write_config(
        tmp_path / "config", feeds=[{"name": "declared", "url": feed_server.url("/config.xml")}], poll=DEFAULT
    )
    opml = tmp_path / "list.opml"
    opml.write_text(
        f'<opml version="2.0"><body><outline text="Imported" xmlUrl="{feed_server.url("/imported.xml")}"/></body></opml>'
    )
    assert run_cli("feeds", "import", str(opml), config=config).returncode == 0

    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    daemon.wait_for_log(r"poll\.done feed=declared ", timeout=120)
    daemon.wait_for_log(r"poll\.failed feed=imported ", timeout=120)
    assert daemon.stop() == 0

    errors = feed_errors(config)
    assert errors["declared"] is None
    assert errors["imported"] == f"{feed_server.url('/imported.xml')}: {refused('127.0.0.1')}"
    assert feed_server.requests_for("/imported.xml") == []


def test_a_config_feed_redirected_to_another_host_on_this_machine_is_refused(tmp_path, feed_server):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    elsewhere = feed_server.url("/wire.xml")  # 127.0.0.1: another host than the config names
    feed_server.redirect("/moved.xml", elsewhere)
    local = f"http://localhost:{feed_server.port}"
    feed_server.redirect("/same-host.xml", f"{local}/wire.xml")
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "moved", "url": f"{local}/moved.xml"}, {"name": "same-host", "url": f"{local}/same-host.xml"}],
        poll=DEFAULT,
    )
    poll_once(config)
    errors = feed_errors(config)
    assert errors["moved"] == f"{local}/moved.xml: redirected to {elsewhere}: {refused('127.0.0.1')}"
    assert errors["same-host"] is None  # the host the config names, wherever it is
    assert len(feed_server.requests_for("/wire.xml")) == 1


def test_allow_private_true_allows_feeds_from_the_cli(tmp_path, feed_server):
    feed_server.route("/wire.xml", rss(*BACKFILL, title="Local Wire"))
    config = write_config(tmp_path / "config", feeds=[], poll={"allow_private": True})
    added = run_cli("feeds", "add", feed_server.url("/wire.xml"), config=config)
    assert added.returncode == 0, added.stderr
    poll_once(config)
    assert feed_errors(config) == {"local-wire": None}


def test_allow_private_false_refuses_even_config_feeds(tmp_path, feed_server):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "declared", "url": feed_server.url("/wire.xml")}],
        poll={"allow_private": False},
    )
    poll_once(config)
    assert feed_errors(config) == {"declared": f"{feed_server.url('/wire.xml')}: {refused('127.0.0.1')}"}
    assert feed_server.requests_for("/wire.xml") == []


def test_allow_private_must_be_a_boolean(tmp_path):
    config = write_config(tmp_path / "config", feeds=[], poll={"allow_private": "sometimes"})
    checked = run_cli("check", config=config)
    assert checked.returncode == 1 and "poll.allow_private" in checked.stderr
