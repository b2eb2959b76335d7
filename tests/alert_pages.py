"""Alerts as they arrived, made into pages a browser can show (for the README's screenshots).

``slack_page(payload)`` turns the JSON that apprise posted to a Slack webhook into an HTML page in
Slack's look: the message's attachments (or Block Kit blocks) with their colour bar, title, text
in mrkdwn (bold, italic, strike, code, quotes, ``<url|text>`` links, newlines) and footer. Every
word shown comes from the payload; Slack's escaping (``&amp;`` ``&lt;`` ``&gt;``) is undone and
the text escaped again for HTML, so a payload cannot put markup on the page. Remote images (the
footer icon) are not fetched: the page works offline.

``mail_page(message)`` shows a received e-mail as a mail program would: its From, To, Date and
Subject above its HTML part, which is shown unchanged in a sandboxed frame (no scripts).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, tzinfo
from email.message import EmailMessage
from typing import Any

_CONTROL = re.compile(r"<([^<>\n]*)>")  # Slack's <url|text>, <url>, <@U123>, <!here>, <#C123|name>
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_CODE = re.compile(r"`([^`\n]+)`")
_SAFE_URL = re.compile(r"^(https?|mailto):", re.IGNORECASE)


def _slack_text(text: str) -> str:
    """Slack-escaped text (``&amp;`` ``&lt;`` ``&gt;``) as HTML-escaped text."""
    return html.escape(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), quote=True)


def _control(inner: str) -> str:
    """One ``<...>`` sequence as HTML: a link, a mention or a channel name."""
    target, _, label = inner.partition("|")
    if target[:1] in "@#!":
        shown = label or {"!": "@", "@": "@", "#": "#"}[target[0]] + target[1:]
        return f'<span class="mention">{_slack_text(shown)}</span>'
    url = target.replace("&amp;", "&")
    shown = _slack_text(label or url)
    if not _SAFE_URL.match(url):
        return shown
    return f'<a href="{html.escape(url, quote=True)}">{shown}</a>'


def mrkdwn(text: str) -> str:
    """Slack mrkdwn as HTML: quotes, bold, italic, strike, code, links, newlines."""
    lines = []
    for line in text.split("\n"):
        quoted = line.startswith(("> ", "&gt; ")) or line in (">", "&gt;")
        if quoted:
            line = line.split(" ", 1)[1] if " " in line else ""
        lines.append((quoted, _inline(line)))
    out: list[str] = []
    index = 0
    while index < len(lines):
        quoted, line = lines[index]
        if not quoted:
            out.append(line + "<br>")
            index += 1
            continue
        block = []
        while index < len(lines) and lines[index][0]:
            block.append(lines[index][1])
            index += 1
        out.append(f"<blockquote>{'<br>'.join(block)}</blockquote>")
    return "".join(out).removesuffix("<br>")


def _inline(line: str) -> str:
    # Links and mentions become placeholders first, so the emphasis marks around them still pair up
    # and a URL's own underscores or asterisks are never read as emphasis.
    controls: list[str] = []

    def keep(inner: str) -> str:
        controls.append(_control(inner))
        return f"\x00{len(controls) - 1}\x00"

    # split() with one group: text at even places, the inside of each <...> at odd ones.
    pieces = _CONTROL.split(line)
    text = "".join(_slack_text(piece) if i % 2 == 0 else keep(piece) for i, piece in enumerate(pieces))
    text = _CODE.sub(r"<code>\1</code>", text)
    text = _BOLD.sub(r"<b>\1</b>", text)
    text = _ITALIC.sub(r"<i>\1</i>", text)
    text = _STRIKE.sub(r"<s>\1</s>", text)
    return re.sub("\x00(\\d+)\x00", lambda m: controls[int(m.group(1))], text)


def _colour(value: Any) -> str:
    named = {"good": "#2eb886", "warning": "#daa038", "danger": "#a30200"}
    if isinstance(value, str) and value in named:
        return named[value]
    if isinstance(value, str) and re.fullmatch(r"#?[0-9a-fA-F]{6}", value):
        return "#" + value.lstrip("#")
    return "#dddddd"


def _moment(ts: Any, zone: tzinfo) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), zone)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _block(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "header":
        return f'<div class="title">{_slack_text(str(block.get("text", {}).get("text", "")))}</div>'
    if kind == "section":
        text = block.get("text", {})
        body = (
            mrkdwn(str(text.get("text", "")))
            if text.get("type") == "mrkdwn"
            else _slack_text(str(text.get("text", "")))
        )
        return f'<div class="text">{body}</div>'
    if kind == "context":
        parts = [
            mrkdwn(str(element.get("text", "")))
            if element.get("type") == "mrkdwn"
            else _slack_text(str(element.get("text", "")))
            for element in block.get("elements", [])
            if element.get("type") in ("mrkdwn", "plain_text")
        ]
        return f'<div class="footer">{" ".join(parts)}</div>'
    if kind == "divider":
        return "<hr>"
    return ""


def _attachment(attachment: dict[str, Any], message_mrkdwn: bool, zone: tzinfo) -> str:
    parts: list[str] = []
    fields_in_mrkdwn = set(attachment.get("mrkdwn_in", ())) | ({"text"} if message_mrkdwn else set())
    if attachment.get("blocks"):
        parts.extend(_block(block) for block in attachment["blocks"])
    else:
        if attachment.get("pretext"):
            parts.append(f'<div class="pretext">{mrkdwn(str(attachment["pretext"]))}</div>')
        if attachment.get("title"):
            title = _slack_text(str(attachment["title"]))
            link = str(attachment.get("title_link", ""))
            if _SAFE_URL.match(link):
                title = f'<a href="{html.escape(link, quote=True)}">{title}</a>'
            parts.append(f'<div class="title">{title}</div>')
        if attachment.get("text"):
            text = str(attachment["text"])
            body = mrkdwn(text) if "text" in fields_in_mrkdwn else _slack_text(text).replace("\n", "<br>")
            parts.append(f'<div class="text">{body}</div>')
        footer = [_slack_text(str(attachment["footer"]))] if attachment.get("footer") else []
        moment = _moment(attachment.get("ts"), zone)
        if moment is not None:
            footer.append(moment.strftime("%b %-d at %H:%M"))
        if footer:
            parts.append(f'<div class="footer">{" | ".join(footer)}</div>')
    colour = _colour(attachment.get("color"))
    return f'<div class="attachment" style="border-left-color: {colour}">{"".join(parts)}</div>'


SLACK_STYLE = """
body { margin: 0; background: #fff; color: #1d1c1d; font: 15px/1.46668 Lato, "Helvetica Neue", Helvetica,
  "Segoe UI", Arial, sans-serif; }
