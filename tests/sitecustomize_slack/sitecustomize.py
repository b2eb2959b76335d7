"""Point apprise's Slack webhook host at a local receiver, for end-to-end tests.

Apprise posts Slack webhooks to a fixed host (``NotifySlack.webhook_url``).
Tests that run the real CLI in a subprocess put this directory on PYTHONPATH
and set ``NEWS_MONITOR_TEST_SLACK_WEBHOOK_URL`` (e.g.
``http://127.0.0.1:PORT/services``); Python imports this module at start-up and
apprise then posts ``slack://A/B/C`` to ``<that URL>/A/B/C``. Without the
variable nothing is imported, so start-up stays as cheap as before.

This file shadows any other ``sitecustomize`` on the path, which is fine for a
test subprocess and the reason it lives in its own directory.
"""

from __future__ import annotations

import os

_WEBHOOK_URL = os.environ.get("NEWS_MONITOR_TEST_SLACK_WEBHOOK_URL", "").rstrip("/")

if _WEBHOOK_URL:
    # Apprise's plugin manager imports this same module later, so patching the
    # class here is what every Slack notification in the process will use.
    from apprise.plugins.slack import NotifySlack

    NotifySlack.webhook_url = _WEBHOOK_URL
