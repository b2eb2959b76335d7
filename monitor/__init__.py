"""news-monitor: watch news feeds, match watch rules, send alerts."""

from __future__ import annotations

__version__ = "0.1.0"
USER_AGENT = f"news-monitor/{__version__} (+https://github.com/news-monitor/news-monitor)"
