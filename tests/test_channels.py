from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from receivers import SMTPReceiver, WebhookReceiver, free_port

from monitor.alerts.channels import Channel, ChannelURLError, SendResult, validate_url
from monitor.alerts.render import AlertView, Message, render
from monitor.errors import MonitorError
from monitor.redact import redact_text, redact_url, url_secrets

ROOT = Path(__file__).resolve().parent.parent
SLACK_URL = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#world-desk"
LINK = "https://example.org/world/xi-putin?id=1"
TITLE = "Xi Jinping hosts <Putin> & friends"


def make_view() -> AlertView:
    body = "Chinese leader Xi Jinping welcomed Russian President Vladimir Putin on Tuesday."
    return AlertView(
        rule="xi-putin",
        title=TITLE,
        link=LINK,
        feed="bbc-world",
        published_at=datetime(2024, 5, 1, 12, 34, tzinfo=timezone.utc),
        body=body,
        hits=(
            {"term": "Xi", "field": "title", "start": 0, "end": 10, "matched": "Xi Jinping", "entity": "Xi Jinping"},
            {"term": "Putin", "field": "body", "start": 53, "end": 67, "matched": "Vladimir Putin", "entity": "Vladimir Putin"},
        ),
    )


@pytest.fixture
def slack(webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> WebhookReceiver:
    """The webhook receiver standing in for hooks.slack.com (apprise's host is a class attribute)."""
    monkeypatch.setattr(
        "apprise.plugins.slack.NotifySlack.webhook_url", webhook.slack_webhook_url
    )
    return webhook


# ------------------------------------------------------------------- email


def test_email_arrives_with_subject_and_text_and_html_parts(smtp: SMTPReceiver) -> None:
    message = render(make_view(), "email")

    result = Channel("me", smtp.apprise_url(to="desk@example.org")).send(message)

    assert result == SendResult(ok=True, reason=None)
    [received] = smtp.wait_for(1)
    assert received["Subject"] == "Xi Jinping hosts <Putin> & friends [xi-putin]"
    assert received["To"] == "desk@example.org"
    assert received["From"] == "monitor@example.org"
    assert received.get_content_type() == "multipart/alternative"
    html = received.get_body(("html",)).get_content()
    text = received.get_body(("plain",)).get_content()
    assert "<mark>Xi Jinping</mark> hosts &lt;Putin&gt; &amp; friends" in html
    assert f'href="{LINK}"' in html
    # Apprise derives the text part from the HTML itself.
    assert "Xi Jinping hosts <Putin> & friends" in text
    assert "xi-putin" in text and "Vladimir Putin" in text


def test_email_text_part_quotes_the_excerpt_with_a_space_and_is_not_double_spaced(smtp: SMTPReceiver) -> None:
    # Before: ">Chinese leader ..." (no space after the quote mark) and a "Why it matched" list with a
    # blank line between its items, five lines before the link.
    result = Channel("me", smtp.apprise_url()).send(render(make_view(), "email"))

    assert result.ok, result.reason
    [received] = smtp.wait_for(1)
    text = received.get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n").strip() == (
        "Xi Jinping hosts <Putin> & friends\n"
        "\n"
        "bbc-world · 2024-05-01 12:34 UTC\n"
        "\n"
        "> Chinese leader Xi Jinping welcomed Russian President Vladimir Putin on Tuesday.\n"
        "\n"
        "Why: xi-putin · Xi → Xi Jinping (title), Putin → Vladimir Putin (body)\n"
        "\n"
        f"{LINK}\n"
        "---\n"
        "Sent by news-monitor because rule xi-putin matched."
    )


def test_email_with_login(smtp: SMTPReceiver) -> None:
    url = smtp.apprise_url(user="monitor", password="s3cret/p@ss")

    result = Channel("me", url).send(Message("subject", "plain body", "text"))

    assert result.ok, result.reason
    smtp.wait_for(1)
    [mail] = smtp.received
    assert mail.login == ("monitor", "s3cret/p@ss")
    assert mail.message.get_content_type() == "text/plain"
    assert mail.message.get_content().strip() == "plain body"


def test_email_connection_refused_is_a_failure_with_reason() -> None:
    url = f"mailto://user:hunter2pass@127.0.0.1:{free_port()}?from=a@example.org&to=b@example.org"

    result = Channel("me", url).send(Message("t", "b", "text"))

    assert not result.ok
    assert result.reason and "connection error" in result.reason.lower()
    assert "hunter2pass" not in result.reason


# ------------------------------------------------------------------- Slack


