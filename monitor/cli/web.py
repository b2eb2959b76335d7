"""web: the dashboard alone, against the database of a config (for a machine that only looks)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from monitor.cli.common import _setup, config_option, logging_options
from monitor.logs import setup_logging


@click.command()
@config_option
@logging_options
@click.option("--host", default=None, metavar="ADDRESS", help="Listen on this address (default: web.host).")
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="Listen on this port (default: web.port).")
def web(config_dir: Path, log_format: str, log_level: str, host: str | None, port: int | None) -> None:
    """Serve the web dashboard on its own, without polling or delivering (logs to stderr).

    It reads the database named in the config; `news-monitor run` serves the
    same dashboard itself. An address other than loopback needs
    web.allow_remote and a token (see README 'The dashboard').
    SIGTERM and SIGINT stop it.
    """
    setup_logging(log_level.upper(), log_format)
    setup = _setup(config_dir)
    settings = setup.config.settings.web

    from monitor.web.service import run_alone

    asyncio.run(run_alone(setup, host or settings.host, settings.port if port is None else port))
