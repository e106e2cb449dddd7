"""Generate ``docs/mapping-reference.md`` from the mapping model and the transform registry.

Every key comes from the JSON Schema of ``MappingFile`` (the same one exported to
``mappings/schema.json``) and every transform from ``TRANSFORMS``; the examples are computed by
running each transform, so the reference cannot drift from the code. Generation fails — and with
it the test that the committed file is current — when a key has no description, when a new
model appears without a section here, or when a transform has no example.

    python -m syncd.demo.docs_gen            # write docs/mapping-reference.md
    python -m syncd.demo.docs_gen --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.mapping.schema import build_schema
from syncd.mapping.transforms import MISSING, TRANSFORMS, compile_step

DEFAULT_PATH = Path("docs") / "mapping-reference.md"


class UndocumentedError(Exception):
    """Something in the mapping format has no documentation to generate the reference from."""


@dataclass(frozen=True, slots=True)
class Section:
    """How one model of the schema is presented: heading, where it sits in a file, an example."""

    heading: str
    where: str
    example: str


SECTIONS: dict[str, Section] = {
    "MappingFile": Section(
        "Top level",
        "the keys at the top of the file; one file per synced entity type",
        'name = "contacts"\nkey = "email"\ninitial_conflict = "review"',
    ),
    "AppModel": Section(
        "[apps.NAME]",
        "one table per app taking part; NAME is an app defined in config.toml",
        '[apps.crm]\nobject = "contacts"',
    ),
    "FilterModel": Section(
        "[[apps.NAME.filter]]",
        "an array of tables under an app, one per condition",
        '[[apps.email.filter]]\nfield = "lifecycle"\nop = "not_in"\nvalue = ["other"]',
    ),
    "ConflictModel": Section(
        "[conflict] and fields.NAME.conflict",
        "the file's default policy at the top level; a field may override it with its own table",
        '[conflict]\npolicy = "priority"\npriority = ["crm", "email"]\n\n'
        '[fields.phone]\nconflict = { policy = "newest" }',
    ),
    "DeleteModel": Section(
        "[delete]",
        "one table at the top level",
        '[delete]\npolicy = "archive"\nmass_delete_threshold = 0.2',
    ),
    "FieldModel": Section(
        "[fields.NAME]",
        "one table per canonical field; NAME is a lowercase identifier",
        '[fields.phone]\ntransforms = [{ e164 = "US" }]\napps.crm = "properties.phone"',
    ),
    "AppFieldModel": Section(
        "[fields.NAME.apps.APP]",
        "one per app the field lives in; a bare path string is the shorthand for a two-way field",
        '[fields.subscribed.apps.email]\npath = "status"\ndirection = "both"\n'
        "inbound = [{ map = { subscribed = true, unsubscribed = false } }]\n"
        'outbound = [{ map = { true = "subscribed", false = "unsubscribed" } }]',
    ),
}

#: Examples of every transform: (argument or MISSING, input value). Outputs are computed.
EXAMPLES: dict[str, list[tuple[Any, Any]]] = {
    "trim": [(MISSING, "  Ann "), (MISSING, ["  a ", "b "])],
    "lower": [(MISSING, "Ann@Example.COM")],
    "upper": [(MISSING, "us")],
    "title": [(MISSING, "ann-marie o'neil")],
    "collapse_whitespace": [(MISSING, "  Ann \t Marie ")],
    "e164": [(MISSING, "+1 (415) 555-0100"), ("US", "(415) 555-0100"), ("US", "555-0100 ext. 7")],
    "email": [(MISSING, " Ann@Example.COM"), (MISSING, "ａｎｎ@example.com\u200b")],
    "date": [
        (MISSING, "2024-01-31T12:34:56Z"),
        ({"input": "%m/%d/%Y", "output": "%Y-%m-%d"}, "01/31/2024"),
        ({"input": ["%d.%m.%Y", "iso"]}, "31.01.2024"),
    ],
    "datetime": [
        (MISSING, "2024-01-31 12:34:56+01:00"),
        ({"input": "epoch_ms"}, 1706704496000),
        ({"output": "epoch"}, "2024-01-31T12:34:56Z"),
    ],
    "map": [
        ({"active": "customer", "trial": "lead"}, "active"),
        ({"active": "customer"}, "paused"),
        ({"values": {"yes": True}, "default": False}, "maybe"),
    ],
    "split": [(";", "vip; beta;;")],
    "join": [(";", ["vip", "beta"])],
    "split_name": [("first", "Ludwig van Beethoven"), ("last", "Ludwig van Beethoven")],
    "join_name": [
        (["first_name", "last_name"], ["Ada", "Lovelace"]),
        (["first_name", "last_name"], ["Ada", None]),
    ],
    "default": [("Friend", None), ("Friend", "Ann")],
    "constant": [("syncd", "anything")],
    "bool": [(MISSING, "Yes"), (MISSING, "off"), (MISSING, " "), (MISSING, "maybe")],
    "not": [(MISSING, True)],
    "str": [(MISSING, 42), (MISSING, False)],
    "int": [(MISSING, " 42 "), (MISSING, "3.5")],
    "float": [(MISSING, "3.5"), (MISSING, 42)],
}

#: What a transform's input is, when it is not one app value.
INPUT_NOTES = {
    "join_name": "the values of the named canonical fields, in order",
}

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# -- rendering helpers -----------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """``value`` as a TOML inline value (what an admin writes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def written_as(name: str, arg: Any) -> str:
    return json.dumps(name) if arg is MISSING else "{ " + f"{name} = {toml_value(arg)}" + " }"


def shown(value: Any) -> str:
    """A value as JSON, with invisible characters spelled out."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("\u200b", "\\u200b")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(heading: str) -> str:
    """Headings that are TOML table names are shown as code."""
    return f"`{heading}`" if heading.startswith("[") else heading


def _anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-")
    return "#" + slug


def _ref_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return str(ref).rsplit("/", 1)[-1] if isinstance(ref, str) else None


def describe_type(schema: Mapping[str, Any]) -> str:
    """A short human description of a JSON Schema node."""
    ref = _ref_name(schema)
    if ref == "Transform":
        return "[transform](#transforms)"
    if ref is not None:
        section = SECTIONS.get(ref)
        if section is None:
            raise UndocumentedError(f"schema model {ref!r} has no section in docs_gen.SECTIONS")
        return f"table, see [`{section.heading}`]({_anchor(section.heading)})"
    if "anyOf" in schema:
        options = [describe_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        return ("; or " if any(" or " in o for o in options) else " or ").join(options)
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        names = [str(k) for k in kind if k != "integer"]
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    if kind == "array":
        text = "list of " + _plural(describe_type(schema.get("items", {})))
        if "minItems" in schema:
            text += f" (at least {schema['minItems']})"
        return text
    if kind == "object":
        value = schema.get("additionalProperties")
        names = schema.get("propertyNames", {}).get("pattern")
        text = "table"
        if isinstance(value, Mapping):
            text = "table of NAME = " + describe_type(value)
        if names:
            text += f"; names match `{names}`"
        if "minProperties" in schema:
            text += f"; at least {schema['minProperties']}"
        return text
    text = str(kind)
    if "pattern" in schema:
        text += f" matching `{schema['pattern']}`"
    if schema.get("minLength") == 1:
        text = "non-empty " + text
    bounds = []
    if "exclusiveMinimum" in schema:
        bounds.append(f"> {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        bounds.append(f"<= {schema['maximum']}")
    if bounds:
        text += " (" + " and ".join(bounds) + ")"
    return text


_PLURALS = {
    "[transform]": "[transforms]",
    "table,": "tables,",
    "string": "strings",
    "number": "numbers",
    "boolean": "booleans",
}


def _plural(text: str) -> str:
    """``list of`` + a type description: the description's nouns in the plural."""
    return re.sub(
        r"\[transform\]|\btable,|\bstring\b|\bnumber\b|\bboolean\b", lambda m: _PLURALS[m.group(0)], text
    )


def _default(schema: Mapping[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" in schema:
        value = schema["default"]
        return "none" if value is None else f"`{toml_value(value)}`"
    if schema.get("type") == "array":
        return "`[]`"
    if _ref_name(schema) is not None:
        return "the table's defaults"
    raise UndocumentedError(f"no default to show for {schema.get('description')!r}")


# -- the document ------------------------------------------------------------------------------------


def _description(description: str, where: str) -> list[str]:
    """The model's docstring: its first paragraph with where the table goes, then the others."""
    first, *rest = [" ".join(part.split()) for part in description.split("\n\n")]
    return [f"{first} Where: {where}.", *(line for part in rest for line in ("", part))]


def _model_section(name: str, model: Mapping[str, Any]) -> list[str]:
    section = SECTIONS.get(name)
    if section is None:
        raise UndocumentedError(f"schema model {name!r} has no section in docs_gen.SECTIONS")
    description = model.get("description")
    if not description:
        raise UndocumentedError(f"schema model {name!r} has no description (its docstring)")
    required = set(model.get("required", []))
    lines = [
        f"## {_code(section.heading)}",
        "",
        *_description(description, section.where),
        "",
        "```toml",
        section.example,
        "```",
        "",
        "| key | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for key, prop in model.get("properties", {}).items():
        meaning = prop.get("description")
        if not meaning:
            raise UndocumentedError(f"{name}.{key} has no description: give its Field a description")
        lines.append(
            f"| `{key}` | {_cell(describe_type(prop))} | {_default(prop, key in required)} | {_cell(meaning)} |"
        )
    return [*lines, ""]


def _transform_section() -> list[str]:
    lines = [
        "## Transforms",
        "",
        'A transform is written as a bare name (`"trim"`) or as a table with one key, the name, holding',
        'its argument (`{ split = ";" }`). Pipelines are lists, applied left to right: an app\'s `inbound`,',
        "then the field's `transforms` on the way in; an app's `outbound` on the way out. Transforms never",
        "drop data: a value one cannot handle passes through unchanged. Text transforms apply to each",
        "item of a list. Values below are shown as JSON (`null` is an empty value); every output was",
        "computed by running the transform.",
        "",
        "| transform | argument | does |",
        "| --- | --- | --- |",
    ]
    missing = sorted(set(TRANSFORMS) - set(EXAMPLES))
    if missing:
        raise UndocumentedError(f"transforms without an example in docs_gen.EXAMPLES: {', '.join(missing)}")
    stale = sorted(set(EXAMPLES) - set(TRANSFORMS))
    if stale:
        raise UndocumentedError(f"docs_gen.EXAMPLES names unknown transforms: {', '.join(stale)}")
    for name, definition in TRANSFORMS.items():
        arg = {"none": "none", "optional": "optional", "required": "required"}[definition.arg]
        if definition.arg_schema is not None:
            arg += ": " + describe_type(definition.arg_schema)
        does = definition.summary
        if definition.outbound_only and "outbound" not in does:
            does += " (outbound pipelines only)"
        lines.append(f"| [`{name}`](#{name}) | {_cell(arg)} | {_cell(does)} |")
    lines.append("")
    for name, definition in TRANSFORMS.items():
        examples = EXAMPLES[name]
        with_arg = [a for a, _ in examples if a is not MISSING]
        if definition.arg == "optional" and (not with_arg or len(with_arg) == len(examples)):
            raise UndocumentedError(
                f"transform {name!r} takes an optional argument: show it with and without"
            )
        lines += [f"### {name}", "", definition.summary[0].upper() + definition.summary[1:] + "."]
        if name in INPUT_NOTES:
            lines += ["", f"Its input is {INPUT_NOTES[name]}."]
        lines += ["", "| written as | input | output |", "| --- | --- | --- |"]
        for arg_value, given in examples:
            output = compile_step(name, arg_value)(given)
            lines.append(
                f"| `{_cell(written_as(name, arg_value))}` | `{_cell(shown(given))}` | `{_cell(shown(output))}` |"
            )
        lines.append("")
    return lines


def render() -> str:
    """The reference, as the exact text committed to ``docs/mapping-reference.md``."""
    schema = build_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    models = {"MappingFile": schema, **{k: v for k, v in defs.items() if k != "Transform"}}
    unknown = sorted(set(models) - set(SECTIONS))
    if unknown:
        raise UndocumentedError(f"schema models without a section in docs_gen.SECTIONS: {', '.join(unknown)}")
    lines = [
        "# Mapping file reference",
        "",
        "<!-- Generated by `python -m syncd.demo.docs_gen` from the mapping model and the transform",
        "     registry; edit those (descriptions, docstrings, docs_gen.EXAMPLES), not this file. -->",
        "",
        "Every key a mapping file accepts, and every transform with examples. For what the options",
        "mean together — conflicts, deletes, consent, round trips — read the guide in",
        "[`mappings/README.md`](../mappings/README.md); editors check files against",
        "[`mappings/schema.json`](../mappings/schema.json). Unknown keys are errors.",
        "",
        "Sections: "
        + ", ".join(f"[{_code(SECTIONS[m].heading)}]({_anchor(SECTIONS[m].heading)})" for m in SECTIONS)
        + ", [Transforms](#transforms).",
        "",
    ]
    for name in SECTIONS:
        if name in models:
            lines += _model_section(name, models[name])
    lines += _transform_section()
    return "\n".join(lines).rstrip("\n") + "\n"


def option_paths(schema: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """(model, key) for every key of every model in the schema: what the reference must cover."""
    schema = schema if schema is not None else build_schema()
    defs = schema.get("$defs", {})
    models = {"MappingFile": schema, **{k: v for k, v in defs.items() if k != "Transform"}}
    return [(model, key) for model, body in models.items() for key in body.get("properties", {})]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m syncd.demo.docs_gen", description=__doc__)
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_PATH, help="where to write the reference"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is missing or stale")
    args = parser.parse_args(argv)
    try:
        text = render()
    except UndocumentedError as exc:
        print(f"cannot generate the mapping reference: {exc}", file=sys.stderr)
        return 1
    path: Path = args.path
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            print(f"{path} is stale: run python -m syncd.demo.docs_gen", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
