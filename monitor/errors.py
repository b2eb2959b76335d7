"""One tree of errors. Each mixes in the builtin a caller may already catch."""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error news-monitor raises on purpose."""


class ConfigError(MonitorError, ValueError):
    """A config file is missing, malformed or inconsistent.

    ``problems`` holds one ``file:line:column: message`` string per problem.
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class FeedError(MonitorError):
    """A feed could not be retrieved or understood."""


class RetrieveError(FeedError, OSError):
    """The HTTP retrieval of a feed failed (network, status, limits)."""


class ParseError(FeedError, ValueError):
    """The bytes of a feed could not be turned into items."""


class FeedUrlError(FeedError, ValueError):
    """A URL that cannot be a feed (not http or https, relative, no host...).

    ``url`` is the URL as a message may show it; ``reason`` says what is wrong.
    """

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class RuleSyntaxError(MonitorError, ValueError):
    """A watch-rule query does not parse. ``column`` is 1-based."""

    def __init__(self, message: str, column: int):
        self.message = message
        self.column = column
        super().__init__(f"column {column}: {message}")


class PolicyError(MonitorError, ValueError):
    """A noise-control setting (quiet hours, digest schedule, limits) is invalid."""


class StorageError(MonitorError):
    """The database failed, is not ours, or refused a change."""


class NotFoundError(StorageError, LookupError):
    """No stored feed, item or alert has that name or id."""


class ConflictError(StorageError, ValueError):
    """A change the database refuses: a name already taken, a feed the config governs."""


class DeliveryError(MonitorError):
    """A channel refused or failed to take an alert."""


class ControlError(MonitorError, OSError):
    """The running daemon could not be asked over its control socket, or its answer was unusable."""
