"""The rule tester: a query (or a rule of the config) over stored history, as `rules test` runs it.

The work is :func:`monitor.history.rule_history`, the engine behind
`news-monitor rules test`; this module only reads the form, bounds the work
(the period, the items read, the query's length) and shapes the result for
the page. A query that does not parse comes back with its column, for a caret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.errors import RuleSyntaxError
from monitor.history import rule_history
from monitor.rules.evaluate import CompiledRule, compile_rule
from monitor.web.pages import happened_at, match_segments, slot_chart
from monitor.wording import plural

if TYPE_CHECKING:
    from monitor.assembly import Setup
    from monitor.store import Storage

PERIODS: dict[str, timedelta] = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PERIOD = "7d"
MAX_QUERY_CHARS = 1000
MAX_ITEMS = 5_000  # items read per test at most: the newest of the period (`rules test` reads them all)
SAMPLE = 20  # newest matches listed


@dataclass(frozen=True)
class TesterForm:
    query: str = ""
    rule: str = ""
    period: str = DEFAULT_PERIOD

    @classmethod
    def read(cls, params: Any) -> TesterForm:
        period = params.get("since", DEFAULT_PERIOD)
        return cls(
            query=str(params.get("q", "")).strip()[: MAX_QUERY_CHARS + 1],
            rule=str(params.get("rule", "")).strip()[:200],
            period=period if period in PERIODS else DEFAULT_PERIOD,
        )

    @property
    def empty(self) -> bool:
        return not self.query and not self.rule


@dataclass
class TesterResult:
    """What the results block shows: an error with its caret, or the report."""

    error: str | None = None
    caret_query: str | None = None
    caret_column: int | None = None
    rule_name: str | None = None
    query: str | None = None
    summary: str = ""
    would_send: str = ""
    chart: Any = None
    chart_caption: str = ""
    matches: list[dict[str, Any]] = field(default_factory=list)
    cut_note: str | None = None


def compile_form(form: TesterForm, setup: Setup) -> tuple[CompiledRule | None, Any, TesterResult | None]:
    """The rule to test (the named rule, else the query), or a result that says what is wrong."""
    book = setup.rulebook
    if form.query:
        if len(form.query) > MAX_QUERY_CHARS:
            return None, None, TesterResult(error=f"a query here is at most {MAX_QUERY_CHARS} characters")
        try:
            return compile_rule("query", form.query, book.lexicon), None, None
        except RuleSyntaxError as exc:
            return (
                None,
                None,
                TesterResult(
                    error=f"column {exc.column}: {exc.message}", caret_query=form.query, caret_column=exc.column
                ),
            )
    if form.rule in book.compiled:
        return book.compiled[form.rule], book.plans.get(form.rule), None
    return None, None, TesterResult(error=f"no rule named {form.rule!r}")


def run_test(store: Storage, form: TesterForm, setup: Setup, now: datetime) -> TesterResult:
    """Run the form's rule over the period (in the reader's thread) and shape the result."""
    rule, plan, problem = compile_form(form, setup)
    if problem is not None or rule is None:
        return problem or TesterResult(error="nothing to test")
    history = rule_history(
        store, rule, setup.rulebook.lexicon, plan, setup.config.settings.stories,
        since=now - PERIODS[form.period], until=now, max_items=MAX_ITEMS, stored_stories=True, prefilter=True,
    )  # fmt: skip
    report = history.report
    matches = []
    for match in report.sample(SAMPLE):
        title, body = match_segments(match.item.title, match.item.text, match.hits)
        matches.append(
            {
                "id": match.item_id,
                "feed": match.feed,
                "when": (match.item.published_at or match.first_seen_at),
                "title": title,
                "body": body,
                "why": [hit.to_dict() for hit in match.hits],
            }
        )
    channels = plan.channels if plan else ("one channel",)
    target = plural(len(channels), "channel") if plan else "one channel"
    notes = [
        f"{report.held} of them in digests" if report.held else "",
        f"{plural(report.suppressed, 'repeat')} suppressed" if report.suppressed else "",
        f"{plural(report.backfill, 'match', 'matches')} came in a first fetch, counted as news"
        if report.backfill
        else "",
    ]
    detail = "; ".join(note for note in notes if note)
    cut = None
    if history.cut:
        cut = (
            f"More than {MAX_ITEMS:,} items were stored in the period: only the newest {MAX_ITEMS:,} were read "
            f"(from {history.since:%Y-%m-%d %H:%M} UTC). `news-monitor rules test` reads them all."
        )
    return TesterResult(
        rule_name=rule.name if plan else None,
        query=rule.query,
        summary=(
            f"{len(report.matches)} of {plural(report.scanned, 'stored item')} match: "
            f"{plural(report.stories, 'story', 'stories')}"
        ),
        would_send=f"{plural(report.alerts, 'alert')} to {target}" + (f" ({detail})" if detail else ""),
        chart=slot_chart(
            [happened_at(m.item.published_at, m.first_seen_at, PERIODS[form.period]) for m in report.matches],
            now=now,
            period=PERIODS[form.period],
            title=f"matches per {'hour' if form.period == '1d' else 'day'}, last {form.period}, by published time",
        ),
        chart_caption=(
            f"Matches per UTC {'hour' if form.period == '1d' else 'day'} of the last {form.period}, by published "
            "time (first seen, when an item has no plausible published time)."
        ),
        matches=matches,
        cut_note=cut,
    )
