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
  alternative part itself (multipart/alternative), converted from this HTML, so
  the template is written for that converter too (see email.html.j2).

Layout, every kind: the headline (Slack: the message title), the outlet and the
time in the display time zone (``Renderer.zone``), the excerpt with the hits
marked, one short "Why" line per rule, the other outlets with their links. A
message may name several rules that matched one story (``AlertView.matches``).
- ``text``: plain text, for everything else and the console channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from monitor.alerts.markup import (
    HEADLINE_BYTES,
    HEADLINE_CHARS,
    collapse_whitespace,
    excerpt,
    headline,
    highlight,
    md_escape,
    md_url,
    one_line,
    safe_link,
    slack_escape,
)
from monitor.display import shown

if TYPE_CHECKING:
    from monitor.alerts.digest import Digest

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Outlet:
    """Another feed that ran the story, with its own link to it when known."""

    name: str
    link: str | None = None


@dataclass(frozen=True)
class RuleMatch:
    """One rule that matched the story, with its match explanation (hits as in :class:`AlertView`)."""

    rule: str
    hits: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class AlertView:
    """Everything a template may show about one alert.

    One message may settle the alerts of several rules on one story: ``matches``
    then holds each rule with its own hits (``rule`` and ``hits`` are the first's
    and all of them together).
    """

    rule: str
    title: str
    link: str | None
    feed: str  # feed name
    published_at: datetime | None  # UTC-aware
    body: str  # item's plain-text body (templates show a short excerpt)
    # The match explanation: dicts with keys term, field ("title"/"body"/"author"/
    # "feed"/"tag"/"site"), start, end, matched, entity (canonical name or None).
    hits: tuple[dict[str, Any], ...]
    outlets: tuple[str | Outlet, ...] = ()  # other feeds that carried the same story
    matches: tuple[RuleMatch, ...] = ()  # every rule the message names; empty: ``rule`` alone

    @property
    def rule_matches(self) -> tuple[RuleMatch, ...]:
        return self.matches or (RuleMatch(self.rule, self.hits),)

    @property
    def rule_names(self) -> str:
        """The rules the message names, e.g. ``xi-putin, kremlin``."""
        return ", ".join(dict.fromkeys(match.rule for match in self.rule_matches))


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    format: str  # "text" | "markdown" | "html"


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
class WhyTerm:
    """What one term of a rule matched, short: ``Putin → Vladimir Putin (title, body)``."""

    term: str
    shown: str  # the entity's name, or the words matched
    fields: tuple[str, ...]

    @property
    def text(self) -> str:
        where = f" ({', '.join(self.fields)})" if self.fields else ""
        if not self.shown or self.shown.casefold() == self.term.casefold():
            return f"{self.term}{where}"
        return f"{self.term} → {self.shown}{where}"


@dataclass(frozen=True)
class Reason:
    """Why one rule matched, on one line: the rule and what each of its terms matched."""

    rule: str
    terms: tuple[WhyTerm, ...]

    @property
    def text(self) -> str:
        return f"{self.rule}: {', '.join(term.text for term in self.terms)}" if self.terms else self.rule


@dataclass(frozen=True)
class Kind:
    """How one kind of channel gets its message."""

    template: str
    format: str  # Message.format
    title: str  # str.format pattern over rule and title


