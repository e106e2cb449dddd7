"""Loading mapping files: read the TOML, validate it, compile it, and report every problem.

Each problem names the file, the key path and what was expected (see ``errors.py``); TOML syntax
errors name the line and column instead of a key path. ``load_mappings`` gathers the problems of
all files into one ``MappingError`` so a hot reload can reject a bad set of files as a whole and
keep the last good mappings.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Collection, Iterable
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .compile import compile_mapping
from .compiled import Mapping
from .errors import MappingError, format_path
from .model import NAME_PATTERN, MappingFile
from .transforms import suggest

__all__ = ["MappingError", "load_mapping", "load_mappings", "parse_mapping"]

_AT_LINE = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.DOTALL)
_AT_END = re.compile(r"^(?P<msg>.*) \(at end of document\)$", re.DOTALL)
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def load_mapping(path: str | os.PathLike[str], *, known_apps: Collection[str] | None = None) -> Mapping:
    """Read, validate and compile one mapping file; raises ``MappingError`` listing every problem.

    ``known_apps`` are the app names defined in config.toml; when given, the file may use no other.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise MappingError([f"{source}: cannot read mapping file: no such file"]) from None
    except OSError as exc:
        raise MappingError([f"{source}: cannot read mapping file: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MappingError([f"{source}: byte {exc.start}: the file is not valid UTF-8"]) from None
    return parse_mapping(text, source=source, known_apps=known_apps)


def parse_mapping(
    text: str, *, source: str = "<string>", known_apps: Collection[str] | None = None
) -> Mapping:
    """Validate and compile mapping-file text; ``source`` names it in problems."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError([_syntax_problem(source, exc)]) from None
    try:
        model = MappingFile.model_validate(data)
    except ValidationError as exc:
        raise MappingError(
            [f"{source}: {where}: {message}" for where, message in _translate_all(exc)]
        ) from None
    return compile_mapping(model, source, known_apps)


def load_mappings(
    paths: Iterable[str | os.PathLike[str]], *, known_apps: Collection[str] | None = None
) -> list[Mapping]:
    """Load several mapping files; raises one ``MappingError`` holding every file's problems.

    Two files may not declare the same sync name.
    """
    problems: list[str] = []
    mappings: list[Mapping] = []
    by_name: dict[str, Mapping] = {}
    for path in paths:
        try:
            mapping = load_mapping(path, known_apps=known_apps)
        except MappingError as exc:
            problems.extend(exc.problems)
            continue
        first = by_name.setdefault(mapping.name, mapping)
        if first is not mapping:
            problems.append(
                f"{mapping.source}: name: sync name {mapping.name!r} is already used by {first.source}"
            )
            continue
        mappings.append(mapping)
    if problems:
        raise MappingError(problems)
    return mappings


def _syntax_problem(source: str, exc: tomllib.TOMLDecodeError) -> str:
    text = str(exc)
    found = _AT_LINE.match(text)
    if found:
        return f"{source}: line {found['line']}, column {found['col']}: invalid TOML: {found['msg']}"
    found = _AT_END.match(text)
    if found:
        return f"{source}: end of file: invalid TOML: {found['msg']}"
    return f"{source}: invalid TOML: {text}"


# --- pydantic errors -> admin messages -----------------------------------------------------------


def _translate_all(exc: ValidationError) -> list[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        item = (format_path(error["loc"]) or "(top level)", _message(error))
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _describe(value: Any) -> str:
    """A TOML-flavoured rendering of a value for "got ..." clauses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime | date | time):
        return f"the date/time {value.isoformat()}"
    return repr(value)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    loc = error["loc"]
    value = error["input"]
    ctx = error.get("ctx") or {}
    got = _describe(value)
    last = next((part for part in reversed(loc) if isinstance(part, str)), "value")
    if kind == "transform":
        return str(ctx["message"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        listing = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {last!r}{suggest(last, allowed)}{listing}"
    if kind == "literal_error":
        choices = _QUOTED.findall(str(ctx.get("expected", "")))
        listing = ", ".join(repr(c) for c in choices)
        if isinstance(value, str):
            return f"unknown {last} {value!r}{suggest(value, choices)} (expected one of {listing})"
        return f"expected one of {listing}, got {got}"
    if loc == ("key",) and kind == "list_type":
        return f"expected a field name or a list of field names, got {got}"
    if kind == "list_type" and last == "filter" and isinstance(value, dict):
        return f"expected a list of conditions, got a table; write each condition as [[{format_path(loc)}]]"
    if kind == "list_type" and last in ("transforms", "inbound", "outbound") and isinstance(value, str):
        return f"expected a list of transforms, got {got}; write {last} = [{json.dumps(value)}]"
    if len(loc) == 4 and loc[0] == "fields" and loc[2] == "apps" and kind in ("model_type", "dict_type"):
        return f"expected a path string or a table with path, direction, inbound, outbound; got {got}"
    simple = {
        "string_type": "expected a string",
        "bool_type": "expected true or false",
        "int_type": "expected a whole number",
        "float_type": "expected a number",
        "list_type": "expected a list",
        "dict_type": "expected a table",
        "model_type": "expected a table",
        "model_attributes_type": "expected a table",
        "string_too_short": "expected a non-empty string",
    }
    if kind in simple:
        return f"{simple[kind]}, got {got}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern")
        wanted = (
            "lowercase letters, digits, '_' and '-'"
            if pattern == NAME_PATTERN
            else f"text matching {pattern}"
        )
        return f"expected {wanted}, got {got}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        shown = f"{limit:g}" if isinstance(limit, int | float) else str(limit)
        return f"expected a number {bounds[kind]} {shown}, got {got}"
    return f"{error['msg']}, got {got}"


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts, for "did you mean" suggestions on unknown keys."""
    annotation: Any = MappingFile
    for part in loc:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            annotation = field.annotation
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []
