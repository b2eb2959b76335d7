"""Hide secrets in URLs (channels, feeds) and in text that may quote them (logs, errors).

Apprise URLs carry credentials in every part: user info (``mailtos://user:pass@host``),
the host and path (``slack://TOKEN_A/TOKEN_B/TOKEN_C/#chan``) and the query
(``?token=...``). Nothing here knows a plugin's grammar. A channel URL is shown
with :func:`redact_channel_url`: everything but the scheme, a host name, a port,
a user name, ``#channel``/``@user`` targets, e-mail addresses and descriptive
parameters (``to=``, ``format=``...) is hidden, however short or plain it looks
(``json://host/hooks/abc123`` is ``json://host/***/***``). Other URLs (feeds,
URLs quoted in text) go through :func:`redact_url`, which hides a password, the
value of a secret-sounding parameter and anything random enough to be a token.
A password holding ``#``, ``/``, ``?`` or ``@`` unencoded is hidden whole.

Logs: :func:`redact_log_line` hides every URL's secrets in a formatted line and,
in the lines of libraries (urllib3 logs a Slack webhook's path at DEBUG), every
secret of every channel built in this process (:func:`remember_secrets`).
Hiding too much in a log line is harmless; hiding too little is not.
"""

from __future__ import annotations

import re
import threading
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

# Query parameters of channel URLs that describe a delivery rather than unlock it: their
# values stay visible. Every other parameter of a channel URL is hidden.
DESCRIPTIVE_PARAMS = frozenset(
    {
        "to", "cc", "bcc", "from", "name", "format", "overflow", "mode", "smtp", "secure", "verify",
        "method", "footer", "image", "avatar", "priority", "tags", "lang", "emojis", "subject", "reply",
        "botname", "channel", "channels", "target", "targets", "color", "template", "rto", "cto", "port",
    }
)  # fmt: skip
_SCHEME_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*)://")
# A URL quoted in text ends before a space or quote, and before punctuation that ends
# the sentence around it ("...?token=x: HTTP 404" keeps its colon).
_URL_IN_TEXT_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,:;!?)\]}]")
# Dots and "@" mean a host name or an e-mail address; anything else may be a
# token, including a malformed one that apprise is about to quote in an error.
_TOKEN_CHARS_RE = re.compile(r"^[^\s.@/]+$")
# What may be shown of a channel URL's host: a dotted name, an IPv4 address, localhost.
_HOST_NAME_RE = re.compile(r"^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+\.?)$")
# Path segments of a channel URL that name where a message goes: #channel, @user, an e-mail address.
_TARGET_RE = re.compile(r"^(?:[#@][\w.-]+|[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)$")


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
    return (len(part) >= 8 and has_digit and has_alpha) or (len(part) >= 16 and mixed_case) or len(part) >= 32


def is_secret_param(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(word in lowered for word in SECRET_PARAM_WORDS)


def _mask_token(part: str) -> str:
    return part[:TOKEN_PREFIX] + ELLIPSIS


@dataclass(frozen=True)
class _Redaction:
    url: str
    secrets: tuple[str, ...]


def _split_userinfo(rest: str) -> tuple[str, str, str]:
    """(user info, "@" or "", the rest) of what follows ``scheme://``."""
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, authority_end)
    if at >= 0:
        return rest[:at], "@", rest[at + 1 :]
    # "user:pa#ss/word@host": a password with "/", "?" or "#" unencoded ends the
    # authority early, and apprise's error quotes the URL whole. The user info then
    # runs to the last "@" before the query (or the last "@" at all), hiding too
    # much rather than a piece of the password.
    colon = rest.find(":")
    if colon < 0 or any(c in rest[:colon] for c in "/?#@"):
        return "", "", rest
    query = rest.rfind("?")
    at = rest.rfind("@", colon, query) if query > colon else -1
    if at < 0:
        at = rest.rfind("@", colon)
    if at < 0:
        return "", "", rest
    return rest[:at], "@", rest[at + 1 :]


def _redact(url: str, *, strict: bool = False) -> _Redaction:
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

    def mask(part: str) -> str:
        """A channel URL's secret part: a token keeps its first characters, anything else is ***."""
        return _mask_token(part) if looks_like_token(unquote(part)) else MASK

    # Split by hand rather than with urlsplit: apprise URLs are not always
    # RFC-valid (``#`` channels, unquoted ``@`` in passwords) and the output
    # must keep the user's spelling apart from the hidden parts.
    userinfo, at, rest = _split_userinfo(rest)
    hash_sign = fragment = ""
    if not strict:  # in a channel URL "#" starts channel names, or is part of a token
        rest, hash_sign, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    hostport, slash, path = rest.partition("/")

    if at:
        user, colon, password = userinfo.partition(":")
        if looks_like_token(unquote(user)):
            user = hide(user, _mask_token(user))
        if colon:
            password = hide(password, MASK) if password else password
        userinfo = f"{user}{colon}{password}"
    if hostport.startswith("["):  # an IPv6 literal is never a secret
        pass
    elif strict:
        host, *ports = hostport.split(":")
        shown = [host if not host or _HOST_NAME_RE.match(host) else hide(host, mask(host))]
        shown += [port if port.isdigit() or not port else hide(port, mask(port)) for port in ports]
        hostport = ":".join(shown)
    else:
        # "host:port" normally, but some schemes put "id:token" here (tgram://).
        parts = hostport.split(":")
        hostport = ":".join(
            hide(part, _mask_token(part)) if looks_like_token(unquote(part)) else part for part in parts
        )

    segments = []
    for segment in path.split("/"):
        if strict and segment and not _TARGET_RE.match(unquote(segment)):
            segment = hide(segment, mask(segment))
        elif not strict and looks_like_token(unquote(segment)):
            segment = hide(segment, _mask_token(segment))
        segments.append(segment)

    pairs = []
    for pair in query.split("&") if query else []:
        name, equals, value = pair.partition("=")
        if strict and not (equals and _is_descriptive(name)):
            if equals:
                value = hide(value, MASK) if value else value
            elif name:
                name = hide(name, MASK)
        elif equals and value and is_secret_param(name):
            value = hide(value, MASK)
        pairs.append(f"{name}{equals}{value}")

    redacted = (
        f"{scheme}://{userinfo}{at}{hostport}{slash}{'/'.join(segments)}"
        f"{question}{'&'.join(pairs)}{hash_sign}{fragment}"
    )
    return _Redaction(redacted, tuple(secrets))


