"""The README's screenshots, made from what the product really sends and serves.

    scripts/screenshots [--out docs/screenshots]

One run of the real daemon (in a subprocess) on a local feed server: two outlets run one story
that two rules match; the alert goes through apprise to a local Slack-format webhook receiver (the
channel's ``webhook_base``) and to a local SMTP server. What arrived is then shown in Chromium --
the Slack payload through tests/alert_pages.slack_page (Slack's look, every word from the payload),
the e-mail's HTML part as sent -- and saved as alert-slack.png and alert-email.png. While the
daemon runs, each dashboard page is saved too (dashboard-*.png).

Both receivers start out refusing (Slack answers 503, nothing listens for SMTP) until the second
outlet's copy is stored: the first sends fail and are retried, so the alert that arrives names the
other outlet ("Also on") whatever the order the two feeds are polled in.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from alert_pages import mail_page, slack_page  # noqa: E402
from browser import launch_chromium, start_playwright  # noqa: E402
from conftest import (  # noqa: E402
    DEFAULT_ENTITIES,
    OTHER_TEXT,
    REWRITE_TEXT,
    SLACK_URL,
    WIRE_TEXT,
    DaemonProcess,
    Story,
    rss,
    wait_until,
    write_config,
)
from feedserver import FeedServer  # noqa: E402
from receivers import SMTPReceiver, WebhookReceiver, free_port  # noqa: E402
from webserver import listening_url  # noqa: E402

ZONE = "Europe/Berlin"
WIDTH = 680  # about a chat pane or a mail reader's width
RULES = [
    {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["mail", "slack"]},
    {"name": "kremlin", "query": "Kremlin", "notify": ["mail", "slack"]},
]
MAX_BYTES = 150_000


def stories(now: datetime) -> dict[str, list[Story]]:
    """What each feed serves once the daemon has made its first fetch of it."""
    published = now.replace(second=0, microsecond=0) - timedelta(minutes=25)
    return {
        "/wire.xml": [
            Story("wire-xi-putin", "Xi and Putin discuss Ukraine and a Beijing summit by phone", WIRE_TEXT, published)
        ],
        "/courier.xml": [
            Story(
                "courier-xi-putin",
                "Xi urges restraint in call with Putin",
                REWRITE_TEXT,
                published + timedelta(minutes=7),
            )
        ],
    }


# A week of another outlet's stories, there from its first fetch (stored, never alerted): the dashboard's history.
HISTORY = [
    ("Putin signs budget raising military spending", OTHER_TEXT),
    ("Central bank holds interest rates steady", "The European Central Bank left its key rate unchanged on Thursday."),
    ("Xi opens trade fair in Shanghai", "Chinese President Xi Jinping opened the trade fair in Shanghai on Monday."),
    (
        "Kremlin rejects ceasefire proposal",
        "The Kremlin said on Tuesday that Vladimir Putin had rejected the proposal.",
    ),
    (
        "Floods hit northern Italy",
        "Heavy rain flooded towns in Emilia-Romagna, the Italian civil protection agency said.",
    ),
    ("Putin meets Erdogan in Sochi", "Vladimir Putin and Recep Tayyip Erdogan met in Sochi to discuss grain exports."),
    ("UN warns of famine in Sudan", "The United Nations warned on Friday that millions in Sudan face famine."),
    ("Xi and Macron discuss trade", "Xi Jinping and Emmanuel Macron discussed trade and Ukraine in Beijing."),
    ("Putin and Xi sign energy accord", "Vladimir Putin and Xi Jinping signed a gas supply accord in Moscow."),
    ("Zelensky asks allies for air defence", "Volodymyr Zelensky asked NATO allies in Brussels for more systems."),
    ("Xi says ties with Putin are strong", "Xi Jinping told state media that ties with Vladimir Putin were strong."),
    ("Kremlin confirms Putin trip to Beijing", "The Kremlin said Vladimir Putin would visit Xi Jinping next month."),
    ("OPEC agrees output cut", "OPEC members agreed in Vienna to cut oil output from January."),
    ("Putin praises Xi at summit", "Vladimir Putin praised Xi Jinping's peace plan at a summit in Kazakhstan."),
    ("Scholz visits Kyiv", "Olaf Scholz arrived in Kyiv to meet Volodymyr Zelensky on Wednesday."),
    ("Huawei unveils new chip", "Huawei showed a new smartphone chip made in China, Reuters reported."),
    ("Xi and Putin discuss grain corridor", "Xi Jinping and Vladimir Putin spoke about the Black Sea grain corridor."),
    ("Kremlin says talks with Kyiv stalled", "The Kremlin said talks with Ukraine had stalled, blaming Washington."),
    ("Macron calls for European defence", "Emmanuel Macron called for a common European defence in Paris."),
    ("Putin and Xi hold video call", "Vladimir Putin and Xi Jinping held a video call on trade and security."),
    ("Beijing hosts climate talks", "Delegates met in Beijing for climate talks led by the United Nations."),
]


def history(now: datetime) -> bytes:
    return rss(
        *(
            # Published over the last week, about three a day: the dashboard's charts count by published time.
            Story(f"world-{n}", title, text, now - timedelta(hours=5 + 7 * n))
            for n, (title, text) in enumerate(HISTORY)
        ),
        title="World Desk",
    )


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def shoot(page, html: str, path: Path, *, frame_sized: bool = False) -> None:
    """Show ``html`` at WIDTH and save the whole page (as tall as its content)."""
    page.set_viewport_size({"width": WIDTH, "height": 120})
    page.set_content(html)
    if frame_sized:  # the e-mail's frame as tall as the message in it
        [frame] = [frame for frame in page.frames if frame != page.main_frame]
        page.eval_on_selector("iframe", "element => { element.style.height = '0px'; }")
        height = frame.evaluate("document.documentElement.scrollHeight")
        page.eval_on_selector("iframe", "(element, height) => { element.style.height = height + 'px'; }", height)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshots: {_shown(path)} ({path.stat().st_size // 1000} KB)")
    if path.stat().st_size > MAX_BYTES:
        print(f"screenshots: {path.name} is over {MAX_BYTES // 1000} KB", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--received", type=Path, help="also save what arrived here (slack.json, mail.eml, daemon.log)")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)

    with (
        tempfile.TemporaryDirectory(prefix="news-monitor-screenshots-") as scratch,
        FeedServer() as feeds,
        WebhookReceiver() as slack,
    ):
        empty = rss()
        feeds.route("/wire.xml", empty)
        feeds.route("/courier.xml", empty)
        feeds.route("/world.xml", history(now))
        slack.set_default(status=503, body=b"Slack is down for the first sends")
        smtp_port = free_port()
        smtp = SMTPReceiver(port=smtp_port)
        config = write_config(
            Path(scratch) / "config",
            feeds=[
                {"name": "wire", "url": feeds.url("/wire.xml")},
                {"name": "daily-courier", "url": feeds.url("/courier.xml")},
                {"name": "world-desk", "url": feeds.url("/world.xml")},
            ],
            channels={
                "mail": {"url": smtp.apprise_url(to="desk@example.org", sender="news-monitor@example.org"), "format": "html"},
                "slack": {"url": SLACK_URL, "webhook_base": slack.slack_webhook_url},
            },
            rules=RULES,
            entities=DEFAULT_ENTITIES,
            display_timezone=ZONE,
            web={"enabled": True, "port": 0},
        )  # fmt: skip
        daemon = DaemonProcess(config, Path(scratch) / "daemon.log").start()
        try:
            # Both first fetches (empty) done: what comes next is news, not backfill.
            daemon.wait_for_log(r"poll\.done.*feed=wire", timeout=120)
            daemon.wait_for_log(r"poll\.done.*feed=daily-courier", timeout=120)
            served = stories(now)
            feeds.route("/wire.xml", rss(*served["/wire.xml"], title="Wire"))
            daemon.wait_for_log(r"poll\.done.*feed=wire.*fresh=1", timeout=180)
            feeds.route("/courier.xml", rss(*served["/courier.xml"], title="Daily Courier"))
            daemon.wait_for_log(r"poll\.done.*feed=daily-courier.*fresh=1", timeout=180)
            # Each channel's next attempt begins after the copy was stored, once two more have failed
            # (one may have been under way): only that one may arrive.
            for channel in ("slack", "mail"):
                failed = rf"alert\.retry.*channel={channel}\b"
                daemon.wait_for_log(failed, count=len(daemon.wait_for_log(failed)) + 2, timeout=120)
            slack.set_default(status=200)
            smtp.start()
            post = wait_until(lambda: [r for r in slack.requests if r.status == 200], "the Slack post", timeout=120)[0]
            [mail] = smtp.wait_for(1, timeout=120)
            for name, text in (("Slack", post.body.decode()), ("e-mail", mail.get_body(("plain",)).get_content())):
                if "Also on" not in text:
                    raise SystemExit(f"screenshots: the {name} alert names no other outlet; try again")
            if args.received:
                args.received.mkdir(parents=True, exist_ok=True)
                (args.received / "slack.json").write_bytes(post.body)
                (args.received / "mail.eml").write_bytes(bytes(mail))
                (args.received / "daemon.log").write_text(daemon.log())
            dashboard = listening_url(daemon.wait_for_log(r"web\.listening", timeout=60)[0])
            playwright = start_playwright()
            try:
                browser = launch_chromium(playwright)
                page = browser.new_page(viewport={"width": WIDTH, "height": 120})
                shoot(page, slack_page(post.json, zone=ZoneInfo(ZONE)), out / "alert-slack.png")
                shoot(page, mail_page(mail), out / "alert-email.png", frame_sized=True)
                shoot_dashboard(browser, dashboard, out)
                browser.close()
            finally:
                playwright.stop()
        finally:
            daemon.stop()
            smtp.stop()
    return 0


def shoot_dashboard(browser, base: str, out: Path) -> None:
    """Each dashboard page at a desktop width, down to DASHBOARD_HEIGHT (a first screen and a bit)."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(base)
    item = page.locator("a[href*='/items/']").first.get_attribute("href")
    for name, path in [*DASHBOARD_PAGES, ("item", item)]:
        page.goto(base.rstrip("/") + path)
        page.wait_for_load_state("networkidle")
        height = min(page.evaluate("document.documentElement.scrollHeight"), DASHBOARD_HEIGHT)
        target = out / f"dashboard-{name}.png"
        page.screenshot(path=str(target), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height})
        print(f"screenshots: {_shown(target)} ({target.stat().st_size // 1000} KB)")
    page.close()


DASHBOARD_HEIGHT = 1000
DASHBOARD_PAGES = [
    ("alerts", "/"),
    ("rule-tester", "/rules/test?q=Xi+AND+Putin&since=7d"),
    ("entities", "/entities?window=week"),
    ("feeds", "/feeds"),
]


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"screenshots: done in {time.monotonic() - started:.0f} s")
    sys.exit(code)
