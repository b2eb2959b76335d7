"""The dashboard's pure parts: the token and CSRF checks, the Host rule, the bind rule, SVG charts."""

from __future__ import annotations

import base64

from monitor.config import web_bind_problem
from monitor.web.charts import Bar, bar_chart, sparkline
from monitor.web.security import Csrf, host_is_loopback, token_matches

TOKEN = "correct-horse-battery-staple"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_token_is_taken_as_bearer_or_basic_password_and_nothing_else():
    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches(basic("anyone", TOKEN), TOKEN)
    assert not token_matches(basic(TOKEN, "wrong"), TOKEN)  # the user name is not the password
    for header in (None, "", "Bearer", f"Bearer {TOKEN}x", f"Token {TOKEN}", "Basic !!!", "Basic " + "A" * 2000):
        assert not token_matches(header, TOKEN), header


def test_a_csrf_token_is_good_for_its_own_form_of_its_own_process_only():
    csrf = Csrf()
    token = csrf.token("/alerts/1/retry")
    assert csrf.valid("/alerts/1/retry", token)
    assert not csrf.valid("/alerts/2/retry", token)
    assert not Csrf().valid("/alerts/1/retry", token)  # another process (a restart) has another secret
    for wrong in (None, "", token[:-1], token + "0", "é" * 64):
        assert not csrf.valid("/alerts/1/retry", wrong)


def test_only_loopback_hosts_count_as_loopback():
    for host in ("127.0.0.1:8750", "localhost:8750", "localhost", "[::1]:8750", "app.localhost:1"):
        assert host_is_loopback(host), host
    for host in (None, "", "example.org", "127.0.0.1.example.org:8750", "10.0.0.2:8750", "[2001:db8::1]:80"):
        assert not host_is_loopback(host), host


def test_a_non_loopback_address_needs_allow_remote_and_a_long_enough_token():
    assert web_bind_problem("127.0.0.1", False, "T", {}) is None
    assert web_bind_problem("::1", False, "T", {}) is None
    assert "web.allow_remote: true" in web_bind_problem("0.0.0.0", False, "T", {"T": TOKEN})
    assert "$T is not set" in web_bind_problem("0.0.0.0", True, "T", {})
    assert "shorter than 16" in web_bind_problem("0.0.0.0", True, "T", {"T": "short"})
    assert web_bind_problem("0.0.0.0", True, "T", {"T": TOKEN}) is None


def test_charts_escape_their_labels_and_mark_what_they_are_told():
    chart = bar_chart([Bar("<b>", 3), Bar("day 2", 0, marked=True)], title='x" onload="alert(1)')
    assert "<b>" not in chart and "&lt;b&gt;" in chart
    assert 'aria-label="x&quot; onload=&quot;alert(1)"' in chart
    assert chart.count('class="bar marked"') == 1 and "<script" not in chart and "style=" not in chart
    line = sparkline([0, 5, 1], title="t", marks=[1, 7])
    assert line.count("<circle") == 1  # an index out of range marks nothing
    assert "<polyline" not in sparkline([], title="none")