.channel { padding: 10px 20px; border-bottom: 1px solid #e2e2e2; font-weight: 900; font-size: 18px; }
.message { display: flex; gap: 8px; padding: 12px 20px 14px 20px; }
.avatar { flex: none; width: 36px; height: 36px; border-radius: 6px; background: #4a154b; color: #fff;
  font-weight: 900; display: flex; align-items: center; justify-content: center; }
.content { min-width: 0; flex: 1; }
.sender { font-weight: 900; }
.app { font-size: 10px; font-weight: 700; color: #616061; background: #e8e8e8; border-radius: 2px;
  padding: 1px 3px; margin-left: 4px; vertical-align: 2px; }
.time { color: #616061; font-size: 12px; margin-left: 4px; }
.attachment { border-left: 4px solid #ddd; border-radius: 4px; padding: 2px 0 2px 12px; margin-top: 4px;
  overflow-wrap: anywhere; }
.title { font-weight: 900; margin-bottom: 2px; }
.text blockquote { margin: 4px 0; padding-left: 12px; border-left: 4px solid #dddddd; }
.footer { color: #616061; font-size: 12px; margin-top: 6px; }
a { color: #1264a3; text-decoration: none; }
code { font: 12px Monaco, Menlo, Consolas, monospace; background: #f6f6f6; border: 1px solid #e2e2e2;
  border-radius: 3px; padding: 2px 3px; color: #e01e5a; }
.mention { color: #1264a3; background: #e8f5fa; border-radius: 3px; padding: 0 2px; }
"""


def slack_page(payload: dict[str, Any], *, sender: str = "news-monitor", zone: tzinfo = UTC) -> str:
    """The page for one Slack webhook payload as received. ``sender`` is the name the webhook's app
    shows (Slack takes it from the app, not from the payload, unless the payload names a username);
    times (the attachments' ``ts``) are shown in ``zone``, as Slack shows them in the reader's."""
    name = str(payload.get("username") or sender)
    as_mrkdwn = payload.get("mrkdwn", True) is not False
    body = [mrkdwn(str(payload["text"]))] if payload.get("text") else []
    attachments = [a for a in payload.get("attachments", []) if isinstance(a, dict)]
    body.extend(_attachment(attachment, as_mrkdwn, zone) for attachment in attachments)
    posted = next((m for m in (_moment(a.get("ts"), zone) for a in attachments) if m), None)
    when = posted.strftime("%H:%M") if posted else ""
    channel = str(payload.get("channel", ""))
    header = f'<div class="channel">{_slack_text(channel)}</div>' if channel else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{_slack_text(channel or name)}</title><style>{SLACK_STYLE}</style></head><body>"
        f'{header}<div class="message"><div class="avatar">{html.escape(name[:1].upper())}</div>'
        f'<div class="content"><div><span class="sender">{html.escape(name)}</span><span class="app">APP</span>'
        f'<span class="time">{when}</span></div>{"".join(body)}</div></div></body></html>'
    )


MAIL_STYLE = """
body { margin: 0; background: #f3f3f3; font: 14px/1.4 "Helvetica Neue", Helvetica, Arial, sans-serif; color: #222; }
.mail { background: #fff; margin: 12px; border: 1px solid #ddd; border-radius: 6px; }
.head { padding: 12px 16px; border-bottom: 1px solid #e5e5e5; }
.subject { font-size: 18px; font-weight: 700; margin-bottom: 6px; overflow-wrap: anywhere; }
.field { color: #555; font-size: 13px; }
.field b { color: #222; font-weight: 600; }
iframe { display: block; width: 100%; border: 0; height: 400px; }
"""


def mail_page(message: EmailMessage) -> str:
    """The page for one received e-mail: its headers, then its HTML part in a sandboxed frame."""
    part = message.get_body(("html",))
    if part is None:
        raise ValueError("the e-mail has no HTML part")
    content = part.get_content()
    fields = "".join(
        f'<div class="field"><b>{name}:</b> {html.escape(str(message[name]))}</div>'
        for name in ("From", "To", "Date")
        if message[name]
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(str(message['Subject'] or ''))}</title><style>{MAIL_STYLE}</style></head><body>"
        f'<div class="mail"><div class="head"><div class="subject">{html.escape(str(message["Subject"] or ""))}</div>'
        f'{fields}</div><iframe sandbox="allow-same-origin" title="message" srcdoc="{html.escape(content, quote=True)}"></iframe>'
        "</div></body></html>"
    )
