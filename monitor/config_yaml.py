"""Config files read as YAML with the position of every node, so each problem names its line and column.

``${ENV_VAR}`` in a string is replaced by the variable's value as the file is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.config_problems import yaml_problem

__all__ = ["Located", "Position", "Problems", "load_yaml"]

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Position = tuple[int, int]  # 1-based line and column


@dataclass
class Located:
    """A YAML document as plain data plus the position of every node."""

    data: Any
    positions: dict[tuple[Any, ...], Position]
    scalar_styles: dict[tuple[Any, ...], str | None]
    key_positions: dict[tuple[Any, ...], Position] = field(default_factory=dict)

    def position(self, path: tuple[Any, ...]) -> Position:
        # Fall back to the nearest ancestor that has a position.
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, (1, 1))


class Problems:
    """Every problem of one load, as ``file:line:column: message`` lines."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, file: Path, position: Position, message: str) -> None:
        self.items.append(f"{file}:{position[0]}:{position[1]}: {message}")


def load_yaml(path: Path, problems: Problems, environ: dict[str, str]) -> Located | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Located({}, {}, {})
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(path, (1, 1), f"cannot read file: {exc}")
        return None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        problems.add(path, *yaml_problem(exc, text))
        return None
    located = Located(None, {}, {})
    if root is None:
        located.data = {}
        return located
    located.data = _convert(root, (), located, path, problems, environ)
    return located


def _convert(
    node: yaml.Node,
    path: tuple[Any, ...],
    located: Located,
    file: Path,
    problems: Problems,
    environ: dict[str, str],
) -> Any:
    located.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(" ").construct_object(key_node, deep=True)
            key_position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            located.key_positions[(*path, key)] = key_position
            if key in result:
                problems.add(file, key_position, f"duplicate key {key!r}")
            result[key] = _convert(value_node, (*path, key), located, file, problems, environ)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(child, (*path, index), located, file, problems, environ) for index, child in enumerate(node.value)
        ]
    located.scalar_styles[path] = node.style
    value = yaml.SafeLoader(" ").construct_object(node)
    if isinstance(value, str):
        value = _substitute_env(value, environ, lambda message: problems.add(file, located.positions[path], message))
    return value


def _substitute_env(value: str, environ: dict[str, str], report: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            report(f"environment variable {name} is not set (used as ${{{name}}})")
            return ""
        return environ[name]

    return _ENV_VAR.sub(replace, value)
