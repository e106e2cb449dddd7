"""The transform registry: small value functions that mapping files chain into pipelines.

A transform is written in a mapping file as a bare name (``"trim"``) or a single-key table
(``{split = ";"}``). ``TRANSFORMS`` maps each name to a ``TransformDef`` whose ``factory`` checks
the argument (raising ``TransformArgumentError`` with an admin-readable message) and returns the
value function.

Every value function is total: a value it cannot handle (a number given to ``lower``, an
unparseable date) comes back unchanged, because losing a customer's data is worse than syncing
it un-normalised. String transforms apply to each item of a list, so they work on set fields.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Final, Literal

from email_validator import EmailNotValidError, validate_email

Transform = Callable[[Any], Any]


class TransformArgumentError(ValueError):
    """A transform's argument is missing, unexpected or malformed; ``str()`` says what was expected."""


class _Missing:
    """Marks a transform written as a bare name, with no argument."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

ArgKind = Literal["none", "optional", "required"]


@dataclass(frozen=True, slots=True)
class TransformDef:
    """One registered transform: how to build it, what argument it takes, and documentation."""

    factory: Callable[[Any], Transform]
    arg: ArgKind
    summary: str
    arg_schema: dict[str, Any] | None = None
    #: App values worth pushing through a pipeline that contains this transform when checking
    #: that a two-way field survives a round trip.
    probes: Callable[[Any], tuple[Any, ...]] | None = None
    #: Only allowed in outbound pipelines (it builds an app value from several canonical fields).
    outbound_only: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """A compiled transform: its name and argument as written, and the value function."""

    name: str
    arg: Any
    fn: Transform = field(repr=False, compare=False)

    def __call__(self, value: Any) -> Any:
        return self.fn(value)


def compile_step(name: str, arg: Any = MISSING) -> Step:
    """Build a step, raising ``TransformArgumentError`` for an unknown name or a bad argument."""
    definition = TRANSFORMS.get(name)
    if definition is None:
        raise TransformArgumentError(f"unknown transform {name!r}{suggest(name, TRANSFORMS)}")
    if arg is MISSING and definition.arg == "required":
        raise TransformArgumentError(f"transform {name!r} needs an argument: write {{{name} = ...}}")
    if arg is not MISSING and definition.arg == "none":
        raise TransformArgumentError(f"transform {name!r} takes no argument: write it as the string {name!r}")
    return Step(name, arg, definition.factory(arg))


def suggest(word: str, choices: Sequence[str] | dict[str, Any]) -> str:
    """`` — did you mean 'x'?`` for a near miss among ``choices``, else an empty string."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean {matches[0]!r}?" if matches else ""


def yields_bool(step: Step) -> bool:
    """True when the step always turns a recognised value into a boolean (consent fields need one)."""
    if step.name in ("bool", "not"):
        return True
    if step.name == "constant":
        return isinstance(step.arg, bool)
    if step.name == "map":
        values, default = _map_table(step.arg)
        return all(isinstance(v, bool) for v in values.values()) and (
            default is MISSING or isinstance(default, bool)
        )
    return False


_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def _refuse_phone(value: Any) -> str | None:
    if isinstance(value, str) and not _E164.match(value):
        return f"{value!r} is not a phone number that can be written in E.164 form (+14155550100)"
    return None


def _refuse_email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"{value!r} is not an email address: {exc}"
    return None


#: Transforms that pass a value they cannot handle through unchanged (syncing un-normalised data
#: beats losing it), and how to tell that happened. Values an admin types in are refused instead.
_REFUSALS: Final[dict[str, Callable[[Any], str | None]]] = {"e164": _refuse_phone, "email": _refuse_email}


def refusal(step: Step, value: Any) -> str | None:
    """Why ``value``, the output of ``step``, is not a value that step accepts, else None."""
    check = _REFUSALS.get(step.name)
    if check is None:
        return None
    for item in value if isinstance(value, list | tuple) else [value]:
        problem = check(item)
        if problem is not None:
            return problem
    return None