# Declared as data so a new kind is a row and a template, not a branch.
KINDS: Mapping[str, Kind] = {
    # Slack shows the title as the attachment's header, above the body: the headline alone (the
    # rules are in the "Why" line). Elsewhere the title is a subject or a first line: the headline
    # first, as people scan it, then the rules in brackets for mail filters (the headline is cut to
    # fit, never the rules). The text body does not repeat the headline: apprise shows the title
    # above it, or puts it first in the body where a channel has no titles.
    "slack": Kind("slack.md.j2", "markdown", "{title}"),
    "markdown": Kind("markdown.md.j2", "markdown", "{title} [{rule}]"),
    "email": Kind("email.html.j2", "html", "{title} [{rule}]"),
    "text": Kind("text.txt.j2", "text", "{title} [{rule}]"),
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


def reasons(matches: Iterable[RuleMatch]) -> tuple[Reason, ...]:
    """Why each rule matched, short: per term, the entity (or the words) it matched and where."""
    out = []
    for match in matches:
        terms: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
        for hit in match.hits:
            term = str(hit.get("term", ""))
            if not term:
                continue
            shown_as, fields = terms.setdefault(term, ({}, {}))
            name = one_line(str(hit.get("entity") or hit.get("matched") or ""))
            if name.casefold() != term.casefold():  # the term's own words say nothing new
                shown_as.setdefault(name, None)
            if hit.get("field"):
                fields.setdefault(str(hit["field"]), None)
        out.append(
            Reason(
                match.rule,
                tuple(
                    WhyTerm(term, " / ".join(name for name in shown_as if name), tuple(fields))
                    for term, (shown_as, fields) in terms.items()
                ),
            )
        )
    return tuple(out)


def format_published(published_at: datetime | None, zone: tzinfo = timezone.utc) -> str | None:
    """``2024-05-01 14:34 CEST``: the time in the display time zone, named by its abbreviation."""
    if published_at is None:
        return None
    if published_at.tzinfo is None:
        # The store keeps UTC; a naive value is UTC that lost its tzinfo.
        published_at = published_at.replace(tzinfo=timezone.utc)
    return published_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


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

    def __init__(
        self, template_dir: Path = TEMPLATE_DIR, template: Path | None = None, zone: tzinfo = timezone.utc
    ) -> None:
        extra = (template.parent,) if template is not None else ()
        self._env = make_environment(template_dir, *extra)
        self._template = template.name if template is not None else None
        self.zone = zone  # times are shown in this zone (the display_timezone setting)

    def render_template(self, name: str, **context: Any) -> str:
        return _render_template(self._env, name, context)

    def render(self, view: AlertView, kind: str) -> Message:
        """The message for ``view`` in ``kind``; template errors (undefined names) raise."""
        spec = _kind(kind)
        body = self.render_template(self._template or spec.template, **_context(view, self.zone))
        return Message(title=_title(spec.title, view.title, view.rule_names), body=body, format=spec.format)


TITLE_RULES_CHARS = 60


def _title(pattern: str, title: str, rules: str) -> str:
    """A message title from ``pattern``: the story's headline is cut, not what the pattern adds to it.

    The rules take at most :data:`TITLE_RULES_CHARS` (many rules on one story), so the headline
    always keeps most of the room.
    """
    rules = headline(rules, TITLE_RULES_CHARS, TITLE_RULES_CHARS)
    rest = pattern.format(rule=rules, title="")
    cut = headline(title, HEADLINE_CHARS - len(rest), HEADLINE_BYTES - len(rest.encode("utf-8")))
    return headline(pattern.format(rule=rules, title=cut))


def _shown(value: Any) -> Any:
    return shown(value) if isinstance(value, str) else value


def _render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    return env.get_template(name).render(context).strip() + "\n"


def _kind(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown message kind {kind!r}; use one of {sorted(KINDS)}") from None


def _outlet(outlet: str | Outlet) -> Outlet:
    if isinstance(outlet, Outlet):
        return Outlet(outlet.name, safe_link(outlet.link))
    return Outlet(outlet)


def _context(view: AlertView, zone: tzinfo = timezone.utc) -> dict[str, Any]:
    terms = tuple(dict.fromkeys(str(h.get("term", "")) for h in view.hits if h.get("term")))
    also_on = tuple(_outlet(outlet) for outlet in view.outlets)
    return {
        "rule": view.rule_names,
        "rules": tuple(dict.fromkeys(match.rule for match in view.rule_matches)),
        "title": one_line(view.title),
        "title_segments": collapse_whitespace(highlight(view.title, _spans(view.hits, "title"))),
        "link": safe_link(view.link),
        "feed": view.feed,
        "published": format_published(view.published_at, zone),
        "excerpt": excerpt(view.body, _spans(view.hits, "body")),
        "terms": terms,
        "why": explain(view.hits),
        "reasons": reasons(view.rule_matches),
        "outlets": tuple(outlet.name for outlet in also_on),
        "also_on": also_on,
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
        outlets=(Outlet("another-feed", "https://example.org/another-feed/notify-test"),),
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


def render_digest(digest: Digest, kind: str, zone: tzinfo = timezone.utc) -> Message:
    """One message listing the stories of a digest, a section per rule; times shown in ``zone``."""
    spec = _kind(kind)
    sections = [
        {
            "rule": section.rule,
            "entries": [
                {
                    "title": one_line(entry.title),
                    "link": safe_link(entry.link),
                    "feed": entry.feed,
                    "published": format_published(entry.published_at, zone),
                    "also_on": [Outlet(name, safe_link(link)) for name, link in entry.outlets if name != entry.feed],
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


# The surge template of each message kind (a spike rule's alert); a channel's own template is for matches only.
SURGE_TEMPLATES: Mapping[str, str] = {
    "slack": "surge.slack.md.j2",
    "markdown": "surge.md.j2",
    "email": "surge.html.j2",
    "text": "surge.txt.j2",
}


def render_surge(payload: Mapping[str, Any], kind: str, zone: tzinfo = timezone.utc) -> Message:
    """A surge alert: what surged, the count against the usual rate, the top stories behind it.

    ``payload`` is what the surge check stored with the outbox row (see
    ``monitor.surges.surge_payload``); every value is shown as feed text is.
    """
    spec = _kind(kind)
    stories = []
    for story in payload.get("stories") or ():
        seen = story.get("seen_at")
        stories.append(
            {
                "title": one_line(str(story.get("title") or "(no title)")),
                "link": safe_link(story.get("link")),
                "feed": str(story.get("feed") or ""),
                "seen": format_published(datetime.fromisoformat(seen), zone) if seen else None,
                "also_on": [Outlet(str(name), safe_link(link)) for name, link in story.get("outlets") or ()],
            }
        )
    title = one_line(str(payload.get("title") or "Surge"))
    summary = one_line(str(payload.get("summary") or ""))
    rule = one_line(str(payload.get("rule") or ""))
    body = _default_renderer().render_template(
        SURGE_TEMPLATES[kind], title=title, summary=summary, rule=rule, query=one_line(str(payload.get("query") or "")),
        stories=stories,
    )  # fmt: skip
    return Message(title=_title(spec.title, f"{title} — {summary.split(';')[0]}", rule), body=body, format=spec.format)