def test_slack_webhook_gets_mrkdwn_with_title_and_link(slack: WebhookReceiver) -> None:
    result = Channel("newsroom", SLACK_URL).send(render(make_view(), "slack"))

    assert result.ok, result.reason
    [request] = slack.wait_for(1)
    assert request.path == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    payload = request.json
    assert payload["channel"] == "#world-desk"
    assert payload["mrkdwn"] is True
    attachment = payload["attachments"][0]
    # The headline is the attachment's title, escaped by apprise; the body starts with outlet and time.
    assert attachment["title"] == "Xi Jinping hosts &lt;Putin&gt; &amp; friends"
    # Slack mrkdwn after apprise's conversion: links, bold hits, Slack escaping.
    assert attachment["text"].startswith(f"bbc-world · 2024-05-01 12:34 UTC · <{LINK}|Open the story>\n")
    assert "> Chinese leader Xi Jinping welcomed Russian President *Vladimir Putin* on Tuesday." in attachment["text"]
    assert "Why: *xi-putin* · Xi → Xi Jinping (title), Putin → Vladimir Putin (body)" in attachment["text"]


def test_slack_500_is_a_failure_mentioning_the_status(slack: WebhookReceiver) -> None:
    slack.fail_next(1, status=500, headers={"Retry-After": "3"})
    channel = Channel("newsroom", SLACK_URL)

    failed = channel.send(Message("t", "b", "markdown"))

    assert not failed.ok
    assert failed.reason and "500" in failed.reason
    assert "TIiajkdnlazkcOXrIdevi7" not in failed.reason
    # Apprise does not hand the Retry-After header back.
    assert failed.retry_after is None
    assert [r.status for r in slack.requests] == [500]


# ------------------------------------------------------------------- json://


def test_json_webhook_gets_title_and_body(webhook: WebhookReceiver) -> None:
    message = render(make_view(), "text")

    result = Channel("hook", webhook.json_url("/alerts")).send(message)

    assert result.ok, result.reason
    [request] = webhook.wait_for(1)
    assert request.method == "POST" and request.path == "/alerts"
    assert request.json["title"] == message.title
    assert request.json["message"].strip() == message.body.strip()
    assert LINK in request.json["message"]


def test_json_500_then_success(webhook: WebhookReceiver) -> None:
    webhook.fail_next(1, status=500)
    channel = Channel("hook", webhook.json_url("/alerts"))

    first = channel.send(Message("t", "b", "text"))
    second = channel.send(Message("t", "b", "text"))

    assert not first.ok and first.reason and "500" in first.reason
    assert second == SendResult(ok=True, reason=None)
    assert [r.status for r in webhook.requests] == [500, 200]


def test_json_connection_refused_is_a_failure_with_reason() -> None:
    url = f"json://127.0.0.1:{free_port()}/alerts?token=TopSecretToken99"

    result = Channel("hook", url).send(Message("t", "b", "text"))

    assert not result.ok
    assert result.reason and "connection error" in result.reason.lower()
    assert "TopSecretToken99" not in result.reason


def test_reasons_of_concurrent_sends_do_not_mix(webhook: WebhookReceiver) -> None:
    # Two channels fail at the same moment, each with its own status; each
    # reason must hold only its own channel's log.
    with WebhookReceiver() as other:
        webhook.set_default(status=500)
        other.set_default(status=503)
        channels = [Channel("a", webhook.json_url("/a")), Channel("b", other.json_url("/b"))]
        results: dict[str, SendResult] = {}
        barrier = threading.Barrier(len(channels))

        def send(channel: Channel) -> None:
            barrier.wait()
            results[channel.name] = channel.send(Message("t", "b", "text"))

        threads = [threading.Thread(target=send, args=(c,)) for c in channels]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

    assert results["a"].reason and "500" in results["a"].reason and "503" not in results["a"].reason
    assert results["b"].reason and "503" in results["b"].reason and "500" not in results["b"].reason


def test_apprise_refusal_never_raises(webhook: WebhookReceiver) -> None:
    channel = Channel("hook", webhook.json_url("/alerts"))

    empty = channel.send(Message("", "", "text"))
    bad_format = channel.send(Message("t", "b", "rtf"))

    assert not empty.ok and empty.reason
    assert not bad_format.ok and bad_format.reason and "rtf" in bad_format.reason
    assert webhook.requests == []


# ------------------------------------------------------------------- console


def test_console_channel_prints_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    message = render(make_view(), "text")

    result = Channel("console", "console").send(message)

    assert result == SendResult(ok=True, reason=None)
    out = capsys.readouterr().out
    assert out.startswith(message.title + "\n")
    assert message.body in out


# ------------------------------------------------------------------- bad URLs