def as_text(value: Any) -> str:
    """Text form of a scalar as apps store it: booleans as ``true``/``false``, dates in ISO-8601."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# --- helpers -----------------------------------------------------------------------------------


def _each(fn: Transform) -> Transform:
    """Apply ``fn`` to each item of a list, or to the value itself."""

    def apply(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [fn(item) for item in value]
        return fn(value)

    return apply


def _on_text(fn: Callable[[str], Any]) -> Transform:
    """Apply ``fn`` to strings (and to each string in a list); leave every other value alone."""

    # One closure rather than _each around a string check: this runs for every field of every
    # record a sync reads, so the saved call per value shows in the sync's throughput.
    def apply(value: Any) -> Any:
        if isinstance(value, str):
            return fn(value)
        if isinstance(value, list | tuple):
            return [fn(item) if isinstance(item, str) else item for item in value]
        return value

    return apply


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int | float)


def _no_arg(fn: Transform) -> Callable[[Any], Transform]:
    def factory(_arg: Any) -> Transform:
        return fn

    return factory


# --- text --------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+")


def _title_word(match: re.Match[str]) -> str:
    word = match.group(0)
    return word[:1].upper() + word[1:].lower()


def _title(text: str) -> str:
    return _WORD.sub(_title_word, text)


def _collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


# --- phone -------------------------------------------------------------------------------------


def _e164_factory(arg: Any) -> Transform:
    # Imported by the mappings that use the transform: loading its metadata costs every CLI run.
    import phonenumbers

    region: str | None = None
    if arg is not MISSING:
        if not isinstance(arg, str):
            raise TransformArgumentError(f"e164 expects a region code such as 'US', got {arg!r}")
        region = arg.upper()
        regions = sorted(phonenumbers.SUPPORTED_REGIONS)
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise TransformArgumentError(f"e164: unknown region {arg!r}{suggest(region, regions)}")

    @functools.lru_cache(maxsize=65536)
    def e164(text: str) -> str:
        stripped = text.strip()
        try:
            number = phonenumbers.parse(stripped, region)
        except phonenumbers.NumberParseException:
            return stripped
        # E.164 has no room for an extension: keep such numbers as written rather than drop it.
        if number.extension or not phonenumbers.is_possible_number(number):
            return stripped
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    return _on_text(e164)


def _e164_probes(arg: Any) -> tuple[Any, ...]:
    import phonenumbers

    probes: list[Any] = ["+14155550100"]
    if isinstance(arg, str):
        example = phonenumbers.example_number(arg.upper())
        if example is not None:
            probes.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL))
    return tuple(probes)


# --- email -------------------------------------------------------------------------------------

# Invisible characters that sneak in through copy and paste and never belong in an address.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


#: A plain address: ASCII dot-atom local part, ASCII domain of two or more labels. For such text,
#: full validation can only give the lowercased text back (valid: its normal form is itself;
#: invalid: the text is kept as written), so it is skipped. IDNA labels (``xn--``) are left to
#: the validator, which turns them into Unicode.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-z0-9-]+(?:\.[a-z0-9-]+)+"
)


@functools.lru_cache(maxsize=65536)
def _email(text: str) -> str:
    # Cached: every record of every page goes through here, and the same addresses recur
    # (each read, each echo, each round-trip comparison); validation dominates a sync's CPU.
    if text.isascii():
        # NFKC and the invisible characters concern non-ASCII text only.
        cleaned = text.strip().lower()
        if _PLAIN_EMAIL.fullmatch(cleaned) and "xn--" not in cleaned:
            return cleaned
    return _email_validated(text)


def _email_validated(text: str) -> str:
    """The email transform by full validation (what ``_email`` gives for any text)."""
    cleaned = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).strip().lower()
    try:
        checked = validate_email(cleaned, check_deliverability=False)
    except EmailNotValidError:
        return cleaned
    return checked.normalized.lower()


# --- dates -------------------------------------------------------------------------------------

_SPECIAL_FORMATS: Final = ("iso", "epoch_ms", "epoch")
_SAMPLE_MOMENT: Final = datetime(2024, 1, 31, 12, 34, 56, tzinfo=UTC)
_SAMPLE_DATES: Final = (date(2024, 1, 31), date(2023, 7, 4))
_EPOCH_NUMBER = re.compile(r"-?\d+")


def _check_format(fmt: Any, what: str, transform: str) -> str:
    if not isinstance(fmt, str) or not fmt:
        raise TransformArgumentError(
            f"{transform} {what} must be a format string such as '%Y-%m-%d', got {fmt!r}"
        )
    if fmt in _SPECIAL_FORMATS:
        return fmt
    if "%" not in fmt:
        raise TransformArgumentError(
            f"{transform} {what} {fmt!r} has no % directive{suggest(fmt, _SPECIAL_FORMATS)}"
            " (use strftime directives such as '%Y-%m-%d', or 'iso', 'epoch_ms', 'epoch')"
        )
    try:
        datetime.strptime(_SAMPLE_MOMENT.strftime(fmt), fmt)
    except ValueError as exc:
        raise TransformArgumentError(
            f"{transform} {what} {fmt!r} is not a valid strftime format: {exc}"
        ) from None
    return fmt


def _date_options(arg: Any, transform: str, default_output: str) -> tuple[tuple[str, ...], str]:
    if arg is MISSING:
        return ("iso",), default_output
    if not isinstance(arg, dict):
        raise TransformArgumentError(
            f"{transform} expects a table such as {{input = '%m/%d/%Y', output = '%Y-%m-%d'}}, got {arg!r}"
        )
    unknown = sorted(set(arg) - {"input", "output"})
    if unknown:
        raise TransformArgumentError(
            f"{transform}: unknown option {unknown[0]!r}{suggest(unknown[0], ['input', 'output'])}"
            " (options: input, output)"
        )
    raw_inputs = arg.get("input", "iso")
    inputs = raw_inputs if isinstance(raw_inputs, list) else [raw_inputs]
    if not inputs:
        raise TransformArgumentError(f"{transform} input must name at least one format")
    formats = tuple(_check_format(fmt, "input", transform) for fmt in inputs)
    output = _check_format(arg.get("output", default_output), "output", transform)
    return formats, output


def _parse_moment(value: Any, formats: Sequence[str]) -> datetime | None:
    """The first successful parse of ``value`` by ``formats``; naive results are taken as UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    for fmt in formats:
        parsed = _parse_one(value, fmt)
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _parse_one(value: Any, fmt: str) -> datetime | None:
    if fmt in ("epoch_ms", "epoch"):
        if isinstance(value, bool):
            return None
        if isinstance(value, str) and _EPOCH_NUMBER.fullmatch(value.strip()):
            number = int(value.strip())
        elif isinstance(value, int):
            number = value
        else:
            return None
        seconds = number / 1000 if fmt == "epoch_ms" else number
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:
        return (
            datetime.fromisoformat(value.strip()) if fmt == "iso" else datetime.strptime(value.strip(), fmt)
        )
    except ValueError:
        return None


