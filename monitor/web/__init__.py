"""The web dashboard: alerts, the rule tester, entities, feeds and items, as server-rendered HTML.

    uvicorn (on the daemon's event loop, or alone: `news-monitor web`)
     └─ security.Guard     token (when set), Host check, size limits, security headers on every answer
        └─ app (Starlette) routes ─ pages.* build what a page shows ─ templates/ (Jinja2, autoescaped)
             store reads run in reader.Reader's threads, each with its own connection: a slow page
             never holds up polling or delivery; charts.py draws the SVG on the server

Imported only when the dashboard is served, so the other commands never load Starlette or uvicorn.
"""
