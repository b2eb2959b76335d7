"""Checks across a config's values, once their shapes are valid.

Duplicate names, channels that do not exist, listeners off loopback without
consent, intervals out of order, and whether each rule is a query or a spike
with the keys of its kind. Each problem is added to ``problems`` at its
``file:line:column``; :func:`monitor.config.load_config` reports them all.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config_yaml import Located, Problems
from monitor.durations import format_duration
from monitor.items import KnownEntity
from monitor.listening import is_loopback

if TYPE_CHECKING:
    from monitor.config import EntitiesFile, MonitorSettings, RuleConfig


def check_settings(
    settings: MonitorSettings, channels: set[str], located: Located, file: Path, problems: Problems
) -> None:
    """Feed names unique, admin_channel a channel, listeners on loopback unless allowed, intervals in order."""
    seen: set[str] = set()
    for index, feed in enumerate(settings.feeds):
        if feed.name in seen:
            problems.add(file, located.position(("feeds", index, "name")), f"duplicate feed name {feed.name!r}")
        seen.add(feed.name)
    if settings.admin_channel and settings.admin_channel not in channels:
        problems.add(
            file, located.position(("admin_channel",)), f"admin_channel {settings.admin_channel!r} is not a channel"
        )
    if settings.health.enabled and not settings.health.allow_remote and not is_loopback(settings.health.host):
        problems.add(
            file,
            located.position(("health", "host")),
            f"health.host {settings.health.host!r} is not a loopback address; the endpoint has no "
            "authentication: set health.allow_remote: true if that is what you want",
        )
    websub = settings.websub
    if websub.model_fields_set and websub.enabled and websub.callback is None:
        problems.add(
            file,
            located.position(("websub",)),
            "websub.callback is required: the public https URL that hubs call (or set websub.enabled: false)",
        )
    if websub.active and not websub.allow_remote and not is_loopback(websub.host):
        problems.add(
            file,
            located.position(("websub", "listen")),
            f"websub.listen {websub.listen!r} is not a loopback address; put a reverse proxy in front of it, "
            "or set websub.allow_remote: true if that is what you want",
        )
    if settings.delivery.retry_initial > settings.delivery.retry_max:
        problems.add(
            file, located.position(("delivery", "retry_initial")), "delivery.retry_initial is above delivery.retry_max"
        )
    if settings.poll.min_interval > settings.poll.max_interval:
        problems.add(file, located.position(("poll", "min_interval")), "poll.min_interval is above poll.max_interval")
    if settings.poll.max_error_interval < settings.poll.max_interval:
        problems.add(
            file,
            located.position(("poll", "max_error_interval")),
            "poll.max_error_interval is below poll.max_interval; a failing feed may wait longer than a quiet one, "
            "not less",
        )


def check_entities(
    entities_file: EntitiesFile, located: Located, file: Path, problems: Problems
) -> tuple[KnownEntity, ...]:
    owner: dict[str, str] = {}
    for index, entity in enumerate(entities_file.entities):
        for alias in (entity.name, *entity.aliases):
            key = alias.casefold()
            if key in owner and owner[key] != entity.name:
                problems.add(
                    file,
                    located.position(("entities", index)),
                    f"{alias!r} names both {owner[key]!r} and {entity.name!r}",
                )
            owner[key] = entity.name
    return tuple(KnownEntity(e.name, e.type, tuple(e.aliases)) for e in entities_file.entities)


def check_rule(
    index: int,
    rule: RuleConfig,
    all_rules: tuple[RuleConfig, ...],
    channels: set[str] | None,
    located: Located,
    file: Path,
    problems: Problems,
) -> None:
    if any(other.name == rule.name for other in all_rules[:index]):
        problems.add(file, located.position(("rules", index, "name")), f"duplicate rule name {rule.name!r}")
    check_rule_kind(index, rule, located, file, problems)
    if channels is not None:
        for position_index, channel in enumerate(rule.notify):
            if channel not in channels:
                known = ", ".join(sorted(channels))
                problems.add(
                    file,
                    located.position(("rules", index, "notify", position_index)),
                    f"rule {rule.name!r} notifies unknown channel {channel!r} (known: {known})",
                )


def check_rule_kind(index: int, rule: RuleConfig, located: Located, file: Path, problems: Problems) -> None:
    """A rule is a query (an alert per story) or a spike (an alert per surge): exactly one, with its own keys."""
    if rule.query is not None and rule.spike is not None:
        problems.add(
            file,
            located.position(("rules", index, "spike")),
            f"rule {rule.name!r}: has both query: and spike:; a rule alerts on each matching story (query:) "
            "or on a surge of them (spike:), so make it two rules",
        )
        return
    if rule.query is None and rule.spike is None:
        problems.add(
            file,
            located.position(("rules", index)),
            f"rule {rule.name!r}: needs a query: (an alert on each matching story) or a spike: (an alert when "
            "its stories surge)",
        )
        return
    if rule.query is not None:
        for key in rule.SURGE_KEYS:
            if getattr(rule, key) is not None:
                problems.add(
                    file,
                    located.key_positions.get(("rules", index, key)) or located.position(("rules", index, key)),
                    f"rule {rule.name!r}: {key}: belongs to a spike: rule (a surge alert); this rule has a query:",
                )
        return
    window, baseline = rule.surge_setting("window"), rule.surge_setting("baseline")
    if window < timedelta(minutes=1):
        problems.add(
            file,
            located.position(("rules", index, "window")),
            f"rule {rule.name!r}: window ({format_duration(window)}) is shorter than a minute; feeds are polled "
            "every few minutes, so use 10m or more",
        )
    elif baseline > rule.MAX_SURGE_BASELINE:
        problems.add(
            file,
            located.position(("rules", index, "baseline")),
            f"rule {rule.name!r}: baseline ({format_duration(baseline)}) is longer than "
            f"{format_duration(rule.MAX_SURGE_BASELINE)}; every check reads the matching stories of the baseline",
        )
    elif window >= baseline:
        key = "baseline" if rule.baseline is not None else "window"
        problems.add(
            file,
            located.position(("rules", index, key)),
            f"rule {rule.name!r}: window ({format_duration(window)}) must be shorter than baseline "
            f"({format_duration(baseline)}): the usual rate is measured over the baseline, in windows",
        )
    elif baseline / window > 100_000:
        problems.add(
            file,
            located.position(("rules", index, "baseline")),
            f"rule {rule.name!r}: baseline ({format_duration(baseline)}) is more than 100,000 windows of "
            f"{format_duration(window)}; use a longer window or a shorter baseline",
        )