def _iso_utc(moment: datetime) -> str:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if utc.microsecond == 0:
        spec = "seconds"
    elif utc.microsecond % 1000 == 0:
        spec = "milliseconds"
    else:
        spec = "microseconds"
    return utc.isoformat(timespec=spec).replace("+00:00", "Z")


def _epoch(moment: datetime, fmt: str) -> int:
    millis = round(moment.timestamp() * 1000)
    return millis if fmt == "epoch_ms" else millis // 1000


def _date_factory(arg: Any) -> Transform:
    formats, output = _date_options(arg, "date", "%Y-%m-%d")

    def convert(value: Any) -> Any:
        moment = _parse_moment(value, formats)
        if moment is None:
            return value
        # A calendar date is taken as written; only epoch inputs carry a zone (UTC).
        day = moment.date()
        if output == "iso":
            return day.isoformat()
        if output in ("epoch_ms", "epoch"):
            return _epoch(datetime.combine(day, time(), UTC), output)
        return day.strftime(output)

    return _each(convert)


def _datetime_factory(arg: Any) -> Transform:
    formats, output = _date_options(arg, "datetime", "iso")

    def convert(value: Any) -> Any:
        moment = _parse_moment(value, formats)
        if moment is None:
            return value
        if output == "iso":
            return _iso_utc(moment)
        if output in ("epoch_ms", "epoch"):
            return _epoch(moment, output)
        return moment.astimezone(UTC).strftime(output)

    return _each(convert)


def _format_sample(moment: datetime, fmt: str, *, as_date: bool) -> str:
    if fmt in ("epoch_ms", "epoch"):
        base = datetime.combine(moment.date(), time(), UTC) if as_date else moment
        return str(_epoch(base, fmt))
    if fmt == "iso":
        return moment.date().isoformat() if as_date else _iso_utc(moment)
    return moment.strftime(fmt)


def _date_probes(arg: Any) -> tuple[Any, ...]:
    formats, _output = _date_options(arg, "date", "%Y-%m-%d")
    moments = [datetime.combine(day, time(), UTC) for day in _SAMPLE_DATES]
    return tuple(_format_sample(m, fmt, as_date=True) for fmt in formats for m in moments)


def _datetime_probes(arg: Any) -> tuple[Any, ...]:
    formats, _output = _date_options(arg, "datetime", "iso")
    return tuple(_format_sample(_SAMPLE_MOMENT, fmt, as_date=False) for fmt in formats)


# --- value maps --------------------------------------------------------------------------------


