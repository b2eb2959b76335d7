"""A real browser for the tests: the system's Chromium driven by Playwright.

Chromium comes from the system's packages (Debian's ``chromium``; ``scripts/test`` installs it
when it is missing and apt-get is usable) and is launched by its path, so Playwright's own
browser download is never needed. ``CHROMIUM=/path/to/chromium`` picks another one.

Fixtures (conftest.py imports them): ``browser``, one Chromium for the whole session, and
``page``, a fresh page (its own context: no cookies shared) per test. ``console_errors(page)``
collects what the page reports as broken: console errors (a Content-Security-Policy violation
is one), uncaught exceptions, and dialogs (``alert()`` and friends, dismissed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
INSTALL_HINT = (
    "install it with `apt-get install chromium` (scripts/test does so when run as root or with "
    "passwordless sudo), or set CHROMIUM=/path/to/chromium"
)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class BrowserMissing(RuntimeError):
    """No Chromium or no Playwright: the browser tests cannot run, and the message says how to fix it."""


def chromium_path() -> str:
    """The Chromium to launch: $CHROMIUM, else the first of CHROMIUM_NAMES on PATH."""
    wanted = os.environ.get("CHROMIUM")
    for name in (wanted,) if wanted else CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    where = f"CHROMIUM={wanted} is not an executable" if wanted else "no Chromium on PATH"
    raise BrowserMissing(f"the browser tests need Chromium ({where}): {INSTALL_HINT}")


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Chromium by its path. ``--no-sandbox``: the tests may run as root, where Chromium's
    sandbox refuses to start; the pages it opens are the project's own."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])


def start_playwright() -> Any:
    """Playwright's sync API, started; the caller stops it (``.stop()``)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise BrowserMissing(
            f"the browser tests need Playwright ({error}): run scripts/bootstrap test, or pip install -e '.[test]'"
        ) from None
    return sync_playwright().start()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's sync API keeps an event loop running in this
    # thread while it is started, and every later test's asyncio.run() would refuse to start.
    missing = None
    try:
        chromium_path()
        playwright = start_playwright()
    except BrowserMissing as error:
        missing = str(error)
    if missing:  # a failure, not a skip: the browser tests are part of the suite
        pytest.fail(missing, pytrace=False)
    try:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)  # a loaded 2-core machine
    try:
        yield context.new_page()
    finally:
        context.close()


def console_errors(page: Page) -> list[str]:
    """A list that fills, from now on, with every error the page reports: console errors, uncaught
    exceptions, and dialogs (each dismissed; a test page has no reason to open one)."""
    errors: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def on_dialog(dialog: Any) -> None:
        errors.append(f"dialog ({dialog.type}): {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on("dialog", on_dialog)
    return errors


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: it reads without scrolling sideways)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))
