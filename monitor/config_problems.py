"""Config problems in the product's words: validation errors and YAML syntax errors. Pure.

A validation error names the rule, feed, channel or entity it is about (by its
``name:``, else by its number counted from 1), says what was expected and what
was found, and for an unknown key suggests the nearest allowed one. A YAML
syntax error is placed where the problem starts (the opening quote or bracket
that is never closed), not where the parser gave up.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

Loc = tuple[Any, ...]
Position = tuple[int, int]  # 1-based line and column

# Lists whose items have a name, and mappings whose keys are names: a problem inside one names the item.
_NAMED_LISTS = {"rules": "rule", "feeds": "feed", "entities": "entity"}
_NAMED_MAPPINGS = {"channels": "channel"}
# What each file holds at its top, said when the file holds something else.
_ROOT_SHAPES = {
    "RulesFile": "a mapping with a `rules:` list",
    "EntitiesFile": "a mapping with an `entities:` list",
    "MonitorSettings": "a mapping of settings (database:, channels:, feeds:, ...)",
}
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class Problem:
    """Where a problem is (the node's path, or the key's when ``at_key``) and what to say."""

    loc: Loc
    message: str
    at_key: bool = False


def shown(value: Any) -> str:
    """A value as a problem message quotes it: text quoted and cut short, containers by kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "an empty value"
    if isinstance(value, str):
        return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…")
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def validation_problems(errors: list[dict[str, Any]], data: Any, model: type[BaseModel]) -> list[Problem]:
    """Pydantic's errors for ``data`` validated as ``model``, each in the product's words."""
    unknown: dict[Loc, str] = {}
    suggested: set[Loc] = set()  # a missing key an unknown key next to it was probably meant to be
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc = tuple(error["loc"])
            unknown[loc], near = _unknown_key(loc[-1], _allowed_keys(model, loc[:-1]))
            suggested.update((*loc[:-1], key) for key in near)
    problems: list[Problem] = []
    for error in errors:
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            problems.append(Problem(loc, _phrase(loc[:-1], data, unknown[loc]), at_key=True))
            continue
        if kind == "missing":
            if loc in suggested:
                continue  # the unknown key's "did you mean" says it
            problems.append(Problem(loc[:-1], _phrase(loc[:-1], data, f"missing required key {loc[-1]!r}")))
            continue
        problems.append(Problem(loc, _phrase(loc, data, _expected(error, loc, model))))
    return problems


def _phrase(loc: Loc, data: Any, message: str) -> str:
    """``rule 'xi-putin': notify: message``: the named item, the key path inside it, the message."""
    subject, rest = _subject(loc, data)
    path = ""  # keys joined by dots, list positions as "item N" counted from 1
    for part in rest:
        if isinstance(part, int):
            path += f" item {part + 1}"
        else:
            path += f".{part}" if path else str(part)
    return ": ".join(part for part in (subject, path, message) if part)


def _subject(loc: Loc, data: Any) -> tuple[str | None, Loc]:
    if len(loc) >= 2 and loc[0] in _NAMED_LISTS and isinstance(loc[1], int):
        item = _get(data, loc[:2])
        name = item.get("name") if isinstance(item, dict) else None
        kind = _NAMED_LISTS[loc[0]]
        label = f"{kind} {shown(name)}" if isinstance(name, str) and name.strip() else f"{kind} {loc[1] + 1}"
        return label, loc[2:]
    if len(loc) >= 2 and loc[0] in _NAMED_MAPPINGS:
        return f"{_NAMED_MAPPINGS[loc[0]]} {shown(str(loc[1]))}", loc[2:]
    return None, loc


def _get(data: Any, loc: Loc) -> Any:
    for part in loc:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _unknown_key(key: Any, allowed: list[str]) -> tuple[str, list[str]]:
    """The message for an unknown key, and the keys it suggests instead."""
    text = str(key)
    near = [name for name in allowed if len(text) >= 4 and text in name][:3]
    if not near:
        near = difflib.get_close_matches(text, allowed, n=1, cutoff=0.6)
    if near:
        return f"unknown key {key!r}; did you mean {_either(near)}?", near
    if allowed:
        return f"unknown key {key!r}; the keys here are {', '.join(allowed)}", []
    return f"unknown key {key!r}", []