def _is_descriptive(name: str) -> bool:
    lowered = unquote(name).lower().lstrip("+-:")
    return lowered in DESCRIPTIVE_PARAMS and not is_secret_param(lowered)


def redact_url(url: str) -> str:
    """The URL with passwords, tokens and secret parameters hidden.

    >>> redact_url("mailtos://user:pass@smtp.example.org?to=me@example.org")
    'mailtos://user:***@smtp.example.org?to=me@example.org'
    >>> redact_url("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#chan")
    'slack://T1…/A1…/TI…/#chan'
    >>> redact_url("https://reader:pa#ss/word@news.example.org/feed?apikey=k1&page=2")
    'https://reader:***@news.example.org/feed?apikey=***&page=2'
    """
    return _redact(url).url


def redact_database_url(url: str) -> str:
    """A database URL as it may be shown: its password and secret parameters hidden, the rest kept
    (a host, user or database name is what a reader needs to tell databases apart).

    >>> redact_database_url("postgresql://news:s3cr@t@db.example.org:5432/monitor?sslmode=require&password=x")
    'postgresql://news:***@db.example.org:5432/monitor?sslmode=require&password=***'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    location, question, query = rest.partition("?")
    userinfo, at, hostpart = location.rpartition("@")  # the last "@": a password may hold one unencoded
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    pairs = []
    for pair in query.split("&") if query else []:
        name, equals, value = pair.partition("=")
        pairs.append(f"{name}={MASK}" if equals and value and is_secret_param(name) else pair)
    return f"{scheme}://{userinfo}{at}{hostpart}{question}{'&'.join(pairs)}"


def redact_channel_url(url: str) -> str:
    """A channel URL as it may be shown: only the scheme, host names, ports, user names,
    targets (``#channel``, ``@user``, e-mail addresses) and descriptive parameters are left.

    >>> redact_channel_url("json://127.0.0.1:8080/hooks/abc123?format=text")
    'json://127.0.0.1:8080/***/***?format=text'
    >>> redact_channel_url("slack://T000/B000/XXXX/#desk")
    'slack://***/***/***/#desk'
    >>> redact_channel_url("mailtos://user:pa#ss/word@example.com?to=me@example.org")
    'mailtos://user:***@example.com?to=me@example.org'
    """
    return _redact(url, strict=True).url


def channel_secrets(url: str) -> tuple[str, ...]:
    """What :func:`redact_channel_url` hides, raw and percent-decoded, for :func:`redact_text`."""
    return _spellings(_redact(url, strict=True).secrets)


def url_secrets(url: str) -> tuple[str, ...]:
    """The substrings of ``url`` that :func:`redact_url` hides, raw and percent-decoded.

    Feed them to :func:`redact_text` to scrub messages (apprise logs, exceptions)
    that might quote them in either spelling.
    """
    return _spellings(_redact(url).secrets)


def _spellings(secrets: Iterable[str]) -> tuple[str, ...]:
    found: list[str] = []
    for secret in secrets:
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


# --- logs ---------------------------------------------------------------------------

# Secrets of the channels built in this process. A library's log line may quote one
# in a form no URL pattern finds (urllib3: "POST /services/T000/B000/XXXX").
_REMEMBERED: set[str] = set()
_REMEMBERED_LOCK = threading.Lock()
# Loggers whose lines this code writes itself: they quote URLs only redacted, and
# their event names and fields must stay readable ("alerts" may be a webhook path).
OWN_LOGGERS = "monitor"


def remember_secrets(secrets: Iterable[str]) -> None:
    """Hide these strings from every library's log line from now on."""
    with _REMEMBERED_LOCK:
        _REMEMBERED.update(secret for secret in secrets if len(secret) >= MIN_SCRUB_LENGTH)


def remembered_secrets() -> tuple[str, ...]:
    with _REMEMBERED_LOCK:
        return tuple(_REMEMBERED)


def redact_log_line(line: str, logger: str) -> str:
    """A formatted log line with every URL redacted and, unless this code's own logger
    wrote it, every remembered secret hidden."""
    own = logger == OWN_LOGGERS or logger.startswith(OWN_LOGGERS + ".")
    return redact_text(line, () if own else remembered_secrets())
