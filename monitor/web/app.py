"""The dashboard's Starlette application: routes, templates, and what the daemon or `news-monitor web` gives it.

Every route reads through :class:`~monitor.web.reader.Reader` (a thread and a
connection of its own), renders a Jinja2 template with autoescape on, and is
wrapped by :class:`~monitor.web.security.Guard`. The only route that changes
anything is the POST that retries a dead alert, behind a CSRF token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from monitor.display import shown
from monitor.errors import NotFoundError, RuleSyntaxError
from monitor.health import HealthStatus, Metrics, healthz_response, metrics_response
from monitor.rules.evaluate import compile_rule
from monitor.store import AlertStatus, Storage
from monitor.web import pages
from monitor.web.reader import Reader, Superseded
from monitor.web.security import BODY_TIMEOUT, MAX_BODY, Csrf, Guard
from monitor.web.surges import SurgeSource
from monitor.web.tester import MAX_QUERY_CHARS, PERIODS, TesterForm, TesterResult, run_test

if TYPE_CHECKING:
    from monitor.assembly import Setup

log = logging.getLogger("monitor.web")

HERE = Path(__file__).resolve().parent
MAX_PARAM_CHARS = 300  # of an entity name or a rule name in a URL


@dataclass
class WebContext:
    """What the dashboard needs from whoever serves it (the daemon, or `news-monitor web` alone)."""

    setup: Callable[[], Setup]  # the config in force (the daemon's follows its reloads)
    reader: Reader
    metrics: Metrics
    health: Callable[[], Awaitable[HealthStatus]]
    refresh_metrics: Callable[[], Awaitable[None]] | None = None
    on_retry: Callable[[], None] | None = None  # a dead alert was made due again (the daemon delivers now)
    surges: SurgeSource | None = None  # the spike rules' surges, listed and marked on the entity charts
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    csrf: Csrf = field(default_factory=Csrf)
    token: str | None = None
    loopback_only: bool = True


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=lambda value: shown(value) if isinstance(value, str) else value,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def create_app(context: WebContext) -> Guard:
    templates = Jinja2Templates(env=_environment())

    def when() -> pages.Clock:
        return pages.Clock(ZoneInfo(context.setup().config.settings.display_timezone))

    def page(request: Request, name: str, values: dict[str, Any], status: int = 200) -> Response:
        zone = context.setup().config.settings.display_timezone
        values = {"nav": request.url.path, "csrf": context.csrf, "zone": zone, **values}
        return templates.TemplateResponse(request, name, values, status_code=status)

    async def read(work: Callable[[Storage], Any]) -> Any:
        return await context.reader.read(work)

    async def alerts(request: Request) -> Response:
        raw = request.query_params.get("status", "")
        status = AlertStatus(raw) if raw in set(AlertStatus) else None
        clock = when()
        values = await read(lambda store: pages.alerts_page(store, status=status, when=clock))
        return page(request, "alerts.html.j2", {"title": "Alerts", **values})

    async def retry(request: Request) -> Response:
        alert_id = _int(request.path_params["alert_id"])
        form = await _form(request)
        if form is None:
            return PlainTextResponse("a form here is small and sent promptly", status_code=400)
        action = pages.retry_path(alert_id)
        if not context.csrf.valid(action, form.get("csrf")):
            return PlainTextResponse("missing or wrong CSRF token: reload the page and try again", status_code=403)

        def work(store: Storage) -> str | None:
            alert = store.alert(alert_id)
            if alert.status != AlertStatus.DEAD:
                return f"alert {alert_id} is {alert.status}, not dead: nothing to retry"
            store.retry_alerts(context.clock(), ids=[alert_id])
            return None

        try:
            refused = await read(work)
        except NotFoundError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        if refused:
            return PlainTextResponse(refused, status_code=409)
        log.info("web.retry", extra={"alert": alert_id})
        if context.on_retry is not None:
            context.on_retry()
        return RedirectResponse("/?retried=" + str(alert_id), status_code=303)

    async def tester(request: Request) -> Response:
        form = TesterForm.read(request.query_params)
        result = await _test(request, form)
        setup = context.setup()
        values = {
            "title": "Rule tester",
            "form": form,
            "rules": sorted(setup.rulebook.compiled),
            "periods": list(PERIODS),
            "result": result,
        }
        return page(request, "tester.html.j2", values)

    async def tester_results(request: Request) -> Response:
        form = TesterForm.read(request.query_params)
        result = await _test(request, form)
        if result is None and not form.empty:
            return Response(status_code=204)  # superseded by a newer keystroke
        return page(request, "tester_results.html.j2", {"form": form, "result": result})

    async def _test(request: Request, form: TesterForm) -> TesterResult | None:
        if form.empty:
            return None
        setup = context.setup()
        now = context.clock()
        client = request.client.host if request.client else "?"
        client += "|" + request.headers.get("user-agent", "")[:100]
        try:
            return await context.reader.rule_test(client, lambda store: run_test(store, form, setup, now))
        except Superseded:
            return None

    async def entities(request: Request) -> Response:
        window = request.query_params.get("window", "day")
        window = window if window in pages.WINDOWS else "day"
        now = context.clock()
        values = await read(lambda store: pages.entities_page(store, window=window, now=now, surges=context.surges))
        return page(request, "entities.html.j2", {"title": "Entities", **values})

    async def entity_items(request: Request) -> Response:
        name = request.query_params.get("name", "")[:MAX_PARAM_CHARS]
        kind = request.query_params.get("type", "")[:40]
        window = request.query_params.get("window", "day")
        window = window if window in pages.WINDOWS else "day"
        now, clock = context.clock(), when()
        values = await read(lambda store: pages.entity_items_page(store, name=name, kind=kind, window=window, now=now))
        return page(request, "entity_items.html.j2", {"title": f"{name} ({kind})", "when": clock, **values})

    async def feeds(request: Request) -> Response:
        now, clock = context.clock(), when()
        values = await read(lambda store: pages.feeds_page(store, now=now, when=clock))
        return page(request, "feeds.html.j2", {"title": "Feeds", **values})

    async def item(request: Request) -> Response:
        item_id = _int(request.path_params["item_id"])
        setup = context.setup()
        book = setup.rulebook
        rules = list(book.compiled.values())
        query = request.query_params.get("q", "").strip()
        if query and len(query) <= MAX_QUERY_CHARS:  # a tester's query: why it matches, beside the rules
            try:
                rules.insert(0, compile_rule("query", query, book.lexicon))
            except RuleSyntaxError:
                pass
        clock = when()
        try:
            values = await read(
                lambda store: pages.item_page(store, item_id, rules=rules, lexicon=book.lexicon, when=clock)
            )
        except NotFoundError as exc:
            return page(request, "error.html.j2", {"title": "Not found", "message": str(exc)}, status=404)
        return page(request, "item.html.j2", {"title": f"Item #{item_id}", **values})

    async def healthz(request: Request) -> Response:
        status = await context.health()
        answer = healthz_response(lambda: status)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    async def metrics(request: Request) -> Response:
        if context.refresh_metrics is not None:
            try:
                await context.refresh_metrics()
            except Exception:  # serve the counters anyway; the gauges keep their last values
                log.exception("web.metrics_refresh_failed")
        answer = metrics_response(context.metrics)
        return Response(answer.body, status_code=answer.status, headers={"content-type": answer.content_type})

    async def not_found(request: Request, exc: Exception) -> Response:
        return page(request, "error.html.j2", {"title": "Not found", "message": "No such page."}, status=404)

    routes = [
        Route("/", alerts, methods=["GET", "HEAD"]),
        Route("/alerts/{alert_id:int}/retry", retry, methods=["POST"]),
        Route("/rules/test", tester, methods=["GET", "HEAD"]),
        Route("/rules/test/results", tester_results, methods=["GET", "HEAD"]),
        Route("/entities", entities, methods=["GET", "HEAD"]),
        Route("/entities/items", entity_items, methods=["GET", "HEAD"]),
        Route("/feeds", feeds, methods=["GET", "HEAD"]),
        Route("/items/{item_id:int}", item, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found})
    return Guard(app, token=context.token, loopback_only=context.loopback_only)


def _int(value: Any) -> int:
    return max(min(int(value), 2**62), 0)


async def _form(request: Request) -> dict[str, str] | None:
    """An url-encoded form of at most MAX_BODY bytes, sent within BODY_TIMEOUT; None otherwise."""
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    return None
    except TimeoutError:
        return None
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items()}


def query_string(**params: str) -> str:
    return urlencode({name: value for name, value in params.items() if value})
