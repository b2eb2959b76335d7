"""Alert messages: an AlertView in, a titled body in the format a channel speaks out.

Each *kind* is one row of data (template, body format, title pattern); the
templates under ``templates/`` decide the layout. Highlighting is decided here,
not in templates: the title and an excerpt of the body are cut into
:class:`Segment` runs at the match offsets (on the raw text, so offsets stay
right), and each template escapes every run for its own markup (HTML through
Jinja2's autoescape, Markdown and Slack through explicit filters).

Kinds:

- ``slack``: CommonMark written for apprise's Slack plugin, which turns it into
  Slack mrkdwn (``**x**`` -> ``*x*``, ``[t](u)`` -> ``<u|t>``). Apprise 2.x
  converts any body declared as Markdown, so hand-written mrkdwn would be
  mangled (``*x*`` would become italics) and an undeclared body is run through
  a heuristic that also revives ``<!channel>`` mentions found in feed text.
- ``markdown``: CommonMark for other Markdown channels (Discord, Telegram, Matrix...).
- ``email``: an HTML document; apprise's email plugin adds the plain-text
  alternative part itself (multipart/alternative).
- ``text``: plain text, for everything else and the console channel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jinja2

from monitor.display import shown

if TYPE_CHECKING:
    from monitor.alerts.digest import Digest

TEMPLATE_DIR = Path(__file__).parent / "templates"

# How much of the body an alert quotes; enough for a sentence or two of context.
EXCERPT_CHARS = 280
ELLIPSIS = "…"

# A message title (an e-mail subject, a chat header) is cut to this many characters and UTF-8 bytes.
HEADLINE_CHARS = 200
HEADLINE_BYTES = 300

# Links from feeds are untrusted: only web links become clickable.
LINK_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class AlertView:
    """Everything a template may show about one alert."""

    rule: str
    title: str
    link: str | None
    feed: str  # feed name
    published_at: datetime | None  # UTC-aware
    body: str  # item's plain-text body (templates show a short excerpt)
    # The match explanation: dicts with keys term, field ("title"/"body"/"author"/
    # "feed"/"tag"/"site"), start, end, matched, entity (canonical name or None).
    hits: tuple[dict[str, Any], ...]
    outlets: tuple[str, ...] = ()  # other feeds that carried the same story


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    format: str  # "text" | "markdown" | "html"


@dataclass(frozen=True)
class Segment:
    """A run of text; ``hit`` runs are the words a rule matched."""

    text: str
    hit: bool = False


@dataclass(frozen=True)
class Why:
    """One line of the match explanation."""

    term: str
    matched: str
    field: str
    entity: str | None

    @property
    def text(self) -> str:
        """E.g. ``Xi -> "Xi Jinping" (entity Xi Jinping, title)``."""
        where = f"entity {self.entity}, {self.field}" if self.entity else self.field
        return f'{self.term} -> "{self.matched}" ({where})'


@dataclass(frozen=True)
class Kind:
    """How one kind of channel gets its message."""

    template: str
    format: str  # Message.format
    title: str  # str.format pattern over rule and title


# Declared as data so a new kind is a row and a template, not a branch.
KINDS: Mapping[str, Kind] = {
    # The Slack headline is the linked title in the body; apprise shows the
    # message title as a plain header above it, so it names the rule only.
    "slack": Kind("slack.md.j2", "markdown", "news-monitor: {rule}"),
    "markdown": Kind("markdown.md.j2", "markdown", "{rule}: {title}"),
    "email": Kind("email.html.j2", "html", "{rule}: {title}"),
    "text": Kind("text.txt.j2", "text", "{rule}: {title}"),
}

# Which kind an apprise URL gets: by scheme, then by URL prefix (apprise also
# accepts the webhook URLs services hand out), else text.
KIND_BY_SCHEME: Mapping[str, str] = {
    "slack": "slack",
    "mailto": "email",
    "mailtos": "email",
    "console": "text",
}
KIND_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("https://hooks.slack.com/", "slack"),
    ("https://hooks.slack-gov.com/", "slack"),
)
DEFAULT_KIND = "text"
# The kind a channel's explicit ``format`` asks for when the URL's kind speaks another.
KIND_BY_FORMAT: Mapping[str, str] = {"text": "text", "markdown": "markdown", "html": "email"}


def kind_for_url(url: str, format: str | None = None) -> str:
    """The message kind for an apprise URL; an explicit channel ``format`` overrides it.

    The URL's own kind wins when it already produces that format (a Slack URL
    with ``format: markdown`` stays "slack").
    """
    if format is not None and format not in KIND_BY_FORMAT:
        raise ValueError(f"unknown channel format {format!r}; use one of {sorted(KIND_BY_FORMAT)}")
    kind = _kind_of_url(url)
    if format is None or KINDS[kind].format == format:
        return kind
    return KIND_BY_FORMAT[format]


def _kind_of_url(url: str) -> str:
    stripped = url.strip()
    scheme = stripped.split("://", 1)[0].lower() if "://" in stripped else stripped.lower()
    if scheme in KIND_BY_SCHEME:
        return KIND_BY_SCHEME[scheme]
    lowered = stripped.lower()
    for prefix, kind in KIND_BY_PREFIX:
        if lowered.startswith(prefix):
            return kind
    return DEFAULT_KIND


# ---------------------------------------------------------------- highlighting


def _valid_spans(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans inside ``text``, sorted, overlaps merged; bad offsets are dropped, not fatal."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((s, e) for s, e in spans if 0 <= s < e <= len(text)):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> tuple[Segment, ...]:
    """``text`` cut into plain and hit segments at the character offsets ``spans``."""
    segments: list[Segment] = []
    position = 0
    for start, end in _valid_spans(text, spans):
        if start > position:
            segments.append(Segment(text[position:start]))
        segments.append(Segment(text[start:end], hit=True))
        position = end
    if position < len(text) or not segments:
        segments.append(Segment(text[position:]))
    return tuple(segments)


def _collapse_whitespace(segments: Iterable[Segment]) -> tuple[Segment, ...]:
    # Per segment, after cutting, so collapsing never moves an offset.
    out = [Segment(re.sub(r"\s+", " ", s.text), s.hit) for s in segments]
    if out:
        out[0] = Segment(out[0].text.lstrip(), out[0].hit)
        out[-1] = Segment(out[-1].text.rstrip(), out[-1].hit)
    return tuple(s for s in out if s.text)


def _window(text: str, anchor: tuple[int, int] | None, width: int) -> tuple[int, int]:
    """A ``width``-character window of ``text`` showing ``anchor``, cut at whitespace."""
    if len(text) <= width:
        return 0, len(text)
    first = anchor[0] if anchor else 0
    start = max(0, first - width // 3)
    end = min(len(text), start + width)
    start = max(0, end - width)
    if start > 0:
        space = text.find(" ", start, first)
        start = space + 1 if space != -1 else start
    if end < len(text):
        floor = anchor[1] if anchor else start
        space = text.rfind(" ", floor, end)
        end = space if space != -1 else end
    return start, end


def excerpt(
    text: str, spans: Iterable[tuple[int, int]], width: int = EXCERPT_CHARS
) -> tuple[Segment, ...]:
    """A short part of ``text`` around its first hit, highlighted, whitespace collapsed.

    A cut end is marked with an ellipsis segment.
    """
    valid = _valid_spans(text, spans)
    start, end = _window(text, valid[0] if valid else None, width)
    inside = [(max(s, start) - start, min(e, end) - start) for s, e in valid if s < end and e > start]
    segments = list(_collapse_whitespace(highlight(text[start:end], inside)))
    if start > 0:
        segments.insert(0, Segment(ELLIPSIS))
    if end < len(text):
        segments.append(Segment(ELLIPSIS))
    return tuple(segments)


def _spans(hits: Iterable[Mapping[str, Any]], field: str) -> list[tuple[int, int]]:
    spans = []
    for hit in hits:
        start, end = hit.get("start"), hit.get("end")
        if hit.get("field") == field and isinstance(start, int) and isinstance(end, int):
            spans.append((start, end))
    return spans


def explain(hits: Iterable[Mapping[str, Any]]) -> tuple[Why, ...]:
    """The distinct why-lines of a match explanation, in hit order."""
    seen: dict[Why, None] = {}
    for hit in hits:
        why = Why(
            term=str(hit.get("term", "")),
            matched=str(hit.get("matched", "")),
            field=str(hit.get("field", "")),
            entity=hit.get("entity") or None,
        )
        seen.setdefault(why, None)
    return tuple(seen)


def safe_link(link: str | None) -> str | None:
    """``link`` if it is a web link a reader may click, else None (no javascript: etc.)."""
    if not link:
        return None
    try:
        scheme = urlsplit(link.strip()).scheme.lower()
    except ValueError:
        return None
    return link.strip() if scheme in LINK_SCHEMES else None


def format_published(published_at: datetime | None) -> str | None:
    if published_at is None:
        return None
    if published_at.tzinfo is None:
        # The store keeps UTC; a naive value is UTC that lost its tzinfo.
        published_at = published_at.replace(tzinfo=timezone.utc)
    return published_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def one_line(text: str) -> str:
    """Whitespace collapsed to single spaces: subjects and headers are one line."""
    return " ".join(text.split())


def headline(text: str) -> str:
    """A message title: one line without bidirectional controls, cut to fit any channel's header.

    Mail servers refuse a header line over 998 bytes, and apprise neither folds
    the subject nor bounds it: encoded, a non-ASCII character takes up to 12
    bytes ("=F0=9F=98=80"), so a 110-character Chinese headline was refused.
    :data:`HEADLINE_BYTES` of UTF-8 stay under that limit whatever the script.
    """
    text = shown(one_line(text))
    if len(text) <= HEADLINE_CHARS and len(text.encode("utf-8")) <= HEADLINE_BYTES:
        return text
    room = HEADLINE_BYTES - len(ELLIPSIS.encode("utf-8"))
    end = 0
    for character in text[: HEADLINE_CHARS - 1]:
        room -= len(character.encode("utf-8"))
        if room < 0:
            break
        end += 1
    return text[:end].rstrip() + ELLIPSIS


# ------------------------------------------------------------- markup escaping

# Characters CommonMark could read as markup in feed text.
_MD_SPECIAL_RE = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")
# Apprise's CommonMark->Slack conversion keeps a backslash escape literally
# (Slack has no escapes), so for Slack only escape what would otherwise be
# markup or a mention: brackets (links) and angle brackets (<!channel>).
_SLACK_SPECIAL_RE = re.compile(r"([\[\]<>])")
_URL_UNSAFE = str.maketrans({" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E", "|": "%7C"})


def md_escape(text: str) -> str:
    """Feed text made literal in CommonMark."""
    return _MD_SPECIAL_RE.sub(r"\\\1", text)


def slack_escape(text: str) -> str:
    """Feed text made literal after apprise's CommonMark to Slack conversion."""
    return _SLACK_SPECIAL_RE.sub(r"\\\1", text)


