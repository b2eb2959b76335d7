from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import pytest

from monitor.alerts.markup import EXCERPT_CHARS, Segment, excerpt, highlight
from monitor.alerts.render import (
    KINDS,
    TEMPLATE_DIR,
    AlertView,
    Outlet,
    Renderer,
    RuleMatch,
    kind_for_url,
    render,
    render_test_message,
)

LINK = "https://example.org/world/xi-putin?id=1&src=rss"
PUBLISHED = datetime(2024, 5, 1, 12, 34, tzinfo=timezone.utc)


def hit(term: str, field: str, text: str, matched: str, entity: str | None = None) -> dict:
    start = text.index(matched)
    return {
        "term": term,
        "field": field,
        "start": start,
        "end": start + len(matched),
        "matched": matched,
        "entity": entity,
    }


def make_view(
    title: str = "Xi Jinping hosts Putin in Beijing",
    body: str = "Chinese leader Xi Jinping welcomed Russian President Vladimir Putin on Tuesday.",
    link: str | None = LINK,
    hits: tuple[dict, ...] | None = None,
    outlets: tuple[str, ...] = (),
    published_at: datetime | None = PUBLISHED,
) -> AlertView:
    if hits is None:
        hits = (
            hit("Xi", "title", title, "Xi Jinping", "Xi Jinping"),
            hit("Putin", "title", title, "Putin", "Vladimir Putin"),
            hit("Putin", "body", body, "Vladimir Putin", "Vladimir Putin"),
        )
    return AlertView(
        rule="xi-putin",
        title=title,
        link=link,
        feed="bbc-world",
        published_at=published_at,
        body=body,
        hits=hits,
        outlets=outlets,
    )


# ------------------------------------------------------------ every kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_names_rule_title_link_and_why(kind: str) -> None:
    message = render(make_view(), kind)

    assert message.format == KINDS[kind].format
    assert "xi-putin" in message.body
    # Slack's title (the attachment header) is the headline alone; a subject puts the headline first
    # and names the rule after it, in brackets, for mail filters.
    expected = "Xi Jinping hosts Putin in Beijing"
    assert message.title == (expected if kind == "slack" else f"{expected} [xi-putin]")
    # Slack and plain text show the headline as the title only, not again in the body; Markdown and
    # e-mail bodies open with it as a link to the story.
    assert ("hosts" in message.body) == (kind in ("markdown", "email"))
    if kind in ("markdown", "email"):
        assert "hosts" in message.body and "Beijing" in message.body
    link_as_written = LINK.replace("&", "&amp;") if kind == "email" else LINK
    assert link_as_written in message.body
    assert "bbc-world" in message.body
    assert "2024-05-01 12:34 UTC" in message.body
    # The why, short: each term, the entity it found and the fields it found it in.
    unescaped = message.body.replace("\\", "")
    assert "Xi → Xi Jinping (title)" in unescaped
    assert "Putin → Vladimir Putin (title, body)" in unescaped


def test_text_kind_puts_the_headline_first_and_the_why_on_one_line() -> None:
    # The layout changed (issue 10): headline, outlet and time, link, excerpt, then one "Why" line per
    # rule; before, five lines of "Why" came before the excerpt and "Rule: xi-putin" closed the message.
    message = render(make_view(), "text")

    assert message.title == "Xi Jinping hosts Putin in Beijing [xi-putin]"
    assert message.format == "text"
    # The headline is the title (the console prints it above the body): the body does not repeat it.
    assert message.body == (
        "bbc-world · 2024-05-01 12:34 UTC\n"
        f"{LINK}\n"
        "\n"
        "Chinese leader Xi Jinping welcomed Russian President Vladimir Putin on Tuesday.\n"
        "\n"
        "Why: xi-putin · Xi → Xi Jinping (title), Putin → Vladimir Putin (title, body)\n"
    )


def test_why_lines_without_entity_or_offsets() -> None:
    view = make_view(
        hits=(
            {"term": "wire", "field": "tag", "start": 0, "end": 4, "matched": "wire", "entity": None},
            {"term": "wire", "field": "tag", "start": 0, "end": 4, "matched": "wire", "entity": None},
        )
    )
    body = render(view, "text").body
    assert body.count("Why: xi-putin · wire (tag)") == 1  # duplicates collapse, a term that is its match shown once


