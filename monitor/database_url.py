"""PURE: which database a config names: a SQLite file (a path) or a PostgreSQL server (a URL).

``database:`` in monitor.yaml (and ``NEWS_MONITOR_DATABASE``) takes either. A value with a
``scheme://`` is a URL, and only ``postgresql://`` (or libpq's ``postgres://``) is one we speak;
anything else is a file path, relative to where the daemon runs, as before.
"""

from __future__ import annotations

import re
from pathlib import Path

from monitor.redact import redact_database_url

POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

Database = Path | str  # a SQLite file, or a postgresql:// URL


def parse_database(value: str | Path) -> Database:
    """A path, or a PostgreSQL URL kept as it was written; ValueError for another kind of URL."""
    if isinstance(value, Path):
        return value
    text = value.strip()
    found = _SCHEME_RE.match(text)
    if found is None:
        return Path(value)
    if found.group(1).lower() not in POSTGRES_SCHEMES:
        raise ValueError(f"expected a file path or a postgresql:// URL, got {redact_database_url(text)}")
    return text


def is_postgres(database: Database) -> bool:
    return isinstance(database, str)


def shown(database: Database) -> str:
    """The database as it may be printed or logged: a path as it is, a URL without its password."""
    return redact_database_url(database) if isinstance(database, str) else str(database)


def same_database(one: Database, other: Database) -> bool:
    """Whether two settings name the same database (a changed ``database:`` takes effect on restart)."""
    if isinstance(one, str) or isinstance(other, str):
        return one == other
    return one.resolve() == other.resolve()