def test_unusable_url_is_an_error_with_the_secret_hidden() -> None:
    url = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkd!nlazkcOXrIdevi7/#chan"

    with pytest.raises(ChannelURLError) as caught:
        Channel("newsroom", url)

    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, MonitorError)
    assert "TIiajkd!nlazkcOXrIdevi7" not in str(error)
    assert "slack://T1…/A1…/TI…/#chan" in str(error)
    assert "Token" in str(error)  # apprise's own explanation is kept
    assert validate_url(url) == str(error)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nosuchscheme://host/path", "apprise has no nosuchscheme:// channel"),
        ("not a url", "not an apprise URL"),
        ("mailto://user:hunter2pass@127.0.0.1?mode=bogus&from=a@b.org", "secure mode"),
    ],
)
def test_validate_url_explains(url: str, expected: str) -> None:
    problem = validate_url(url)
    assert problem is not None and expected in problem
    assert "hunter2pass" not in problem


@pytest.mark.parametrize(
    "url",
    [SLACK_URL, "console", "json://127.0.0.1:8080/hook", "mailtos://user:pass@smtp.example.org?to=me@example.org"],
)
def test_validate_url_accepts(url: str) -> None:
    assert validate_url(url) is None


# ------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#chan", "slack://T1…/A1…/TI…/#chan"),
        ("mailtos://user:pass@host?to=x", "mailtos://user:***@host?to=x"),
        (
            "mailtos://me%40example.org:p%40ss@smtp.example.org:587?to=desk@example.org&from=me@example.org",
            "mailtos://me%40example.org:***@smtp.example.org:587?to=desk@example.org&from=me@example.org",
        ),
        (
            "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7",
            "https://hooks.slack.com/services/T1…/A1…/TI…",
        ),
        (
            "json://127.0.0.1:8080/hook?token=abc123&apikey=zzz999&Password=x1y2z3&to=desk",
            "json://127.0.0.1:8080/hook?token=***&apikey=***&Password=***&to=desk",
        ),
        ("tgram://123456789:AAHfooBarBaz1234567890/987654", "tgram://123456789:AA…/987654"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://4174216298/JH…"),
        ("json://[::1]:8080/hook", "json://[::1]:8080/hook"),
        ("console", "console"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_url_secrets_include_decoded_spellings() -> None:
    secrets = url_secrets("mailtos://me:p%40ss%2Fword@smtp.example.org?to=x")
    assert "p%40ss%2Fword" in secrets and "p@ss/word" in secrets


def test_redact_text_scrubs_known_secrets_and_urls() -> None:
    url = "mailtos://me:hunter2pass@smtp.example.org"
    log = (
        "Login failed for hunter2pass; posting to "
        "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7 failed"
    )
    assert redact_text(log, url_secrets(url)) == (
        "Login failed for ***; posting to https://hooks.slack.com/services/T1…/A1…/TI… failed"
    )


def test_channel_repr_is_redacted() -> None:
    channel = Channel("me", "mailtos://me:hunter2pass@smtp.example.org?to=x@example.org")
    assert "hunter2pass" not in repr(channel)
    assert channel.redacted_url == "mailtos://me:***@smtp.example.org?to=x@example.org"


# ------------------------------------------------------------------- subprocess


def test_sitecustomize_points_slack_at_local_receiver_in_a_subprocess(webhook: WebhookReceiver) -> None:
    code = (
        "from monitor.alerts.channels import Channel\n"
        "from monitor.alerts.render import Message\n"
        f"result = Channel('newsroom', {SLACK_URL!r}).send(Message('t', 'hello from a subprocess', 'text'))\n"
        "print(result.ok, result.reason)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "tests" / "sitecustomize_slack"),
        "NEWS_MONITOR_TEST_SLACK_WEBHOOK_URL": webhook.slack_webhook_url,
    }

    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True None"
    [request] = webhook.wait_for(1)
    assert request.path == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    assert "hello from a subprocess" in request.json["attachments"][0]["text"]


def test_a_receivers_retry_after_is_kept_with_the_failure(webhook: WebhookReceiver) -> None:
    webhook.fail_next(1, status=429, headers={"Retry-After": "120"})
    webhook.fail_next(1, status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    webhook.fail_next(1, status=500, headers={"Retry-After": "30"})
    channel = Channel("hook", webhook.json_url("/hook"))
    message = Message(title="t", body="b", format="text")
    limited = channel.send(message)
    assert (limited.ok, limited.retry_after) == (False, 120.0)
    assert "retry after 120s" in (limited.reason or "")
    past = channel.send(message)
    assert past.retry_after == 0.0  # a date in the past: retry whenever
    plain = channel.send(message)
    assert plain.ok is False and plain.retry_after is None  # only 429 and 503 mean "come back later"
    assert channel.send(message).ok is True
