"""The poll pipeline in-process: what happens when its helpers fail."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from conftest import BACKFILL, rss, write_config

from monitor.config import load_config
from monitor.daemon import Monitor
from monitor.errors import ParseError
from monitor.store import Store


def test_a_dead_parser_process_fails_one_feed_and_is_replaced(tmp_path):
    config = load_config(write_config(tmp_path / "config", feeds=[]))
    body = rss(*BACKFILL)

    async def scenario() -> None:
        monitor = Monitor(config, Store.open(config.settings.database))
        try:
            runtime = monitor.runtime
            assert len((await runtime.parse(body, "http://127.0.0.1/a.xml", None)).items) == 2
            [process] = list(runtime.parser._processes.values())  # the running parser process
            os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=10)
            with pytest.raises(ParseError, match="the parser process died"):
                await runtime.parse(body, "http://127.0.0.1/a.xml", None)
            assert len((await runtime.parse(body, "http://127.0.0.1/a.xml", None)).items) == 2
        finally:
            await monitor.close()

    asyncio.run(scenario())