def _either(words: list[str]) -> str:
    quoted = [repr(word) for word in words]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _expected(error: dict[str, Any], loc: Loc, model: type[BaseModel]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    got = shown(value)
    key = next((part for part in reversed(loc) if isinstance(part, str)), None)
    if key == "notify" and kind == "too_short":
        return "name at least one channel"
    if key == "notify" and kind in ("tuple_type", "list_type"):
        example = value if isinstance(value, str) and value.strip() else "console"
        return f"expected a list of channels like [{example}], got {got}"
    if key == "type" and kind == "string_pattern_mismatch":
        return f"expected an entity type in capitals, like PERSON or ORG, got {got}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        target = _model_at(model, loc)
        if not loc and target is not None and target.__name__ in _ROOT_SHAPES:
            return f"expected {_ROOT_SHAPES[target.__name__]}, got {got}"
        if target is not None:
            return f"expected a mapping with the keys {', '.join(target.model_fields)}, got {got}"
        return f"expected a mapping, got {got}"
    if kind in ("tuple_type", "list_type", "iterable_type"):
        return f"expected a list, got {got}"
    if kind in ("int_parsing", "int_type", "float_parsing", "float_type", "int_parsing_size"):
        return f"expected a number, got {got}"
    if kind == "int_from_float":
        return f"expected a whole number, got {got}"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false, got {got}"
    if kind in ("string_type", "str_type"):
        return (
            f"expected text, got {got} (put it in quotes)"
            if isinstance(value, (int, float))
            else f"expected text, got {got}"
        )
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"expected at least {least} item{'s' if least != 1 else ''}, got none" if not value else error["msg"]
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("above", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("below", "lt"),
    }
    if kind in bounds:
        words, name = bounds[kind]
        return f"must be {words} {ctx.get(name)}, got {got}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        near = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6) if isinstance(value, str) else []
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"expected {_either(choices) if choices else ctx.get('expected')}, got {got}{hint}"
    if kind == "path_type":
        return f"expected a file path, got {got}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return str(error["msg"]).removeprefix("Value error, ")


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model that validates the node at ``loc`` (None when it is no model)."""
    current: Any = model
    skip = 0  # list positions and mapping keys between a field and its items' model
    for part in loc:
        if skip:
            skip -= 1
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        current, skip = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> tuple[Any, int]:
    """The model inside a field's type and how many path parts (list index, mapping key) lead to it."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _inner_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found, skip = _inner_model(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found, skip
        return None, 0
    if origin in (tuple, list):
        return typing.get_args(annotation)[0], 1
    if origin is dict:
        return typing.get_args(annotation)[1], 1
    return annotation, 0


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    target = _model_at(model, loc)
    return list(target.model_fields) if target is not None else []


# --- YAML syntax ----------------------------------------------------------------


def yaml_problem(error: yaml.MarkedYAMLError, text: str) -> tuple[Position, str]:
    """Where a YAML syntax error starts and what it is, in words a person editing the file follows."""
    context = error.context or ""
    problem = error.problem or ""
    context_mark, problem_mark = error.context_mark, error.problem_mark
    at_problem = _position(problem_mark or context_mark)
    if "quoted scalar" in context and context_mark is not None:
        if "end of stream" in problem:
            return _position(context_mark), "a quoted value starts here and is never closed"
        return at_problem, f"{_words(problem)} in the quoted value that starts at {_line_column(context_mark)}"
    if context.startswith("while parsing a flow ") and context_mark is not None:
        opening, closing, what = ("[", "]", "list") if "sequence" in context else ("{", "}", "mapping")
        start = _position(context_mark)
        if "<stream end>" in problem:
            return start, f"a {what} in {opening} {closing} starts here and is never closed"
        return (
            start,
            f"a {what} in {opening} {closing} starts here and is not closed before {_line_column(problem_mark)}",
        )
    quoted = _quoted_before(text, problem_mark)
    if quoted is not None and quoted.end_mark.line > quoted.start_mark.line:
        return _position(quoted.start_mark), (
            f"a quoted value starts here and runs to {_line_column(quoted.end_mark)}; is its closing quote missing?"
        )
    if quoted is not None and problem.startswith("expected <block end>"):
        return at_problem, "text after a quoted value: put the whole value in quotes"
    if "could not find expected ':'" in problem and context_mark is not None:
        return _position(context_mark), "expected `key: value` here, found no ':'"
    if problem == "mapping values are not allowed here":
        return (
            at_problem,
            "unexpected ':' here: put a value that holds ': ' in quotes, or check this line's indentation",
        )
    if problem.startswith("expected <block end>") and context_mark is not None:
        return at_problem, (
            f"this line's indentation does not fit the block that starts at {_line_column(context_mark)}"
        )
    if "that cannot start any token" in problem:
        if "'\\t'" in problem:
            return at_problem, "a tab character: indent with spaces"
        return at_problem, f"{_words(problem)}: put the value in quotes"
    if problem.startswith("found undefined alias"):
        return at_problem, f"{_words(problem)}: put a value that starts with * in quotes"
    if context and context_mark is not None:
        return at_problem, f"invalid YAML: {_words(problem)} ({_words(context)} at {_line_column(context_mark)})"
    return at_problem, f"invalid YAML: {_words(problem or context)}"


def _quoted_before(text: str, mark: Any) -> yaml.ScalarToken | None:
    """The quoted value that ends on the error's line just before it, if any.

    Spanning lines, its closing quote is likely missing (the next quote closed it).
    """
    if mark is None:
        return None
    last = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if (token.start_mark.line, token.start_mark.column) >= (mark.line, mark.column):
                break
            last = token
    except yaml.YAMLError:
        pass
    if isinstance(last, yaml.ScalarToken) and last.style in ("'", '"') and last.end_mark.line == mark.line:
        return last
    return None


def _position(mark: Any) -> Position:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _line_column(mark: Any) -> str:
    line, column = _position(mark)
    return f"line {line}, column {column}"


def _words(message: str) -> str:
    return message.replace("<stream end>", "the end of the file").replace("<scalar>", "a value")
