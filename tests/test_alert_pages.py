"""The pages the README's alert screenshots are made from show what actually arrived.

Real parts: the product's renderer and templates, apprise delivering to the local Slack-format
webhook receiver and to the aiosmtpd receiver, and Chromium showing the pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alert_pages import mail_page, mrkdwn, slack_page
from browser import console_errors
from conftest import SLACK_URL
from receivers import SMTPReceiver, WebhookReceiver

from monitor.alerts.channels import Channel
from monitor.alerts.render import AlertView, Outlet, render

HEADLINE = "Xi & Putin <script>alert(1)</script> meet in Beijing"
BODY = "Chinese leader Xi Jinping welcomed Russian President Vladimir Putin on Tuesday, the Kremlin said."
LINK = "https://news.example.org/world/xi-putin?id=1&src=rss"


def view() -> AlertView:
    return AlertView(
        rule="xi-putin",
        title=HEADLINE,
        link=LINK,
        feed="wire",
        published_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
        body=BODY,
        hits=(
            {"term": "Xi", "field": "body", "start": 15, "end": 25, "matched": "Xi Jinping", "entity": "Xi Jinping"},
            {"term": "Putin", "field": "body", "start": 53, "end": 67, "matched": "Vladimir Putin", "entity": "Vladimir Putin"},
        ),
        outlets=(Outlet("rewrite", "https://other.example.org/xi-putin"),),
    )  # fmt: skip


def test_mrkdwn_bold_links_quotes_and_escapes() -> None:
    html = mrkdwn("a *b c* <https://x.example/?a=1&amp;b=2|the *story*> &lt;i&gt;\n> quoted _it_\nend")

    assert html == (
        'a <b>b c</b> <a href="https://x.example/?a=1&amp;b=2">the *story*</a> &lt;i&gt;<br>'
        "<blockquote>quoted <i>it</i></blockquote>end"
    )
    # A link to anything but the web or mail is shown as its text.
    assert mrkdwn("<javascript:alert(1)|click>") == "click"


# Apprise posts legacy attachments (title, text, footer) by default, Block Kit blocks with ?blocks=yes.
@pytest.mark.parametrize("options", ["", "?blocks=yes"])
def test_the_slack_page_shows_the_payload_apprise_posted(webhook: WebhookReceiver, page, options: str) -> None:
    channel = Channel("newsroom", SLACK_URL + options, webhook_base=webhook.slack_webhook_url)
    sent = channel.send(render(view(), "slack"))
    assert sent.ok, sent.reason
    [request] = webhook.wait_for(1)
    assert ("blocks" in request.json["attachments"][0]) == bool(options)
    errors = console_errors(page)

    page.set_content(slack_page(request.json))

    attachment = page.locator(".attachment")
    assert attachment.locator(".title").inner_text() == HEADLINE
    assert [b.inner_text() for b in attachment.locator("b").all()] == ["Xi Jinping", "Vladimir Putin", "xi-putin"]
    assert page.get_by_role("link", name="Open the story").get_attribute("href") == LINK
    assert page.get_by_role("link", name="rewrite").get_attribute("href") == "https://other.example.org/xi-putin"
    assert "Chinese leader Xi Jinping welcomed" in attachment.locator("blockquote").inner_text()
    assert attachment.locator(".footer").inner_text().startswith("news-monitor")
    # The colour bar is the payload's colour; the headline's <script> is text, never run.
    assert attachment.evaluate("e => getComputedStyle(e).borderLeftColor") == "rgb(58, 163, 227)"
    assert page.locator("script").count() == 0
    assert errors == []


def test_the_mail_page_shows_the_html_part_that_arrived(smtp: SMTPReceiver, page) -> None:
    sent = Channel("mail", smtp.apprise_url(to="desk@example.org")).send(render(view(), "email"))
    assert sent.ok, sent.reason
    [message] = smtp.wait_for(1)
    errors = console_errors(page)

    page.set_content(mail_page(message))

    assert page.locator(".subject").inner_text() == message["Subject"]
    assert HEADLINE in message["Subject"]
    assert "desk@example.org" in page.locator(".head").inner_text()
    [frame] = [frame for frame in page.frames if frame != page.main_frame]
    assert frame.locator("h2").inner_text() == HEADLINE
    assert [m.inner_text() for m in frame.locator("blockquote mark").all()] == ["Xi Jinping", "Vladimir Putin"]
    assert frame.locator("script").count() == 0
    assert errors == []
