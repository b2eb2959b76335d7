"""The ``news-monitor`` command. Thin: parse arguments, call the modules, print."""

from __future__ import annotations

import os
import traceback
from typing import Any

import click

from monitor import __version__
from monitor.cli import alerts, db, feeds, rules, search, service, web
from monitor.cli.common import _fail, _load, _problems, _setup, _storage, _when, config_option, logging_options
from monitor.errors import MonitorError
from monitor.redact import redact_text

# The shared helpers live in common (the command modules import them from there, not from here).
__all__ = ["main", "config_option", "logging_options", "_load", "_setup", "_problems", "_storage", "_fail", "_when"]


class _Commands(click.Group):
    """Every command's own errors end in one line on stderr and exit 1; the traceback only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            if ctx.params.get("debug"):
                click.echo(redact_text(traceback.format_exc()).rstrip(), err=True)  # secrets stay hidden here too
            _fail(str(exc))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="news-monitor")
@click.option(
    "--config",
    "config_dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="The config directory for the command that follows (as its own --config).",
)
@click.option("--debug", is_flag=True, help="Show the traceback behind an error, not only its one line.")
def main(config_dir: str | None, debug: bool) -> None:
    """Watch news feeds and alert when a story matches your watch rules."""
    # Entities are extracted in one worker thread; BLAS threads of their own
    # only contend for the same cores (about 20% slower on two). numpy reads
    # this when it loads, which happens after this point (spaCy loads lazily).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


main.add_command(service.run)
main.add_command(service.check)
main.add_command(service.poll)
main.add_command(rules.rules)
main.add_command(rules.explain)
main.add_command(feeds.feeds)
main.add_command(alerts.alerts)
main.add_command(alerts.notify_test)
main.add_command(search.search)
main.add_command(service.status)
main.add_command(web.web)
main.add_command(db.db)
