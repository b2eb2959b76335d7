"""Typed configuration loaded from the three YAML files of a config directory.

``monitor.yaml`` holds settings, channels and feeds, ``rules.yaml`` the watch
rules and ``entities.yaml`` the known entities. Every problem is reported as
``file:line:column: message`` and all problems of a load are reported
together, so one ``news-monitor check`` shows everything to fix.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from monitor.config_checks import check_entities, check_rule, check_settings
from monitor.config_problems import shown, validation_problems
from monitor.config_yaml import Located, Position, Problems, load_yaml
from monitor.database_url import parse_database
from monitor.durations import parse_duration
from monitor.errors import ConfigError, FeedUrlError
from monitor.feeds.urls import check_feed_url
from monitor.items import FeedSpec, KnownEntity
from monitor.listening import is_loopback
from monitor.wording import plural

MONITOR_FILE = "monitor.yaml"
RULES_FILE = "rules.yaml"
ENTITIES_FILE = "entities.yaml"
CONSOLE_CHANNEL = "console"
DATABASE_ENV = "NEWS_MONITOR_DATABASE"

_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
_SIZE_BYTES = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def parse_size(value: Any) -> int:
    """``1048576``, ``"512KiB"``, ``"10MiB"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(str(value)) if not isinstance(value, (bool, list, dict)) else None
        if not match:
            raise ValueError(f"expected a size like 10MiB or 512KiB, got {shown(value)}")
        size = int(match.group(1)) * _SIZE_BYTES[(match.group(2) or "b").lower()]
    if size <= 0:
        raise ValueError(f"expected a size above zero, like 10MiB or 512KiB, got {shown(value)}")
    return size


def _duration(value: Any) -> timedelta:
    """A config duration; what was expected and what was found when it is not one."""
    try:
        return parse_duration(value)
    except ValueError:
        zero = isinstance(value, (int, float, str)) and re.match(r"^\s*(-|0+(\.0*)?\s*[a-z]*\s*$)", str(value))
        above = " above zero," if zero else ""
        raise ValueError(f"expected a duration{above} like 30s, 10m, 6h or 1d, got {shown(value)}") from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollSettings(_Strict):
    default_interval: Duration = timedelta(minutes=10)
    min_interval: Duration = timedelta(minutes=2)
    max_interval: Duration = timedelta(hours=1)  # the longest a healthy feed waits, however quiet
    max_error_interval: Duration = timedelta(hours=6)  # the longest error backoff of a failing feed
    concurrency: int = Field(default=32, ge=1, le=1024)
    per_host: int = Field(default=4, ge=1, le=64)  # requests in flight to one host at a time
    timeout: Duration = timedelta(seconds=30)
    max_bytes: Size = 10 * 1024 * 1024
    # A feed whose parsing takes longer fails, and its parser process is replaced.
    parse_timeout: Duration = timedelta(seconds=20)
    # Of each item's text stored (titles: 1,000); the rest is cut, marked with an ellipsis.
    max_text_chars: int = Field(default=100_000, ge=1_000, le=10_000_000)
    # Feeds at this machine's or a private network's addresses: true allows them, false refuses them all;
    # unset allows them only for the feeds of monitor.yaml (not for feeds added from the CLI or an OPML
    # file, nor for a redirect to another host). Checked when connecting, on the resolved addresses.
    allow_private: bool | None = None


class NlpSettings(_Strict):
    model: str = "en_core_web_sm"
    batch_size: int = Field(default=64, ge=1)
    max_chars: int = Field(default=20_000, ge=1000)  # of each body the model reads; names are found in all of it


class DeliverySettings(_Strict):
    interval: Duration = timedelta(seconds=10)
    retry_initial: Duration = timedelta(seconds=30)
    retry_max: Duration = timedelta(hours=1)
    retry_window: Duration = timedelta(hours=24)
    # The longest one send may take (apprise's pacing included); beyond it the send counts as failed.
    send_timeout: Duration = timedelta(seconds=30)


