"""The compiled mapping: what the engine asks of a validated mapping file at run time.

``Mapping`` translates app records to canonical values and back, tells which fields each app
reads and writes, computes the natural key and evaluates record filters. It is immutable and does
no I/O; it is built only by ``load.py`` after every check has passed.

Canonical values follow one convention everywhere: ``None`` means empty/cleared, blank strings
become ``None``, and a set field's value is a sorted list of unique strings.
"""

from __future__ import annotations

import collections.abc as cabc
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .model import DeletePolicy, Direction, InitialConflict, Kind, Op, PolicyName
from .paths import get_path, set_path
from .transforms import Step, as_text, refusal

# A transform that meets a value shape it was not written for must not stop a sync: the value is
# passed on unchanged (see run()).
_TOLERATED = (TypeError, ValueError, ArithmeticError, AttributeError, KeyError, IndexError)


def run(steps: Iterable[Step], value: Any) -> Any:
    """Apply ``steps`` in order; a step that fails on an odd value leaves that value unchanged."""
    for step in steps:
        try:
            value = step.fn(value)
        except _TOLERATED:
            continue
    return value


def canonical_form(value: Any, kind: Kind) -> Any:
    """Blank strings become ``None``; a set becomes a sorted list of unique, trimmed strings (or ``None``)."""
    if kind == "set":
        items = value if isinstance(value, list | tuple | set | frozenset) else [value]
        texts = {as_text(item).strip() for item in items if item is not None}
        texts.discard("")
        return sorted(texts) or None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equality that does not confuse ``True`` with ``1`` (Python's ``True == 1`` is true)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


@dataclass(frozen=True)
class ConflictPolicy:
    """How a conflict on a field is decided.

    ``owner`` is set only for the ``owner`` policy. ``priority`` lists apps most trusted first; it
    decides the ``priority`` policy and breaks ties for ``newest``. When the file declares none it
    is the apps in file order, so decisions stay deterministic.
    """

    policy: PolicyName
    owner: str | None
    priority: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppField:
    """One canonical field's location and pipelines in one app."""

    field: str
    app: str
    path: str
    direction: Direction
    inbound: tuple[Step, ...]
    outbound: tuple[Step, ...]

    @property
    def readable(self) -> bool:
        return self.direction in ("both", "in")

    @property
    def writable(self) -> bool:
        return self.direction in ("both", "out")

    @property
    def join_fields(self) -> tuple[str, ...]:
        """The canonical fields a leading ``join_name`` builds the app value from (else empty)."""
        if self.outbound and self.outbound[0].name == "join_name":
            return tuple(self.outbound[0].arg)
        return ()

    def outbound_value(self, canonical: cabc.Mapping[str, Any]) -> Any:
        """The app value for this field, computed from the canonical record."""
        if self.join_fields:
            first, rest = self.outbound[0], self.outbound[1:]
            return run(rest, first(tuple(canonical.get(name) for name in self.join_fields)))
        return run(self.outbound, canonical.get(self.field))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A canonical field: its kind, canonical transforms, conflict policy and app locations."""

    name: str
    kind: Kind
    consent: bool
    transforms: tuple[Step, ...]
    conflict: ConflictPolicy
    apps: cabc.Mapping[str, AppField]

    def canonical(self, value: Any) -> Any:
        """The canonical form of a value that has been through an app's inbound transforms."""
        return canonical_form(run(self.transforms, value), self.kind)

    def canonical_item(self, value: Any) -> Any:
        """The canonical form of one scalar (a set field's item, a filter value)."""
        if self.kind == "set":
            items = self.canonical([value])
            return items[0] if items else None
        return self.canonical(value)


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter condition, its values already in canonical form."""

    field: str
    op: Op
    value: Any

    def matches(self, value: Any, kind: Kind) -> bool:
        if self.op == "present":
            return value is not None
        if self.op == "absent":
            return value is None
        if kind == "set":
            items = list(value) if isinstance(value, list | tuple) else ([] if value is None else [value])
            wanted = list(self.value) if self.op in ("in", "not_in") else [self.value]
            hit = any(same_value(item, w) for item in items for w in wanted)
        elif self.op in ("in", "not_in"):
            hit = any(same_value(value, w) for w in self.value)
        else:
            hit = same_value(value, self.value)
        return hit if self.op in ("eq", "in") else not hit


@dataclass(frozen=True, slots=True)
class AppSpec:
    """An app in a mapping: its object type, record filter and field locations in file order."""

    name: str
    object: str
    filters: tuple[Condition, ...]
    fields: tuple[AppField, ...]


@dataclass(frozen=True, eq=False)
class Mapping:
    """A validated, compiled mapping file (immutable)."""

    name: str
    source: str
    apps: tuple[str, ...]
    fields: tuple[str, ...]
    key_fields: tuple[str, ...]
    initial_conflict: InitialConflict
    delete_policy: DeletePolicy
    mass_delete_threshold: float
    app_specs: cabc.Mapping[str, AppSpec] = field(repr=False)
    field_specs: cabc.Mapping[str, FieldSpec] = field(repr=False)

    def _app(self, app: str) -> AppSpec:
        try:
            return self.app_specs[app]
        except KeyError:
            raise KeyError(f"mapping {self.name!r} has no app {app!r}") from None

    def _field(self, name: str) -> FieldSpec:
        try:
            return self.field_specs[name]
        except KeyError:
            raise KeyError(f"mapping {self.name!r} has no field {name!r}") from None

    def object_of(self, app: str) -> str:
        return self._app(app).object

    def readable(self, app: str) -> tuple[str, ...]:
        """Canonical fields read from the app (direction both or in)."""
        return tuple(f.field for f in self._app(app).fields if f.readable)

    def writable(self, app: str) -> tuple[str, ...]:
        """Canonical fields written to the app (direction both or out)."""
        return tuple(f.field for f in self._app(app).fields if f.writable)

    def kind(self, field: str) -> Kind:
        return self._field(field).kind

    def is_consent(self, field: str) -> bool:
        return self._field(field).consent

    def conflict_policy(self, field: str) -> ConflictPolicy:
        return self._field(field).conflict

    def to_canonical(self, app: str, raw: cabc.Mapping[str, Any]) -> dict[str, Any]:
        """Canonical values of the readable fields whose path is present in the app record.

        A path absent from ``raw`` is left out (the app did not report it); a present ``None``
        or blank value is reported as ``None`` (cleared).
        """
        result: dict[str, Any] = {}
        for app_field in self._app(app).fields:
            if not app_field.readable:
                continue
            found, value = get_path(raw, app_field.path)
            if found:
                spec = self.field_specs[app_field.field]
                result[app_field.field] = spec.canonical(run(app_field.inbound, value))
        return result

    def to_remote(
        self, app: str, canonical: cabc.Mapping[str, Any], fields: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The app-shaped nested dict holding the app values of ``fields`` (default: all writable).

        Fields that are not writable to the app, or missing from ``canonical``, are left out.
        Fields sharing one app path through ``join_name`` produce that path once.
        """
        wanted = None if fields is None else set(fields)
        result: dict[str, Any] = {}
        done: set[str] = set()
        for app_field in self._app(app).fields:
            if not app_field.writable or app_field.path in done:
                continue
            if (wanted is not None and app_field.field not in wanted) or app_field.field not in canonical:
                continue
            set_path(result, app_field.path, app_field.outbound_value(canonical))
            done.add(app_field.path)
        return result

    def admin_value(self, field: str, value: Any) -> Any:
        """A value typed in by a person for ``field``, in canonical form; ValueError if invalid.

        It goes through the field's transforms like a value read from an app, except that a
        value a transform cannot handle (an unparseable phone number) is refused rather than
        passed on unchanged. ``None`` means empty.
        """
        spec = self._field(field)
        if canonical_form(value, spec.kind) is None:
            return None
        for step in spec.transforms:
            try:
                value = step.fn(value)
            except _TOLERATED as exc:
                raise ValueError(f"{field}: transform {step.name!r} cannot take {value!r}: {exc}") from None
            problem = refusal(step, value)
            if problem is not None:
                raise ValueError(f"{field}: {problem}")
        if spec.consent and value is not None and not isinstance(value, bool):
            raise ValueError(f"{field}: a consent field takes true or false, not {value!r}")
        return canonical_form(value, spec.kind)

    def key_of(self, canonical: cabc.Mapping[str, Any]) -> str | None:
        """The normalised natural key (key fields joined by ``\\x1f``); ``None`` if any part is empty."""
        parts: list[str] = []
        for name in self.key_fields:
            value = self.field_specs[name].canonical(canonical.get(name))
            if value is None:
                return None
            text = as_text(value).strip()
            if not text:
                return None
            parts.append(text)
        return "\x1f".join(parts)

    def key_path(self, app: str) -> str:
        """The dotted app path of the first key field."""
        self._app(app)
        return self.field_specs[self.key_fields[0]].apps[app].path

    def has_filters(self, app: str) -> bool:
        """Whether the app takes only some records (it declares filters)."""
        return bool(self._app(app).filters)

    def in_scope(self, app: str, canonical: cabc.Mapping[str, Any]) -> bool:
        """Whether a record with these canonical values takes part in the app (all filters hold)."""
        return all(
            condition.matches(canonical.get(condition.field), self.field_specs[condition.field].kind)
            for condition in self._app(app).filters
        )
