"""Whole-file checks and compilation of a validated ``MappingFile`` into a runtime ``Mapping``.

The pydantic model has already checked shapes, types and enumerations. Here come the checks that
relate parts of the file to each other (and to ``config.toml``'s apps): the key field is two-way
in every app, owners and priorities name real apps, filters name real fields, no two fields
fight over one app path, consent fields are booleans, and two-way fields survive a round trip.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from types import MappingProxyType
from typing import Any

from .compiled import AppField, AppSpec, Condition, ConflictPolicy, FieldSpec, Mapping
from .errors import MappingError, Problems
from .model import FIELD_PATTERN, NAME_PATTERN, ConflictModel, FieldModel, MappingFile
from .paths import split_path
from .roundtrip import check_round_trip
from .transforms import TRANSFORMS, Step, suggest, yields_bool

_NAME = re.compile(NAME_PATTERN)
_FIELD = re.compile(FIELD_PATTERN)
# Transforms that touch text only, so they keep a boolean produced before them.
_TEXT_ONLY = frozenset({"trim", "lower", "upper", "title", "collapse_whitespace", "e164", "email"})

Path = tuple[str | int, ...]
# Returned by a check that found (and reported) a bad filter value.
_INVALID: Any = object()


def compile_mapping(model: MappingFile, source: str, known_apps: Collection[str] | None = None) -> Mapping:
    """Check the file as a whole and build the runtime mapping; raises ``MappingError``."""
    problems = Problems(source)
    mapping = _Compiler(model, source, problems, known_apps).build()
    if problems or mapping is None:
        raise MappingError(problems.items)
    return mapping


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int | float)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _ends_boolean(steps: Sequence[Step]) -> bool:
    for step in reversed(steps):
        if step.name in _TEXT_ONLY or (step.name == "default" and isinstance(step.arg, bool)):
            continue
        return yields_bool(step)
    return False


class _Compiler:
    def __init__(
        self, model: MappingFile, source: str, problems: Problems, known_apps: Collection[str] | None
    ) -> None:
        self.model = model
        self.source = source
        self.problems = problems
        self.known_apps = known_apps
        self.app_names = tuple(model.apps)
        self.field_names = tuple(model.fields)
        self.priority_declared = model.conflict.priority is not None
        self.default_policy = ConflictPolicy("review", None, self.app_names)

    def add(self, path: Path, message: str) -> None:
        self.problems.add(path, message)

    def build(self) -> Mapping | None:
        self._check_apps()
        self.default_policy = self._policy(("conflict",), self.model.conflict, None, self.app_names, None)
        specs: dict[str, FieldSpec] = {}
        for name, field_model in self.model.fields.items():
            specs[name] = self._field(name, field_model)
        self._check_key()
        filters = {app: self._filters(app, specs) for app in self.app_names}
        self._check_writers(specs)
        self._check_coverage(specs)
        self._check_round_trips(specs)
        if self.problems:
            return None
        app_specs = {
            app: AppSpec(
                name=app,
                object=self.model.apps[app].object,
                filters=filters[app],
                fields=tuple(spec.apps[app] for spec in specs.values() if app in spec.apps),
            )
            for app in self.app_names
        }
        return Mapping(
            name=self.model.name,
            source=self.source,
            apps=self.app_names,
            fields=self.field_names,
            key_fields=tuple(self.model.key),
            initial_conflict=self.model.initial_conflict,
            delete_policy=self.model.delete.policy,
            mass_delete_threshold=self.model.delete.mass_delete_threshold,
            app_specs=MappingProxyType(app_specs),
            field_specs=MappingProxyType(specs),
        )

    def _unknown_app(self, app: str) -> str:
        return f"unknown app {app!r}{suggest(app, self.app_names)} (apps are declared under [apps])"

    def _unknown_field(self, name: str) -> str:
        return f"unknown field {name!r}{suggest(name, self.field_names)}"

    # --- apps ----------------------------------------------------------------------------------

    def _check_apps(self) -> None:
        if len(self.app_names) < 2:
            self.add(("apps",), f"expected at least 2 apps, got {len(self.app_names)}")
        for app in self.app_names:
            if not _NAME.fullmatch(app):
                self.add(("apps", app), "invalid app name: use lowercase letters, digits, '_' and '-'")
            elif self.known_apps is not None and app not in self.known_apps:
                known = sorted(self.known_apps)
                self.add(
                    ("apps", app), f"unknown app {app!r}: not defined in config.toml{suggest(app, known)}"
                )

    # --- conflict policies ---------------------------------------------------------------------

    def _policy(
        self,
        path: Path,
        model: ConflictModel,
        field: str | None,
        scope: Sequence[str],
        inherited: tuple[str, ...] | None,
    ) -> ConflictPolicy:
        owner = model.owner
        if model.policy == "owner" and owner is None:
            self.add(path, 'policy "owner" needs owner = "<app>"')
        elif model.policy != "owner" and owner is not None:
            self.add(
                (*path, "owner"), f'owner is only used with policy = "owner" (policy is {model.policy!r})'
            )
        elif owner is not None and owner not in self.model.apps:
            self.add((*path, "owner"), self._unknown_app(owner))
        elif owner is not None and field is not None and owner not in scope and len(scope) > 1:
            # Only matters when a conflict can happen: two or more apps supply the field.
            self.add(
                (*path, "owner"), f"owner {owner!r} does not read field {field!r} (direction both or in)"
            )
        if model.priority is None:
            if model.policy == "priority" and inherited is None:
                self.add(
                    path, 'policy "priority" needs priority = [...] listing every app, most trusted first'
                )
            priority = inherited if inherited is not None else self.app_names
        else:
            priority = self._priority(path, model.priority, scope)
        return ConflictPolicy(model.policy, owner if model.policy == "owner" else None, priority)

    def _priority(self, path: Path, declared: list[str], scope: Sequence[str]) -> tuple[str, ...]:
        seen: list[str] = []
        for i, app in enumerate(declared):
            if app not in self.model.apps:
                self.add((*path, "priority", i), self._unknown_app(app))
            elif app in seen:
                self.add((*path, "priority", i), f"app {app!r} is listed twice")
            else:
                seen.append(app)
        missing = [app for app in scope if app not in seen]
        if missing:
            names = ", ".join(repr(app) for app in missing)
            self.add((*path, "priority"), f"every app must appear in the priority list; missing {names}")
        # Apps outside the scope (not reading the field) go last, so the tuple always names every app.
        return (*seen, *(app for app in self.app_names if app not in seen))

    # --- fields --------------------------------------------------------------------------------

    def _field(self, name: str, model: FieldModel) -> FieldSpec:
        path: Path = ("fields", name)
        if not _FIELD.fullmatch(name):
            self.add(
                path,
                "invalid field name: use lowercase letters, digits and '_', starting with a letter or '_'",
            )
        if not model.apps:
            self.add((*path, "apps"), "expected at least one app")
        self._check_steps((*path, "transforms"), model.transforms, "canonical")
        apps: dict[str, AppField] = {}
        for app, app_model in model.apps.items():
            app_path: Path = (*path, "apps", app)
            if app not in self.model.apps:
                self.add(app_path, self._unknown_app(app))
                continue
            try:
                split_path(app_model.path)
            except ValueError:
                self.add(
                    (*app_path, "path"),
                    f"invalid path {app_model.path!r}: expected dotted keys such as 'properties.email'",
                )
            self._check_steps((*app_path, "inbound"), app_model.inbound, "inbound")
            self._check_steps((*app_path, "outbound"), app_model.outbound, "outbound")
            if app_model.direction == "in" and app_model.outbound:
                self.add((*app_path, "outbound"), 'outbound transforms are never used with direction = "in"')
            if app_model.direction == "out" and app_model.inbound:
                self.add((*app_path, "inbound"), 'inbound transforms are never used with direction = "out"')
            apps[app] = AppField(
                field=name,
                app=app,
                path=app_model.path,
                direction=app_model.direction,
                inbound=tuple(app_model.inbound),
                outbound=tuple(app_model.outbound),
            )
        if model.consent:
            self._check_consent(name, model, apps)
        readers = tuple(app for app, app_field in apps.items() if app_field.readable)
        if model.conflict is not None:
            inherited = self.default_policy.priority if self.priority_declared else None
            conflict = self._policy((*path, "conflict"), model.conflict, name, readers, inherited)
        else:
            conflict = self.default_policy
            owner = conflict.owner
            if owner is not None and owner in self.model.apps and owner not in readers and len(readers) > 1:
                self.add(
                    path,
                    f"the default conflict owner {owner!r} does not read this field;"
                    f" give it its own policy in fields.{name}.conflict",
                )
        return FieldSpec(
            name=name,
            kind=model.kind,
            consent=model.consent,
            transforms=tuple(model.transforms),
            conflict=conflict,
            apps=MappingProxyType(apps),
        )

    def _check_steps(self, path: Path, steps: Sequence[Step], where: str) -> None:
        for i, step in enumerate(steps):
            if TRANSFORMS[step.name].outbound_only and (where != "outbound" or i != 0):
                self.add((*path, i), f"{step.name} is only allowed as the first outbound transform")
            if step.name == "join_name":
                for other in step.arg:
                    if other not in self.model.fields:
                        self.add((*path, i), f"join_name: {self._unknown_field(other)}")

    def _check_consent(self, name: str, model: FieldModel, apps: dict[str, AppField]) -> None:
        if model.kind == "set":
            self.add(("fields", name, "kind"), "a consent field holds one boolean, so it cannot be a set")
        for app, app_field in apps.items():
            if app_field.readable and not _ends_boolean((*app_field.inbound, *model.transforms)):
                self.add(
                    ("fields", name, "apps", app, "inbound"),
                    f'consent field {name!r} must have boolean values: add "bool" to fields.{name}.transforms'
                    " or map this app's values to true/false",
                )

    # --- key -----------------------------------------------------------------------------------

    def _check_key(self) -> None:
        keys = self.model.key
        if not keys:
            self.add(("key",), "expected at least one key field")
        for i, key in enumerate(keys):
            path: Path = ("key",) if len(keys) == 1 else ("key", i)
            field = self.model.fields.get(key)
            if key in keys[:i]:
                self.add(path, f"key field {key!r} is listed twice")
                continue
            if field is None:
                self.add(path, self._unknown_field(key))
                continue
            if field.kind == "set":
                self.add(path, f"key field {key!r} must be a scalar field, not a set")
            for app in self.app_names:
                app_field = field.apps.get(app)
                if app_field is None:
                    self.add(
                        ("fields", key, "apps"),
                        f"key field {key!r} must be mapped in every app; it is not mapped in {app!r}",
                    )
                elif app_field.direction != "both":
                    self.add(
                        ("fields", key, "apps", app, "direction"),
                        f'key field {key!r} must be two-way (direction = "both") in every app',
                    )

    # --- filters -------------------------------------------------------------------------------

    def _filters(self, app: str, specs: dict[str, FieldSpec]) -> tuple[Condition, ...]:
        conditions: list[Condition] = []
        for i, condition in enumerate(self.model.apps[app].filter):
            path: Path = ("apps", app, "filter", i)
            spec = specs.get(condition.field)
            if spec is None:
                self.add((*path, "field"), self._unknown_field(condition.field))
                continue
            value = self._filter_value(path, condition.op, condition.value, spec)
            if value is not _INVALID:
                conditions.append(Condition(condition.field, condition.op, value))
        return tuple(conditions)

    def _filter_value(self, path: Path, op: str, value: Any, spec: FieldSpec) -> Any:
        value_path: Path = (*path, "value")
        if op in ("present", "absent"):
            if value is not None:
                self.add(value_path, f"op {op!r} takes no value")
                return _INVALID
            return None
        if op in ("eq", "ne"):
            if value is None:
                self.add(path, f"op {op!r} needs a value")
                return _INVALID
            if not _is_scalar(value):
                self.add(
                    value_path, f"expected a string, number or boolean for op {op!r}, got {_show(value)}"
                )
                return _INVALID
            values = [value]
        else:
            if not isinstance(value, list) or not value:
                self.add(path if value is None else value_path, f"op {op!r} needs a non-empty list of values")
                return _INVALID
            bad = [v for v in value if not _is_scalar(v)]
            if bad:
                self.add(value_path, f"expected strings, numbers or booleans, got {_show(bad[0])}")
                return _INVALID
            values = value
        canonical = [spec.canonical_item(v) for v in values]
        if any(v is None for v in canonical):
            self.add(
                value_path,
                'a filter value is empty once canonicalised; use op = "absent" to match empty values',
            )
            return _INVALID
        return canonical[0] if op in ("eq", "ne") else tuple(canonical)

    # --- app paths -----------------------------------------------------------------------------

    def _check_writers(self, specs: dict[str, FieldSpec]) -> None:
        for app in self.app_names:
            by_path: dict[str, list[AppField]] = {}
            for spec in specs.values():
                app_field = spec.apps.get(app)
                if app_field is not None and app_field.writable:
                    by_path.setdefault(app_field.path, []).append(app_field)
            for app_path, writers in by_path.items():
                first = writers[0]
                for other in writers[1:]:
                    if not first.join_fields or first.join_fields != other.join_fields:
                        self.add(
                            ("fields", other.field, "apps", app, "path"),
                            f"fields {first.field!r} and {other.field!r} both write {app_path!r} in app"
                            f" {app!r}; both must use the same join_name"
                            ' (or make one of them direction = "in")',
                        )
            for outer, outer_writers in by_path.items():
                for inner, inner_writers in by_path.items():
                    if inner.startswith(outer + "."):
                        self.add(
                            ("fields", inner_writers[0].field, "apps", app, "path"),
                            f"path {inner!r} lies inside {outer!r}, which field {outer_writers[0].field!r}"
                            f" also writes in app {app!r}",
                        )

    def _check_coverage(self, specs: dict[str, FieldSpec]) -> None:
        for app in self.app_names:
            if not any(app in spec.apps for spec in specs.values()):
                self.add(("apps", app), f"no field is mapped to app {app!r}")

    def _check_round_trips(self, specs: dict[str, FieldSpec]) -> None:
        for name, spec in specs.items():
            for app, app_field in spec.apps.items():
                if app_field.direction != "both" or any(f not in specs for f in app_field.join_fields):
                    continue
                message = check_round_trip(spec, app_field, specs)
                if message is not None:
                    self.add(("fields", name, "apps", app), message)