def _map_table(arg: Any) -> tuple[dict[str, Any], Any]:
    """``(values, default)`` of a map argument: ``{a = "b"}`` or ``{values = {a = "b"}, default = "x"}``."""
    if isinstance(arg, dict) and isinstance(arg.get("values"), dict):
        return arg["values"], arg.get("default", MISSING)
    return (arg if isinstance(arg, dict) else {}), MISSING


def map_key(value: Any) -> str | None:
    """The map key a value is looked up under (map keys are strings in TOML)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return as_text(value)
    return None


def _map_factory(arg: Any) -> Transform:
    if not isinstance(arg, dict) or not arg:
        raise TransformArgumentError(
            f"map expects a non-empty table of values such as {{a = 'b'}}, got {arg!r}"
        )
    extended = isinstance(arg.get("values"), dict)
    if extended:
        unknown = sorted(set(arg) - {"values", "default"})
        if unknown:
            raise TransformArgumentError(
                f"map: unknown option {unknown[0]!r}{suggest(unknown[0], ['values', 'default'])}"
                " (options: values, default)"
            )
    values, default = _map_table(arg)
    if not values:
        raise TransformArgumentError("map: the values table is empty")
    for key, mapped in values.items():
        if not _is_scalar(mapped):
            raise TransformArgumentError(
                f"map: value for {key!r} must be a string, number or boolean, got {mapped!r}"
            )
    if default is not MISSING and not _is_scalar(default):
        raise TransformArgumentError(f"map: default must be a string, number or boolean, got {default!r}")

    def lookup(value: Any) -> Any:
        key = map_key(value)
        if key is not None and key in values:
            return values[key]
        if default is not MISSING and not _is_blank(value):
            return default
        return value

    return _each(lookup)


def map_keys(arg: Any) -> tuple[str, ...]:
    """The keys of a map transform's value table."""
    values, _default = _map_table(arg)
    return tuple(values)


# --- lists -------------------------------------------------------------------------------------


def _separator(arg: Any, transform: str, *, allow_empty: bool) -> str:
    if not isinstance(arg, str) or (not arg and not allow_empty):
        raise TransformArgumentError(f"{transform} expects a separator string such as ';', got {arg!r}")
    return arg


def _split_factory(arg: Any) -> Transform:
    sep = _separator(arg, "split", allow_empty=False)

    def pieces(text: str) -> list[str]:
        return [part.strip() for part in text.split(sep) if part.strip()]

    def split(value: Any) -> Any:
        if isinstance(value, str):
            return pieces(value)
        if isinstance(value, list | tuple):
            out: list[Any] = []
            for item in value:
                out.extend(pieces(item) if isinstance(item, str) else [item])
            return out
        return value

    return split


