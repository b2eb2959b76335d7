"""What every command shares: the --config and logging options, loading the config, the database, failing."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from click.core import ParameterSource

from monitor.config import Config, load_config
from monitor.errors import ConfigError
from monitor.redact import redact_text
from monitor.wording import plural  # noqa: F401  (the commands import it from here)

if TYPE_CHECKING:
    from monitor.assembly import Setup
    from monitor.store import Storage

F = TypeVar("F", bound=Callable[..., Any])


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default="config",
        show_default=True,
        envvar="NEWS_MONITOR_CONFIG",
        show_envvar=True,
        callback=_config_dir,
        help="Directory holding monitor.yaml, rules.yaml and entities.yaml (may also come before the command).",
    )(function)


def _config_dir(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """The command's own --config, else one given before the command, else $NEWS_MONITOR_CONFIG or ./config."""
    source = ctx.get_parameter_source(param.name or "config_dir")
    given_before = ctx.find_root().params.get("config_dir")
    if given_before is not None and source is not ParameterSource.COMMANDLINE:
        return Path(given_before)
    return value


def logging_options(function: F) -> F:
    function = click.option(
        "--log-format", type=click.Choice(["kv", "json"]), default="kv", show_default=True, help="Log line format."
    )(function)
    return click.option(
        "--log-level",
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
        default="INFO",
        show_default=True,
        help="Least severe log level shown.",
    )(function)


def _load(config_dir: Path) -> Config:
    """Load the config or exit 1 with every problem as file:line:column: message."""
    try:
        return load_config(config_dir)
    except ConfigError as exc:
        _problems(exc)


def _setup(config_dir: Path, *, channels: bool = True) -> Setup:
    """Load and assemble the config (rules compiled, channels built unless ``channels`` is False)
    or exit 1 with every problem."""
    from monitor.assembly import load_setup

    try:
        return load_setup(config_dir, channels=channels)
    except ConfigError as exc:
        _problems(exc)


def _problems(exc: ConfigError) -> NoReturn:
    for problem in exc.problems:
        click.echo(redact_text(problem), err=True)  # a problem may quote a URL with its credentials
    sys.exit(1)


@contextmanager
def _storage(config: Config, *, create: bool = False) -> Iterator[Storage]:
    """The open database (closed on the way out); exits 1 when there is none yet and ``create`` is False."""
    from monitor.store import open_storage

    database = config.settings.database
    if not create and isinstance(database, Path) and not database.exists():  # a server (a URL) is asked instead
        _fail(f"no database at {database} yet: run `news-monitor poll --once` or `news-monitor run`")
    with open_storage(config.settings.database) as store:
        yield store


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"news-monitor: {redact_text(message)}", err=True)
    sys.exit(code)


def styled() -> bool:
    """Whether stdout takes ANSI styles: a terminal, and NO_COLOR (https://no-color.org) not set."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def bold(text: str, *, style: bool) -> str:
    """``text`` in bold when ``style``, else as it is (a highlight with no marks of its own)."""
    return click.style(text, bold=True) if style else text


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"