def test_outlets_render_only_when_present() -> None:
    assert "Also on" not in render(make_view(), "text").body
    for kind in KINDS:
        assert "Also on: reuters, ap-news" in render(make_view(outlets=("reuters", "ap-news")), kind).body


def test_missing_link_and_published_time() -> None:
    view = make_view(link=None, published_at=None)
    for kind in KINDS:
        message = render(view, kind)
        assert "https://" not in message.body
        assert "UTC" not in message.body
        assert "href" not in message.body


def test_non_web_links_are_never_clickable() -> None:
    view = make_view(link="javascript:alert(1)")
    for kind in KINDS:
        assert "javascript" not in render(view, kind).body


def test_naive_published_time_is_taken_as_utc() -> None:
    view = make_view(published_at=datetime(2024, 5, 1, 12, 34))
    assert "2024-05-01 12:34 UTC" in render(view, "text").body


def test_unknown_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown message kind 'sms'"):
        render(make_view(), "sms")


# ------------------------------------------------------------ highlighting


def test_highlight_cuts_at_offsets_and_merges_overlaps() -> None:
    assert highlight("Xi meets Putin", [(9, 14), (0, 2), (1, 2)]) == (
        Segment("Xi", True),
        Segment(" meets "),
        Segment("Putin", True),
    )


def test_highlight_ignores_offsets_outside_the_text() -> None:
    assert highlight("short", [(3, 99), (-1, 2), (4, 4)]) == (Segment("short"),)


def test_email_escapes_title_and_keeps_offsets_right_around_escaped_chars() -> None:
    title = '<script>alert("x")</script> Putin & Xi <b>meet</b>'
    body = "A & B <i>said</i> Putin met Xi."
    view = make_view(
        title=title,
        body=body,
        hits=(
            hit("Putin", "title", title, "Putin"),
            hit("Xi", "title", title, "Xi", "Xi Jinping"),
            hit("Putin", "body", body, "Putin"),
        ),
    )
    html = render(view, "email").body

    assert "<script>" not in html and "<b>meet" not in html and "<i>" not in html
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; <mark>Putin</mark> &amp; "
        "<mark>Xi</mark> &lt;b&gt;meet&lt;/b&gt;"
    ) in html
    assert "A &amp; B &lt;i&gt;said&lt;/i&gt; <mark>Putin</mark> met Xi." in html
    # The link is an attribute: escaped, never broken out of.
    assert f'href="{LINK.replace("&", "&amp;")}"' in html


def test_email_why_is_one_short_line_after_the_excerpt() -> None:
    # Before: a "Why it matched" heading and a <ul> of one line per hit (double-spaced in the text part).
    html = render(make_view(), "email").body
    why = "Why: <strong>xi-putin</strong> &middot; Xi → Xi Jinping (title), Putin → Vladimir Putin (title, body)"
    assert why in html
    assert "<ul>" not in html and "<li>" not in html
    assert html.index("<blockquote") < html.index(why)
    assert "rule <strong>xi-putin</strong>" in html


def test_slack_title_is_the_headline_and_the_body_starts_with_outlet_and_time() -> None:
    # Before: the title was "news-monitor: xi-putin", the body began with the linked headline and
    # "Matched: ...", and the why took a line per hit before "Rule: xi-putin".
    message = render(make_view(outlets=(Outlet("reuters", "https://reuters.example/a"), "ap-news")), "slack")

    assert message.title == "Xi Jinping hosts Putin in Beijing"
    assert message.body == (
        f"bbc-world · 2024-05-01 12:34 UTC · [Open the story]({LINK})\n"
        "> Chinese leader Xi Jinping welcomed Russian President **Vladimir Putin** on Tuesday.\n"
        "Why: **xi-putin** · Xi → Xi Jinping (title), Putin → Vladimir Putin (title, body)\n"
        "Also on: [reuters](https://reuters.example/a), ap-news\n"
    )


def test_slack_neutralises_mentions_and_markup_in_feed_text() -> None:
    # The headline is the Slack title now, which apprise sends escaped (&lt;); the body quotes the text.
    body_text = "Alert <!channel> [click](http://evil)"
    view = make_view(body=body_text, hits=(hit("Alert", "body", body_text, "Alert"),))
    body = render(view, "slack").body
    assert "<!channel>" not in body
    assert r"\<!channel\>" in body
    assert r"\[click\](http://evil)" in body


def test_markdown_escapes_feed_text() -> None:
    title = "5*3 = [x] <b>"
    view = make_view(title=title, hits=(hit("x", "title", title, "x"),))
    body = render(view, "markdown").body
    assert r"5\*3 = \[x\] \<b\>" in body


