"""Hide secrets in apprise URLs and in text that may quote them (logs, errors).

Apprise URLs carry credentials in every part: user info (``mailtos://user:pass@host``),
the host and path (``slack://TOKEN_A/TOKEN_B/TOKEN_C/#chan``) and the query
(``?token=...``). Nothing here knows a plugin's grammar; a part is hidden when it
is a password, a value of a secret-sounding parameter, or looks random enough to
be a token. Hiding too much in a log line is harmless; hiding too little is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

MASK = "***"
# Tokens keep their first characters so a user can tell which one is meant
# (``T1…`` vs ``A1…``) without the rest being recoverable.
TOKEN_PREFIX = 2
ELLIPSIS = "…"

# A query parameter whose lower-cased name contains one of these holds a secret.
SECRET_PARAM_WORDS: tuple[str, ...] = (
    "pass",
    "pwd",
    "token",
    "secret",
    "key",
    "auth",
    "sig",
    "credential",
    "bearer",
    "cookie",
    "session",
)

# Secrets shorter than this are not scrubbed from free text: replacing every
# "ab" in a log line destroys it and protects nothing.
MIN_SCRUB_LENGTH = 3

_SCHEME_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*)://")
_URL_IN_TEXT_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# Dots and "@" mean a host name or an e-mail address; anything else may be a
# token, including a malformed one that apprise is about to quote in an error.
_TOKEN_CHARS_RE = re.compile(r"^[^\s.@/]+$")


def looks_like_token(part: str) -> bool:
    """Whether a host or path segment looks like a generated secret rather than a word.

    Dotted names (hosts, e-mail addresses) and plain numbers (ports, chat ids)
    are not tokens.
    """
    if not _TOKEN_CHARS_RE.match(part):
        return False
    has_digit = any(c.isdigit() for c in part)
    has_alpha = any(c.isalpha() for c in part)
    mixed_case = any(c.isupper() for c in part) and any(c.islower() for c in part)
    return (
        (len(part) >= 8 and has_digit and has_alpha)
        or (len(part) >= 16 and mixed_case)
        or len(part) >= 32
    )


def is_secret_param(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(word in lowered for word in SECRET_PARAM_WORDS)


def _mask_token(part: str) -> str:
    return part[:TOKEN_PREFIX] + ELLIPSIS


@dataclass(frozen=True)
class _Redaction:
    url: str
    secrets: tuple[str, ...]


def _redact(url: str) -> _Redaction:
    match = _SCHEME_RE.match(url)
    if match is None:
        # Not a URL (e.g. "console"): nothing structured to hide.
        return _Redaction(url, ())
    scheme = match.group(1)
    rest = url[match.end() :]
    secrets: list[str] = []

    def hide(value: str, masked: str) -> str:
        secrets.append(value)
        return masked

    # Split by hand rather than with urlsplit: apprise URLs are not always
    # RFC-valid (``#`` channels, unquoted ``@`` in passwords) and the output
    # must keep the user's spelling apart from the hidden parts.
    rest, hash_sign, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")

    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if looks_like_token(unquote(user)):
            user = hide(user, _mask_token(user))
        if colon:
            password = hide(password, MASK) if password else password
        userinfo = f"{user}{colon}{password}"
    if not hostport.startswith("["):  # an IPv6 literal is never a secret
        # "host:port" normally, but some schemes put "id:token" here (tgram://).
        parts = hostport.split(":")
        hostport = ":".join(
            hide(part, _mask_token(part)) if looks_like_token(unquote(part)) else part
            for part in parts
        )

    segments = [
        hide(segment, _mask_token(segment)) if looks_like_token(unquote(segment)) else segment
        for segment in path.split("/")
    ]

    pairs = []
    for pair in query.split("&") if query else []:
        name, equals, value = pair.partition("=")
        if equals and value and is_secret_param(name):
            value = hide(value, MASK)
        pairs.append(f"{name}{equals}{value}")

    redacted = (
        f"{scheme}://{userinfo}{at}{hostport}{slash}{'/'.join(segments)}"
        f"{question}{'&'.join(pairs)}{hash_sign}{fragment}"
    )
    return _Redaction(redacted, tuple(secrets))


def redact_url(url: str) -> str:
    """The URL with passwords, tokens and secret parameters hidden.

    >>> redact_url("mailtos://user:pass@smtp.example.org?to=me@example.org")
    'mailtos://user:***@smtp.example.org?to=me@example.org'
    >>> redact_url("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#chan")
    'slack://T1…/A1…/TI…/#chan'
    """
    return _redact(url).url


def url_secrets(url: str) -> tuple[str, ...]:
    """The substrings of ``url`` that :func:`redact_url` hides, raw and percent-decoded.

    Feed them to :func:`redact_text` to scrub messages (apprise logs, exceptions)
    that might quote them in either spelling.
    """
    found: list[str] = []
    for secret in _redact(url).secrets:
        for spelling in (secret, unquote(secret)):
            if len(spelling) >= MIN_SCRUB_LENGTH and spelling not in found:
                found.append(spelling)
    return tuple(found)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each known secret replaced by ``***`` and any URL in it redacted."""
    # Longest first, so a secret that contains a shorter one is hidden whole.
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SCRUB_LENGTH:
            text = text.replace(secret, MASK)
    return _URL_IN_TEXT_RE.sub(lambda m: redact_url(m.group(0)), text)
