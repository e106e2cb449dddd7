"""The pydantic models of a mapping file: the shape an admin writes, checked key by key.

These models validate structure, types and enumerations (unknown keys are errors). Checks that
need the whole file — a key field mapped in every app, owners that exist, round-trip stability —
run afterwards in ``compile.py``. ``MappingFile.model_json_schema()`` is exported to
``mappings/schema.json`` so editors can check files as they are typed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from .transforms import MISSING, TRANSFORMS, Step, TransformArgumentError, compile_step

NAME_PATTERN = r"^[a-z0-9_-]+$"
FIELD_PATTERN = r"^[a-z_][a-z0-9_]*$"

Direction = Literal["both", "in", "out"]
Kind = Literal["scalar", "set"]
Op = Literal["eq", "ne", "in", "not_in", "present", "absent"]
PolicyName = Literal["owner", "priority", "newest", "review"]
DeletePolicy = Literal["propagate", "archive", "unlink", "ignore"]
InitialConflict = Literal["review", "policy"]


def _parse_transform(value: Any) -> Step:
    """Turn ``"trim"`` or ``{split = ";"}`` into a compiled step, with an admin-readable error."""
    if isinstance(value, str):
        name, arg = value, MISSING
    elif isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
    elif isinstance(value, dict):
        keys = ", ".join(repr(k) for k in value)
        hint = ""
        if "map" in value and "default" in value:
            hint = "; put the default inside the map: {map = {values = {...}, default = ...}}"
        message = f"a transform table needs exactly one key, the transform name; got {keys or 'none'}{hint}"
        raise PydanticCustomError("transform", "{message}", {"message": message})
    else:
        raise PydanticCustomError(
            "transform",
            "{message}",
            {"message": f"expected a transform name or a table such as {{split = ';'}}, got {value!r}"},
        )
    try:
        return compile_step(name, arg)
    except TransformArgumentError as exc:
        raise PydanticCustomError("transform", "{message}", {"message": str(exc)}) from None


def transform_schema() -> dict[str, Any]:
    bare = [name for name, d in TRANSFORMS.items() if d.arg != "required"]
    with_arg: dict[str, Any] = {}
    for name, definition in TRANSFORMS.items():
        if definition.arg == "none":
            continue
        schema = dict(definition.arg_schema or {})
        detail = schema.pop("description", None)
        schema["description"] = f"{definition.summary} ({detail})" if detail else definition.summary
        with_arg[name] = schema
    return {
        "description": "A transform: a bare name, or a single-key table {name = argument}.",
        "anyOf": [
            {"type": "string", "enum": bare},
            {
                "type": "object",
                "properties": with_arg,
                "additionalProperties": False,
                "minProperties": 1,
                "maxProperties": 1,
            },
        ],
    }


TransformCall = Annotated[Step, PlainValidator(_parse_transform), WithJsonSchema(transform_schema())]
Pipeline = Annotated[list[TransformCall], Field(default_factory=list)]


def _path_shorthand(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


def _key_shorthand(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FilterModel(_Model):
    """One record-filter condition on a canonical field; all of an app's conditions must hold."""

    field: str = Field(description="canonical field the condition tests")
    op: Op = Field(description="eq | ne | in | not_in | present | absent")
    value: Annotated[
        Any,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": ["string", "number", "integer", "boolean"]},
                    {"type": "array", "items": {"type": ["string", "number", "integer", "boolean"]}},
                ]
            }
        ),
    ] = Field(default=None, description="a value for eq/ne, a list for in/not_in, omitted for present/absent")


class AppModel(_Model):
    """An app taking part in the sync (its name refers to an app defined in config.toml)."""

    object: str = Field(min_length=1, description="the connector's object type, e.g. 'contacts'")
    filter: list[FilterModel] = Field(
        default_factory=list, description="only records matching every condition take part in this app"
    )


class ConflictModel(_Model):
    """How a conflict (a field changed to different values in several apps) is decided.

    `newest` orders the values by the time each app stamped its record. An app that stamps
    whole seconds (Mailchimp's `last_changed`) cannot order two edits made within the same
    second: such a tie goes to the app listed first in `priority`.
    """

    policy: PolicyName = Field(description="owner | priority | newest | review")
    owner: str | None = Field(default=None, description="the app whose value wins (policy = 'owner')")
    priority: list[str] | None = Field(
        default=None,
        description="every app, most trusted first (policy = 'priority'; tie-break for 'newest')",
    )


class DeleteModel(_Model):
    """What a delete in one app does to the linked records in the other apps."""

    policy: DeletePolicy = Field(default="unlink", description="propagate | archive | unlink | ignore")
    mass_delete_threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="a full listing that lost more than this share of linked records stops delete propagation"
        " (0 < x <= 1)",
    )


class AppFieldModel(_Model):
    """Where a canonical field lives in one app and how its values are translated."""

    path: str = Field(min_length=1, description="dotted path into the app record, e.g. 'properties.email'")
    direction: Direction = Field(
        default="both", description="both | in (app -> canonical) | out (canonical -> app)"
    )
    inbound: Pipeline = Field(description="transforms from the app value to the canonical value")
    outbound: Pipeline = Field(description="transforms from the canonical value to the app value")


AppFieldEntry = Annotated[
    AppFieldModel, BeforeValidator(_path_shorthand, json_schema_input_type=str | AppFieldModel)
]


class FieldModel(_Model):
    """A canonical field: its canonical form, kind, conflict override and per-app locations."""

    transforms: Pipeline = Field(description="canonical form, applied to values from every app after inbound")
    kind: Kind = Field(default="scalar", description="scalar | set (a sorted list of unique strings)")
    consent: bool = Field(default=False, description="a boolean consent field: an unsubscribe always wins")
    conflict: ConflictModel | None = Field(default=None, description="overrides the file's conflict policy")
    apps: dict[str, AppFieldEntry] = Field(
        description="app name -> path string (two-way) or a table with path, direction, inbound, outbound",
        json_schema_extra={"propertyNames": {"pattern": NAME_PATTERN}, "minProperties": 1},
    )


class MappingFile(_Model):
    """A mapping file: one synced entity type across several apps."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        title="syncd mapping file",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    name: str = Field(pattern=NAME_PATTERN, description="sync name")
    key: Annotated[list[str], BeforeValidator(_key_shorthand, json_schema_input_type=str | list[str])] = (
        Field(description="canonical field (or list of fields) that matches records across apps")
    )
    initial_conflict: InitialConflict = Field(
        default="review",
        description="when a pre-existing record is first matched and values differ: review | policy",
    )
    apps: dict[str, AppModel] = Field(
        description="the apps taking part (at least 2)",
        json_schema_extra={"propertyNames": {"pattern": NAME_PATTERN}, "minProperties": 2},
    )
    conflict: ConflictModel = Field(
        default_factory=lambda: ConflictModel(policy="review"), description="default conflict policy"
    )
    delete: DeleteModel = Field(default_factory=DeleteModel, description="delete policy")
    fields: dict[str, FieldModel] = Field(
        description="canonical fields",
        json_schema_extra={"propertyNames": {"pattern": FIELD_PATTERN}, "minProperties": 1},
    )