def test_excerpt_centres_on_first_body_hit_and_marks_cuts() -> None:
    body = " ".join(f"word{i}" for i in range(200)) + " Putin arrives. " + " ".join(f"tail{i}" for i in range(200))
    start = body.index("Putin")
    segments = excerpt(body, [(start, start + 5)])

    text = "".join(s.text for s in segments)
    assert segments[0] == Segment("…") and segments[-1] == Segment("…")
    assert Segment("Putin", True) in segments
    assert len(text) <= EXCERPT_CHARS + 2
    # Cut at whitespace: no half words at either end.
    assert text[1:].startswith("word") and text[:-1].split()[-1].startswith("tail")


def test_excerpt_collapses_whitespace_without_moving_hits() -> None:
    body = "Line one.\n\n   Putin   spoke\tto\nreporters."
    start = body.index("Putin")
    segments = excerpt(body, [(start, start + 5)])
    assert segments == (
        Segment("Line one. "),
        Segment("Putin", True),
        Segment(" spoke to reporters."),
    )


def test_rendered_excerpt_highlights_in_every_markup() -> None:
    view = make_view()
    assert "<mark>Vladimir Putin</mark> on Tuesday" in render(view, "email").body
    assert "**Vladimir Putin** on Tuesday" in render(view, "markdown").body
    assert "Vladimir Putin on Tuesday" in render(view, "text").body


# ------------------------------------------------------------ kinds from URLs


@pytest.mark.parametrize(
    ("url", "format", "kind"),
    [
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#chan", None, "slack"),
        ("https://hooks.slack.com/services/T1/A1/TI", None, "slack"),
        ("mailto://user:pass@example.org?to=a@example.org", None, "email"),
        ("mailtos://user:pass@example.org", None, "email"),
        ("MAILTOS://user:pass@example.org", None, "email"),
        ("console", None, "text"),
        ("json://127.0.0.1:8080/hook", None, "text"),
        ("discord://id/token", None, "text"),
        ("slack://T1/A1/TI", "markdown", "slack"),
        ("slack://T1/A1/TI", "text", "text"),
        ("mailtos://user:pass@example.org", "text", "text"),
        ("mailtos://user:pass@example.org", "html", "email"),
        ("json://127.0.0.1:8080/hook", "html", "email"),
        ("discord://id/token", "markdown", "markdown"),
    ],
)
def test_kind_for_url(url: str, format: str | None, kind: str) -> None:
    assert kind_for_url(url, format) == kind


def test_kind_for_url_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown channel format"):
        kind_for_url("console", "rtf")


# ------------------------------------------------------------ templates


def test_undefined_names_in_templates_are_errors(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, templates)
    with (templates / "text.txt.j2").open("a") as template:
        template.write("{{ no_such_field }}\n")

    with pytest.raises(jinja2.UndefinedError, match="no_such_field"):
        Renderer(templates).render(make_view(), "text")
    # The other kinds are untouched.
    assert Renderer(templates).render(make_view(), "slack").body


def test_html_autoescape_is_for_html_templates_only(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, templates)
    view = make_view(title="a < b & c", hits=())
    assert "a < b & c" in Renderer(templates).render(view, "text").title
    assert "a < b & c" in Renderer(templates).render(make_view(body="x a < b & c", hits=()), "text").body
    assert "a &lt; b &amp; c" in Renderer(templates).render(view, "email").body


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_render_test_message_names_the_channel(kind: str) -> None:
    message = render_test_message("newsroom", kind, now=PUBLISHED)
    assert "newsroom" in message.body
    assert "notify-test" in message.body
    assert "2024-05-01 12:34 UTC" in message.body


# ------------------------------------------------------------ display time zone, several rules, outlets


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_times_are_shown_in_the_display_time_zone(kind: str) -> None:
    from zoneinfo import ZoneInfo

    berlin = Renderer(zone=ZoneInfo("Europe/Berlin"))
    assert "2024-05-01 14:34 CEST" in berlin.render(make_view(), kind).body
    winter = make_view(published_at=datetime(2024, 1, 15, 12, 34, tzinfo=timezone.utc))
    assert "2024-01-15 13:34 CET" in berlin.render(winter, kind).body
    # UTC unless the user sets another zone.
    assert "2024-05-01 12:34 UTC" in Renderer().render(make_view(), kind).body


