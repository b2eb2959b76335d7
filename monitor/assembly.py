"""Everything a config means at run time, built once: the rulebook, the pacing, the channels.

    load_config (shapes, file positions) -> assemble -> Setup
        rulebook: each rule compiled once, indexed, with its RulePlan (channels + pacing)
        channels: each channel's sender, message kind and renderer, settled here

The daemon, a reload and ``check`` all go through :func:`load_setup`, so what
``check`` accepts is exactly what the daemon runs. Problems are reported as
``file:line:column: message``, every one of them at once, like the config's own.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.alerts.channels import Channel, ChannelURLError
from monitor.alerts.pacing import RulePolicy
from monitor.alerts.render import Renderer, check_template, kind_for_url
from monitor.alerts.wallclock import QuietHours
from monitor.config import ENTITIES_FILE, MONITOR_FILE, RULES_FILE, SURGE_KEYS, Config, RuleConfig, load_config
from monitor.decide import RulePlan
from monitor.errors import ConfigError, PolicyError, RuleSyntaxError
from monitor.items import ENTITY_LABELS
from monitor.rules.document import Document, Hit, Lexicon
from monitor.rules.evaluate import CompiledRule, compile_rule
from monitor.rules.index import RuleIndex
from monitor.rules.surge import SurgeSpec


@dataclass(frozen=True)
class Rulebook:
    """The rules of one config, compiled once and indexed, with what becomes of their matches."""

    rules: dict[str, RuleConfig]
    compiled: dict[str, CompiledRule]
    plans: dict[str, RulePlan]
    lexicon: Lexicon
    index: RuleIndex
    surges: dict[str, SurgePlan] = field(default_factory=dict)  # the spike: rules

    def match(self, document: Document) -> list[tuple[CompiledRule, list[Hit]]]:
        return self.index.match(document)


@dataclass(frozen=True)
class SurgePlan:
    """A spike: rule: what makes a surge, and the channels its surge alerts go to.

    Its matches are stored like any rule's, but alert nobody one by one: its
    RulePlan has no channels, and only a surge (:mod:`monitor.surges`) notifies.
    """

    spec: SurgeSpec
    channels: tuple[str, ...]


@dataclass(frozen=True)
class ChannelSetup:
    """A channel ready to send: its sender, and the message kind and renderer fixed for it."""

    name: str
    url: str
    kind: str
    renderer: Renderer = field(compare=False)
    sender: Channel = field(compare=False)


@dataclass(frozen=True)
class Setup:
    config: Config
    rulebook: Rulebook
    channels: dict[str, ChannelSetup]

    def policy(self, rule: str) -> RulePolicy:
        """How the rule's alerts are paced now; a rule gone from the config sends as it is."""
        plan = self.rulebook.plans.get(rule)
        return plan.policy if plan else RulePolicy()


def load_setup(directory: Path | str, *, channels: bool = True) -> Setup:
    """Load, validate and assemble a config directory; ConfigError lists every problem."""
    return assemble(load_config(directory), channels=channels)


def assemble(config: Config, *, channels: bool = True) -> Setup:
    """The setup of ``config``; ``channels=False`` leaves the channels to :func:`build_channels`.

    Building channels loads every apprise plugin (a third of a second): ``poll --once`` builds
    them while its feeds are being fetched, and checks them before it sends anything.
    """
    problems: list[str] = []
    _check_entity_types(config, problems)
    rulebook = _rulebook(config, problems)
    built = _channels(config, problems) if channels else {}
    if problems:
        raise ConfigError(problems)
    return Setup(config, rulebook, built)


def build_channels(config: Config) -> dict[str, ChannelSetup]:
    """The channels of ``config``, ready to send; ConfigError lists every channel problem."""
    problems: list[str] = []
    built = _channels(config, problems)
    if problems:
        raise ConfigError(problems)
    return built


def rule_policy(rule: RuleConfig) -> RulePolicy:
    """The pacing of a rule's alerts; raises PolicyError for a bad schedule or zone."""
    return RulePolicy(
        mode=rule.mode,
        digest_cron=rule.schedule,
        digest_timezone=rule.timezone,
        cooldown=rule.cooldown,
        max_per_hour=rule.max_per_hour,
        quiet_hours=QuietHours.parse(rule.quiet_hours) if rule.quiet_hours else None,
    )


def _check_entity_types(config: Config, problems: list[str]) -> None:
    """A known entity of a type the model never produces would never be linked: say so, and what was meant."""
    for index, entity in enumerate(config.entities):
        if entity.type in ENTITY_LABELS:
            continue
        near = difflib.get_close_matches(entity.type, sorted(ENTITY_LABELS), n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        where = config.where(ENTITIES_FILE, ("entities", index, "type"))
        problems.append(
            f"{where}: entity {entity.name!r}: unknown type {entity.type!r}; {hint}"
            f"the types are {', '.join(sorted(ENTITY_LABELS))}"
        )


def _rulebook(config: Config, problems: list[str]) -> Rulebook:
    lexicon = Lexicon.from_entities(config.entities)
    compiled: dict[str, CompiledRule] = {}
    plans: dict[str, RulePlan] = {}
    surges: dict[str, SurgePlan] = {}
    for index, rule in enumerate(config.rules):
        try:
            compiled[rule.name] = compile_rule(rule.name, rule.text, lexicon)
        except RuleSyntaxError as exc:
            where = config.where(RULES_FILE, ("rules", index, rule.text_key), column=exc.column)
            problems.append(f"{where}: rule {rule.name!r}: {exc.message}")
        if rule.spike is not None:
            spec = SurgeSpec(*(rule.surge_setting(key) for key in SURGE_KEYS), cooldown=rule.cooldown)
            surges[rule.name] = SurgePlan(spec, tuple(rule.notify))
        try:
            channels = () if rule.spike is not None else tuple(rule.notify)
            plans[rule.name] = RulePlan(channels, rule_policy(rule))
        except PolicyError as exc:
            problems.append(f"{config.where(RULES_FILE, ('rules', index))}: rule {rule.name!r}: {exc}")
    return Rulebook(
        {rule.name: rule for rule in config.rules},
        compiled,
        plans,
        lexicon,
        RuleIndex(list(compiled.values()), lexicon),
        surges,
    )


def _channels(config: Config, problems: list[str]) -> dict[str, ChannelSetup]:
    built: dict[str, ChannelSetup] = {}
    for name in config.channel_names:
        url = config.channel_url(name)
        kind = kind_for_url(url, config.channel_format(name))
        template = config.channel_template(name)
        if template is not None:
            where = config.where(MONITOR_FILE, ("channels", name, "template"))
            error = f"template file {template} not found" if not template.is_file() else check_template(template, kind)
            if error:
                problems.append(f"{where}: channel {name!r}: {error}")
                continue
        try:
            sender = Channel(name, url, webhook_base=config.channel_webhook_base(name))
        except ChannelURLError as exc:
            field = "webhook_base" if exc.field == "webhook_base" else "url"
            problems.append(f"{config.where(MONITOR_FILE, ('channels', name, field))}: channel {name!r}: {exc}")
            continue
        zone = ZoneInfo(config.settings.display_timezone)  # checked by the config
        built[name] = ChannelSetup(name, url, kind, Renderer(template=template, zone=zone), sender)
    return built