def md_url(url: str) -> str:
    """A URL that cannot end a Markdown link early."""
    return url.translate(_URL_UNSAFE)


# ------------------------------------------------------------------- rendering


def make_environment(template_dir: Path = TEMPLATE_DIR, *extra_dirs: Path) -> jinja2.Environment:
    """The Jinja2 environment: autoescape for HTML templates only, undefined names are errors.

    ``extra_dirs`` are searched first, so a channel's own template can
    ``{% extends "email.html.j2" %}`` or include the defaults.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*extra_dirs, template_dir]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # Every value a template shows, its own or an operator's, loses bidirectional controls.
        finalize=_shown,
    )
    env.filters.update(md_escape=md_escape, slack_escape=slack_escape, md_url=md_url)
    return env


class Renderer:
    """Renders views with the templates of one directory (the package's by default).

    ``template`` names a channel's own template file, used for every kind in
    place of the default one (its extension decides HTML escaping).
    """

    def __init__(self, template_dir: Path = TEMPLATE_DIR, template: Path | None = None) -> None:
        extra = (template.parent,) if template is not None else ()
        self._env = make_environment(template_dir, *extra)
        self._template = template.name if template is not None else None

    def render_template(self, name: str, **context: Any) -> str:
        return _render_template(self._env, name, context)

    def render(self, view: AlertView, kind: str) -> Message:
        """The message for ``view`` in ``kind``; template errors (undefined names) raise."""
        spec = _kind(kind)
        body = self.render_template(self._template or spec.template, **_context(view))
        title = headline(spec.title.format(rule=view.rule, title=view.title))
        return Message(title=title, body=body, format=spec.format)


def _shown(value: Any) -> Any:
    return shown(value) if isinstance(value, str) else value


def _render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    return env.get_template(name).render(context).strip() + "\n"


def _kind(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown message kind {kind!r}; use one of {sorted(KINDS)}") from None


def _context(view: AlertView) -> dict[str, Any]:
    terms = tuple(dict.fromkeys(str(h.get("term", "")) for h in view.hits if h.get("term")))
    return {
        "rule": view.rule,
        "title": one_line(view.title),
        "title_segments": _collapse_whitespace(highlight(view.title, _spans(view.hits, "title"))),
        "link": safe_link(view.link),
        "feed": view.feed,
        "published": format_published(view.published_at),
        "excerpt": excerpt(view.body, _spans(view.hits, "body")),
        "terms": terms,
        "why": explain(view.hits),
        "outlets": tuple(view.outlets),
    }


@cache
def _default_renderer() -> Renderer:
    return Renderer()


def render(view: AlertView, kind: str) -> Message:
    """The message for ``view`` in ``kind`` ("slack", "markdown", "email", "text")."""
    return _default_renderer().render(view, kind)


def render_test_message(
    channel_name: str, kind: str = "text", now: datetime | None = None, renderer: Renderer | None = None
) -> Message:
    """A sample alert for checking that a channel works, rendered like a real one.

    ``now`` (UTC) is shown as the published time when given.
    """
    return (renderer or _default_renderer()).render(_sample_view(channel_name, now), kind)


def _sample_view(channel_name: str, now: datetime | None = None) -> AlertView:
    return AlertView(
        rule="notify-test",
        title=f"Test alert from news-monitor for channel {channel_name}",
        link="https://example.org/news-monitor/notify-test",
        feed="news-monitor",
        published_at=now,
        body=(
            f"This is a test message sent by news-monitor to the channel {channel_name}. "
            "Real alerts look like this one: they name the rule that fired and why."
        ),
        hits=(
            {"term": "test", "field": "title", "start": 0, "end": 4, "matched": "Test", "entity": None},
            {"term": "test", "field": "body", "start": 10, "end": 14, "matched": "test", "entity": None},
        ),
        outlets=("another-feed",),
    )


def check_template(template: Path, kind: str) -> str | None:
    """Why a channel's template file cannot render an alert, or None when it can.

    Renders a sample alert, so undefined names are caught as well as syntax
    errors: before the daemon runs, not at 3 a.m.
    """
    try:
        Renderer(template=template).render(_sample_view(template.name), kind)
    except jinja2.TemplateSyntaxError as exc:
        return f"{exc.filename or template}:{exc.lineno}: template syntax error: {exc.message}"
    except jinja2.TemplateNotFound as exc:
        return f"template {exc.name} not found"
    except jinja2.TemplateError as exc:
        return f"{template}: template error: {exc}"
    return None


# The digest template of each message kind; the format stays the kind's own.
DIGEST_TEMPLATES: Mapping[str, str] = {
    "slack": "digest.md.j2",
    "markdown": "digest.md.j2",
    "email": "digest.html.j2",
    "text": "digest.txt.j2",
}


def render_digest(digest: Digest, kind: str) -> Message:
    """One message listing the stories of a digest, a section per rule."""
    spec = _kind(kind)
    sections = [
        {
            "rule": section.rule,
            "entries": [
                {
                    "title": one_line(entry.title),
                    "link": safe_link(entry.link),
                    "feed": entry.feed,
                    "published": format_published(entry.published_at),
                    "outlets": [outlet for outlet in entry.outlets if outlet != entry.feed],
                }
                for entry in section.entries
            ],
        }
        for section in digest.sections
    ]
    body = _default_renderer().render_template(DIGEST_TEMPLATES[kind], sections=sections, count=digest.story_count)
    rules = ", ".join(section.rule for section in digest.sections)
    title = headline(
        f"news-monitor digest: {digest.story_count} {'story' if digest.story_count == 1 else 'stories'} ({rules})"
    )
    return Message(title=title, body=body, format=spec.format)