class RetentionSettings(_Strict):
    """How long to keep things; null keeps forever. Matched items live as long as their matches."""

    items: Duration | None = timedelta(days=90)
    matches: Duration | None = timedelta(days=365)
    alerts: Duration | None = timedelta(days=365)


class HealthSettings(_Strict):
    """The optional /healthz and /metrics endpoint (off by default; no authentication)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)
    allow_remote: bool = False  # listen on a non-loopback address: anyone who reaches it may read it


WEB_TOKEN_MIN_CHARS = 16


class WebSettings(_Strict):
    """The web dashboard (see monitor/web/): on by default, on loopback only.

    Bound to any other address it needs ``allow_remote: true`` and a token in
    the environment variable ``token_env``; with a token set, every page asks
    for it (HTTP Basic password or ``Authorization: Bearer``).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8750, ge=0, le=65535)
    allow_remote: bool = False
    token_env: str = Field(default="NEWS_MONITOR_WEB_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def web_bind_problem(host: str, allow_remote: bool, token_env: str, environ: dict[str, str]) -> str | None:
    """Why the dashboard may not listen on ``host`` (one line), or None when it may."""
    if is_loopback(host):
        return None
    if not allow_remote:
        return (
            f"web.host {host!r} is not a loopback address and the dashboard would be open to the network: "
            f"set web.allow_remote: true and put a token of {WEB_TOKEN_MIN_CHARS}+ characters in ${token_env}"
        )
    token = environ.get(token_env, "")
    if len(token) < WEB_TOKEN_MIN_CHARS:
        state = "is not set" if not token else f"is shorter than {WEB_TOKEN_MIN_CHARS} characters"
        return (
            f"web.host {host!r} is not a loopback address and ${token_env} {state}: the dashboard refuses "
            "to listen there without a token (every page would then ask for it)"
        )
    return None


class WebSubSettings(_Strict):
    """Push from WebSub hubs (see monitor/feeds/websub.py): on when ``callback`` is set.

    Hubs call ``callback`` (a public https URL, one path segment per
    subscription added); a reverse proxy terminating TLS passes those requests
    on to ``listen``, where the daemon answers them.
    """

    enabled: bool = True
    callback: str | None = None
    listen: str = "127.0.0.1:8751"  # host:port of the callback server
    lease: Duration = timedelta(days=7)  # asked of each hub, which has the last word
    allow_remote: bool = False  # listen on a non-loopback address rather than behind a local proxy

    @property
    def active(self) -> bool:
        return self.enabled and self.callback is not None

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return _split_listen(self.listen)[1]

    @field_validator("callback")
    @classmethod
    def _public_https(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not re.match(r"^https://[^/\s?#]+(/[^\s?#]*)?$", url, re.IGNORECASE):
            raise ValueError(f"callback must be an https:// URL without query or fragment, got {url!r}")
        return url

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        _split_listen(listen)
        return listen

    @field_validator("lease")
    @classmethod
    def _lease_bounds(cls, lease: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= lease <= timedelta(days=365):
            raise ValueError("lease must be between 1m and 365d")
        return lease


def _split_listen(listen: str) -> tuple[str, int]:
    """``127.0.0.1:8751`` or ``[::1]:8751`` -> host and port."""
    match = re.match(r"^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:\[\]]+)):(\d{1,5})$", listen.strip())
    if not match or int(match.group(3)) > 65535:
        raise ValueError(f"expected host:port (for example 127.0.0.1:8751), got {listen!r}")
    return match.group(1) or match.group(2), int(match.group(3))


class FeedHealthSettings(_Strict):
    """When the admin channel hears about a feed (see monitor/feeds/health.py)."""

    failing_after: Duration = timedelta(hours=6)  # every poll failed for this long
    silence_factor: float = Field(default=4.0, ge=1)  # quiet for this many of its usual gaps...
    min_silence: Duration = timedelta(days=1)  # ...and at least this long


class StorySettings(_Strict):
    """When two items are one story (see monitor/stories.py)."""

    threshold: float = Field(default=0.45, gt=0, le=1)  # estimated word overlap of two texts
    window: Duration = timedelta(days=3)  # how far back a new item looks for its story


class ChannelConfig(_Strict):
    url: str
    format: Literal["text", "markdown", "html"] | None = None
    template: Path | None = None  # a Jinja2 file of the channel's own, relative to the config directory
    # Slack webhooks only: where apprise posts them instead of https://hooks.slack.com/services
    # (a local receiver to try Slack delivery without Slack; a proxy).
    webhook_base: str | None = None

    @field_validator("webhook_base")
    @classmethod
    def _webhook_base(cls, base: str | None) -> str | None:
        if base is not None and not base.lower().startswith(("http://", "https://")):
            raise ValueError("webhook_base must be an http:// or https:// URL")
        return base.rstrip("/") if base else base


class FeedConfig(_Strict):
    name: str = Field(min_length=1)
    url: str
    interval: Duration | None = None
    alert_first_fetch: bool = False
    tags: tuple[str, ...] = ()

    @field_validator("url")
    @classmethod
    def _feed_url(cls, url: str) -> str:
        # The rule every way in shares (feeds add, OPML import, discovery, redirects).
        try:
            return check_feed_url(url)
        except FeedUrlError as exc:
            raise ValueError(f"feed URL {exc}") from None


class MonitorSettings(_Strict):
    database: Path | str = Path("var/news-monitor.db")  # a SQLite file, or a postgresql:// URL (database_url.py)
    control_socket: Path | None = None  # the daemon's local control socket; default: beside the database, .sock
    poll: PollSettings = PollSettings()
    nlp: NlpSettings = NlpSettings()
    delivery: DeliverySettings = DeliverySettings()
    retention: RetentionSettings = RetentionSettings()
    health: HealthSettings = HealthSettings()
    web: WebSettings = WebSettings()
    websub: WebSubSettings = WebSubSettings()
    stories: StorySettings = StorySettings()
    feed_health: FeedHealthSettings = FeedHealthSettings()
    admin_channel: str | None = None
    display_timezone: str = "UTC"  # the IANA zone times are shown in, in alerts and digests
    channels: dict[str, ChannelConfig] = {}
    feeds: tuple[FeedConfig, ...] = ()

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: Any) -> Any:
        return parse_database(value) if isinstance(value, str | Path) else value

    @field_validator("display_timezone")
    @classmethod
    def _iana_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            near = difflib.get_close_matches(name[:100], sorted(available_timezones()), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(
                f"unknown time zone {name!r} (expected an IANA name such as Europe/Berlin or UTC){hint}"
            ) from None
        return name


SURGE_KEYS = ("window", "baseline", "factor", "min_count")
# A spike: rule's defaults: a story rate four times the last week's usual hourly rate, five stories at least.
MAX_SURGE_BASELINE = timedelta(days=90)
SURGE_DEFAULTS = {"window": timedelta(hours=1), "baseline": timedelta(days=7), "factor": 4.0, "min_count": 5}


class RuleConfig(_Strict):
    """A watch rule: ``query:`` alerts on each matching story; ``spike:`` alerts when its stories surge."""

    SURGE_KEYS: ClassVar[tuple[str, ...]] = SURGE_KEYS  # the keys only a spike: rule takes
    MAX_SURGE_BASELINE: ClassVar[timedelta] = MAX_SURGE_BASELINE

    name: str = Field(min_length=1)
    query: str | None = Field(default=None, min_length=1)
    spike: str | None = Field(default=None, min_length=1)  # a query whose new stories per window are watched
    window: Duration | None = None  # spike: count the stories that surfaced in this window...
    baseline: Duration | None = None  # ...against the usual rate per window over this period before it
    factor: float | None = Field(default=None, ge=1, le=1000)  # fire at this many times the usual rate
    min_count: int | None = Field(default=None, ge=1, le=100_000)  # and at least this many stories
    notify: tuple[str, ...] = Field(min_length=1)
    mode: Literal["instant", "digest"] = "instant"
    schedule: str | None = None  # crontab text for digests, e.g. "0 8 * * 1-5"
    timezone: str = "UTC"  # of the schedule
    cooldown: Duration | None = None  # at most one alert per story per this long
    max_per_hour: int | None = Field(default=None, ge=1)  # the overflow waits for the next digest
    quiet_hours: str | None = None  # e.g. "22:00-07:00 Europe/Paris": held, then sent as one digest

    @property
    def text(self) -> str:
        """The rule's query, whichever key holds it."""
        return self.spike if self.spike is not None else self.query or ""

    @property
    def text_key(self) -> str:
        return "spike" if self.spike is not None else "query"

    def surge_setting(self, key: str) -> Any:
        """A spike rule's ``window``, ``baseline``, ``factor`` or ``min_count``, its default when not set."""
        value = getattr(self, key)
        return SURGE_DEFAULTS[key] if value is None else value


class RulesFile(_Strict):
    rules: tuple[RuleConfig, ...] = ()


class EntityConfig(_Strict):
    name: str = Field(min_length=1)
    type: str = Field(pattern=r"^[A-Z_]+$")
    aliases: tuple[str, ...] = ()


class EntitiesFile(_Strict):
    entities: tuple[EntityConfig, ...] = ()


@dataclass(frozen=True)
class Config:
    """Everything loaded from one config directory, validated as a whole."""

    directory: Path
    settings: MonitorSettings
    rules: tuple[RuleConfig, ...]
    entities: tuple[KnownEntity, ...]
    rule_positions: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False)
    documents: dict[str, Located] = field(default_factory=dict, compare=False, repr=False)

    def where(self, file: str, path: tuple[Any, ...], *, column: int | None = None) -> str:
        """``file:line:column`` of a node of one of the config files (e.g. ``("rules", 2, "query")``).

        ``column`` is a column inside that node's text (a rule query's), counted from 1.
        """
        located = self.documents.get(file)
        position = (1, 1) if located is None else located.position(path)
        if located is not None and column is not None:
            position = _query_position(located, path, column)
        return f"{self.directory / file}:{position[0]}:{position[1]}"

    @property
    def channel_names(self) -> list[str]:
        return [CONSOLE_CHANNEL, *self.settings.channels]

    def channel_url(self, name: str) -> str:
        if name == CONSOLE_CHANNEL and name not in self.settings.channels:
            return CONSOLE_CHANNEL
        return self.settings.channels[name].url

    def channel_format(self, name: str) -> str | None:
        channel = self.settings.channels.get(name)
        return channel.format if channel else None

    def channel_webhook_base(self, name: str) -> str | None:
        channel = self.settings.channels.get(name)
        return channel.webhook_base if channel else None

    def channel_template(self, name: str) -> Path | None:
        channel = self.settings.channels.get(name)
        if channel is None or channel.template is None:
            return None
        return self.directory / channel.template

    def feed_specs(self) -> list[FeedSpec]:
        return [
            FeedSpec(feed.name, feed.url, feed.interval, tuple(feed.tags), feed.alert_first_fetch)
            for feed in self.settings.feeds
        ]

    def feed(self, name: str) -> FeedConfig | None:
        return next((f for f in self.settings.feeds if f.name == name), None)

    def summary(self) -> str:
        return (
            f"{plural(len(self.settings.feeds), 'feed')}, {plural(len(self.rules), 'rule')}, "
            f"{plural(len(self.channel_names), 'channel')}, {plural(len(self.entities), 'entity', 'entities')}"
        )


# --- validation --------------------------------------------------------------


def _validate(model: type[BaseModel], located: Located, file: Path, problems: Problems) -> Any:
    try:
        return model.model_validate(located.data)
    except ValidationError as exc:
        found = []
        for problem in validation_problems(exc.errors(), located.data, model):
            key_position = located.key_positions.get(problem.loc) if problem.at_key else None
            found.append((key_position or located.position(problem.loc), problem.message))
        for position, message in sorted(found, key=lambda each: each[0]):  # in the order of the file
            problems.add(file, position, message)
        return None


def _query_position(located: Located, path: tuple[Any, ...], column: int) -> Position:
    """Where column ``column`` of a rule query sits in the file.

    Exact for plain and single-line quoted scalars; for block scalars we
    point at the start of the value.
    """
    line, start = located.position(path)
    style = located.scalar_styles.get(path)
    if style in (None, "'", '"'):
        offset = 1 if style else 0
        return line, start + offset + column - 1
    return line, start


def load_config(directory: Path | str, environ: dict[str, str] | None = None) -> Config:
    """Load and validate a config directory's shapes; raise ConfigError listing every problem.

    What the values mean at run time (rule queries, pacing, channel URLs and
    templates) is checked when they are assembled: see :mod:`monitor.assembly`.
    """
    directory = Path(directory)
    environ = dict(os.environ if environ is None else environ)
    problems = Problems()
    monitor_path = directory / MONITOR_FILE
    rules_path = directory / RULES_FILE
    entities_path = directory / ENTITIES_FILE
    if not monitor_path.exists():
        raise ConfigError([f"{monitor_path}:1:1: file not found (is --config pointing at the config directory?)"])

    monitor_doc = load_yaml(monitor_path, problems, environ)
    rules_doc = load_yaml(rules_path, problems, environ)
    entities_doc = load_yaml(entities_path, problems, environ)
    settings = _validate(MonitorSettings, monitor_doc, monitor_path, problems) if monitor_doc else None
    rules_file = _validate(RulesFile, rules_doc, rules_path, problems) if rules_doc else None
    entities_file = _validate(EntitiesFile, entities_doc, entities_path, problems) if entities_doc else None

    if settings is not None and monitor_doc is not None:
        check_settings(settings, {*settings.channels, CONSOLE_CHANNEL}, monitor_doc, monitor_path, problems)
        web = settings.web
        web_problem = web.enabled and web_bind_problem(web.host, web.allow_remote, web.token_env, environ)
        if web_problem:
            problems.add(monitor_path, monitor_doc.position(("web", "host")), web_problem)
    entities: tuple[KnownEntity, ...] = ()
    if entities_file is not None and entities_doc is not None:
        entities = check_entities(entities_file, entities_doc, entities_path, problems)
    rule_positions: dict[str, Position] = {}
    if rules_file is not None and rules_doc is not None:
        channels = set(settings.channels) | {CONSOLE_CHANNEL} if settings else None
        for index, rule in enumerate(rules_file.rules):
            rule_positions[rule.name] = rules_doc.position(("rules", index))
            check_rule(index, rule, rules_file.rules, channels, rules_doc, rules_path, problems)

    if problems.items:
        raise ConfigError(problems.items)
    assert settings is not None and rules_file is not None
    if environ.get(DATABASE_ENV):
        # Lets a service unit put the state where it belongs without editing the config.
        try:
            database = parse_database(environ[DATABASE_ENV])
        except ValueError as exc:
            raise ConfigError([f"{DATABASE_ENV}: {exc}"]) from None
        settings = settings.model_copy(update={"database": database})
    documents = {
        name: doc
        for name, doc in ((MONITOR_FILE, monitor_doc), (RULES_FILE, rules_doc), (ENTITIES_FILE, entities_doc))
        if doc is not None
    }
    return Config(directory, settings, rules_file.rules, entities, rule_positions, documents)


def no_rules_warning(config: Config) -> str | None:
    """``file: warning: ...`` when the config has no watch rule, so nothing will ever alert."""
    if config.rules:
        return None
    path = config.directory / RULES_FILE
    missing = "" if path.exists() else "file not found, so "
    return f"{path}: warning: {missing}no rules: nothing will ever alert; see README 'Watch rules'"