def _join_factory(arg: Any) -> Transform:
    sep = _separator(arg, "join", allow_empty=True)

    def join(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return sep.join(as_text(item) for item in value if item is not None)
        return value

    return join


def _split_probes(arg: Any) -> tuple[Any, ...]:
    sep = arg if isinstance(arg, str) else ";"
    return (f"alpha{sep}beta", f"alpha{sep}beta{sep}gamma")


# --- names -------------------------------------------------------------------------------------


def _split_name_factory(arg: Any) -> Transform:
    if arg not in ("first", "last"):
        raise TransformArgumentError(
            f"split_name expects 'first' or 'last', got {arg!r}{suggest(str(arg), ['first', 'last'])}"
        )

    def split_name(text: str) -> Any:
        words = text.split()
        if not words:
            return None
        if arg == "first":
            return words[0]
        return " ".join(words[1:]) or None

    return _on_text(split_name)


def _join_name_factory(arg: Any) -> Transform:
    if not isinstance(arg, list) or not arg or not all(isinstance(f, str) and f for f in arg):
        raise TransformArgumentError(
            "join_name expects a list of canonical field names such as ['first_name', 'last_name'],"
            f" got {arg!r}"
        )

    def join_name(values: Any) -> Any:
        if not isinstance(values, list | tuple):
            return values
        parts = [as_text(v).strip() for v in values if not _is_blank(v)]
        joined = " ".join(p for p in parts if p)
        return joined or None

    return join_name


# --- defaults and constants --------------------------------------------------------------------


def _scalar_arg(arg: Any, transform: str) -> Any:
    if not _is_scalar(arg):
        raise TransformArgumentError(f"{transform} expects a string, number or boolean, got {arg!r}")
    return arg


def _default_factory(arg: Any) -> Transform:
    replacement = _scalar_arg(arg, "default")

    def default(value: Any) -> Any:
        return replacement if _is_blank(value) else value

    return default


def _constant_factory(arg: Any) -> Transform:
    constant = _scalar_arg(arg, "constant")

    def always(_value: Any) -> Any:
        return constant

    return always


# --- coercions ---------------------------------------------------------------------------------

_TRUE: Final = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE: Final = frozenset({"false", "f", "no", "n", "off", "0"})
_INTEGER = re.compile(r"[+-]?\d+")


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        if not word:
            return None
    return value


def _negate(value: Any) -> Any:
    return (not value) if isinstance(value, bool) else value


def _to_str(value: Any) -> Any:
    if value is None or isinstance(value, dict):
        return value
    return as_text(value)


def _to_int(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return value


def _to_float(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


# --- the registry ------------------------------------------------------------------------------

_SCALAR_SCHEMA: Final[dict[str, Any]] = {"type": ["string", "number", "integer", "boolean"]}
_FORMAT_SCHEMA: Final[dict[str, Any]] = {
    "type": "string",
    "description": "strftime format, 'iso', 'epoch_ms' or 'epoch'",
}
_DATE_ARG_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "input": {"anyOf": [_FORMAT_SCHEMA, {"type": "array", "items": _FORMAT_SCHEMA, "minItems": 1}]},
        "output": _FORMAT_SCHEMA,
    },
    "additionalProperties": False,
}

TRANSFORMS: Final[dict[str, TransformDef]] = {
    "trim": TransformDef(_no_arg(_on_text(str.strip)), "none", "strip leading and trailing whitespace"),
    "lower": TransformDef(_no_arg(_on_text(str.lower)), "none", "lowercase"),
    "upper": TransformDef(_no_arg(_on_text(str.upper)), "none", "uppercase"),
    "title": TransformDef(_no_arg(_on_text(_title)), "none", "capitalise each word"),
    "collapse_whitespace": TransformDef(
        _no_arg(_on_text(_collapse_whitespace)), "none", "trim and turn runs of whitespace into one space"
    ),
    "e164": TransformDef(
        _e164_factory,
        "optional",
        "phone number in E.164 form; optional default region for national numbers",
        {"type": "string", "description": "ISO 3166 region code such as 'US'"},
        _e164_probes,
    ),
    "email": TransformDef(
        _no_arg(_on_text(_email)), "none", "trim, Unicode NFKC, lowercase, syntax-normalise an email address"
    ),
    "date": TransformDef(
        _date_factory, "optional", "reformat a calendar date", _DATE_ARG_SCHEMA, _date_probes
    ),
    "datetime": TransformDef(
        _datetime_factory,
        "optional",
        "reformat a timestamp (ISO-8601 UTC by default)",
        _DATE_ARG_SCHEMA,
        _datetime_probes,
    ),
    "map": TransformDef(
        _map_factory,
        "required",
        "replace values through a table; unmapped values pass through unless a default is set",
        {
            "type": "object",
            "minProperties": 1,
            "description": "{from = to, ...} or {values = {from = to, ...}, default = x}",
        },
        map_keys,
    ),
    "split": TransformDef(
        _split_factory,
        "required",
        "split text into a list on a separator, trimming items and dropping empty ones",
        {"type": "string", "minLength": 1},
        _split_probes,
    ),
    "join": TransformDef(
        _join_factory, "required", "join a list into text with a separator", {"type": "string"}
    ),
    "split_name": TransformDef(
        _split_name_factory,
        "required",
        "the first word or the remaining words of a full name",
        {"enum": ["first", "last"]},
    ),
    "join_name": TransformDef(
        _join_name_factory,
        "required",
        "build one app value from several canonical fields, space-separated (outbound only)",
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
        outbound_only=True,
    ),
    "default": TransformDef(_default_factory, "required", "replace an empty value", _SCALAR_SCHEMA),
    "constant": TransformDef(_constant_factory, "required", "always this value", _SCALAR_SCHEMA),
    "bool": TransformDef(
        _no_arg(_each(_to_bool)),
        "none",
        "parse true/false, yes/no, on/off, 1/0 into a boolean",
        probes=lambda _arg: ("true", "false"),
    ),
    "not": TransformDef(_no_arg(_each(_negate)), "none", "negate a boolean"),
    "str": TransformDef(_no_arg(_each(_to_str)), "none", "text form (booleans as true/false)"),
    "int": TransformDef(
        _no_arg(_each(_to_int)), "none", "whole number, when exact", probes=lambda _arg: ("42", "-7")
    ),
    "float": TransformDef(
        _no_arg(_each(_to_float)), "none", "decimal number", probes=lambda _arg: ("3.5", "42.0")
    ),
}
