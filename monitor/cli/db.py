"""db copy: move an installation from its SQLite file to PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.common import _fail, _load, config_option


@click.group()
def db() -> None:
    """The database itself: moving it from SQLite to PostgreSQL."""


@db.command("copy")
@config_option
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path), metavar="SQLITE_FILE")
@click.argument("target", metavar="[POSTGRESQL_URL]", required=False)
def copy(config_dir: Path, source: Path, target: str | None) -> None:
    """Copy everything from SQLITE_FILE into the PostgreSQL database at POSTGRESQL_URL
    (by default the config's `database:`, which keeps its password off the command line).

    \b
    Feeds with their poll state, items with their entities, matches and stories,
    the whole outbox and WebSub subscriptions, ids kept; then the rows of every
    table are counted on both sides. The target must be a new, empty database.
    Stop the daemon first: what it stores after the copy stays in the file.
    Then set `database: POSTGRESQL_URL` in monitor.yaml.
    """
    from monitor.database_url import is_postgres, parse_database, shown
    from monitor.store.copy import copy_database

    if target is None:
        configured = _load(config_dir).settings.database
        if not is_postgres(configured):
            _fail(f"the config's database is {configured}, not a postgresql:// URL: name the target database")
        target = str(configured)
    try:
        url = parse_database(target)
    except ValueError as exc:
        _fail(f"POSTGRESQL_URL: {exc}")
    if not is_postgres(url):
        _fail(f"POSTGRESQL_URL: expected a postgresql:// URL, got {target}")

    def progress(table: str, rows: int) -> None:
        click.echo(f"  {table}: {rows:,} rows...", err=True)

    copied = copy_database(source, str(url), progress=progress)
    click.echo(f"copied {source} to {shown(str(url))}:")
    width = max(len(c.table) for c in copied)
    for c in copied:
        click.echo(f"  {c.table:<{width}}  {c.target:>9,}")
    click.echo(f"counts checked: {len(copied)} tables hold as many rows as in {source}")