def test_digest_times_are_shown_in_the_display_time_zone() -> None:
    from zoneinfo import ZoneInfo

    from monitor.alerts.digest import DigestEntry, group_digest
    from monitor.alerts.render import render_digest

    entry = DigestEntry(1, "xi-putin", "Xi Jinping hosts Putin", LINK, "bbc-world", (), PUBLISHED)
    [digest] = group_digest([("mail", entry)]).values()
    assert "2024-05-01 14:34 CEST" in render_digest(digest, "text", ZoneInfo("Europe/Berlin")).body
    assert "2024-05-01 12:34 UTC" in render_digest(digest, "text").body


def test_digest_lists_other_outlets_with_their_links() -> None:
    from monitor.alerts.digest import DigestEntry, group_digest
    from monitor.alerts.render import render_digest

    outlets = (("reuters", "https://reuters.example/world/1"), ("ap-news", None), ("evil", "javascript:alert(1)"))
    entry = DigestEntry(1, "xi-putin", "Xi Jinping hosts Putin", LINK, "bbc-world", outlets, PUBLISHED)
    [digest] = group_digest([("mail", entry)]).values()
    linked = {
        "text": "also on reuters <https://reuters.example/world/1>, ap-news, evil",
        "markdown": "also on [reuters](https://reuters.example/world/1), ap-news, evil",
        "slack": "also on [reuters](https://reuters.example/world/1), ap-news, evil",
        "email": 'also on <a href="https://reuters.example/world/1">reuters</a>, ap-news, evil',
    }
    for kind, expected in linked.items():
        body = render_digest(digest, kind).body
        assert expected in body, kind
        assert "javascript" not in body


def two_rules_view() -> AlertView:
    view = make_view()
    kremlin = {"term": "Kremlin", "field": "body", "start": 0, "end": 7, "matched": "Kremlin", "entity": None}
    return AlertView(
        rule=view.rule,
        title=view.title,
        link=view.link,
        feed=view.feed,
        published_at=view.published_at,
        body=view.body,
        hits=view.hits,
        matches=(RuleMatch("xi-putin", view.hits), RuleMatch("kremlin", (kremlin,))),
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_one_message_names_every_rule_that_matched_the_story(kind: str) -> None:
    message = render(two_rules_view(), kind)
    body = message.body.replace("\\", "")
    assert "xi-putin" in body and "Xi → Xi Jinping (title), Putin → Vladimir Putin (title, body)" in body
    assert "kremlin" in body and "Kremlin (body)" in body
    if kind != "slack":
        assert message.title == "Xi Jinping hosts Putin in Beijing [xi-putin, kremlin]"


def test_text_message_has_a_why_line_per_rule() -> None:
    body = render(two_rules_view(), "text").body
    assert body.endswith(
        "Why: xi-putin · Xi → Xi Jinping (title), Putin → Vladimir Putin (title, body)\nWhy: kremlin · Kremlin (body)\n"
    )


def test_email_footer_names_every_rule() -> None:
    assert "because rules <strong>xi-putin, kremlin</strong> matched" in render(two_rules_view(), "email").body


def test_also_on_links_each_outlet_that_has_a_web_link() -> None:
    view = make_view(
        outlets=(
            Outlet("reuters", "https://reuters.example/world/1"),
            Outlet("ap-news", None),
            Outlet("evil", "javascript:alert(1)"),
        )
    )
    assert "Also on: [reuters](https://reuters.example/world/1), ap-news, evil" in render(view, "slack").body
    assert "Also on: [reuters](https://reuters.example/world/1), ap-news, evil" in render(view, "markdown").body
    assert 'Also on: <a href="https://reuters.example/world/1">reuters</a>, ap-news, evil' in render(view, "email").body
    assert "Also on: reuters <https://reuters.example/world/1>, ap-news, evil" in render(view, "text").body
    for kind in KINDS:
        assert "javascript" not in render(view, kind).body


def test_a_long_headline_is_cut_to_fit_a_subject() -> None:
    title = "Putin " + "x" * 400
    view = make_view(title=title, hits=(hit("Putin", "title", title, "Putin"),))
    for kind in KINDS:
        message = render(view, kind)
        assert "…" in message.title and len(message.title) <= 200
    assert render(view, "email").title.startswith("Putin xxx")
    assert render(view, "email").title.endswith("… [xi-putin]")
    assert render(view, "slack").title.endswith("…")
