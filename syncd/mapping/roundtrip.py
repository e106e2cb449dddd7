"""Round-trip check for two-way fields: an app value must survive app -> canonical -> app.

A two-way field whose pipelines lose information (a many-to-one value map, ``lower`` or
``title`` on the way in only) makes the engine rewrite the app's value, or flip it back and forth
between apps forever. The check pushes probe values through the pipelines: generic text, blanks,
and values derived from the transforms themselves (map keys, sample dates in the input format,
phone numbers, separated lists). Values are compared after the field's canonical transforms and
as text, so differences the canonical form declares meaningless (case in an email, phone
formatting, ``42`` versus ``"42"``) are not reported.
"""

from __future__ import annotations

import collections.abc as cabc
from typing import Any

from .compiled import AppField, FieldSpec, run
from .transforms import TRANSFORMS, as_text, map_keys, yields_bool

GENERIC_PROBES: tuple[str, ...] = (
    "Hello World",
    "hello world",
    "HELLO WORLD",
    "McDonald",
    "Ünïcödé Ωmega",
)
SET_PROBES: tuple[list[str], ...] = (["alpha", "beta"], ["Hello World"], [])


def _loose(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_loose(v) for v in value)
    if isinstance(value, str | bool | int | float):
        return as_text(value)
    return value


def _show(value: Any) -> str:
    return "None" if value is None else repr(value)


def app_probes(spec: FieldSpec, app_field: AppField) -> list[Any]:
    """App values to try: blanks, values the first pipeline's transforms suggest, generic text."""
    steps = app_field.inbound or spec.transforms
    derived: list[Any] = []
    for step in steps:
        probes = TRANSFORMS[step.name].probes
        if probes is not None:
            derived.extend(probes(step.arg))
    takes_lists = spec.kind == "set" and not any(step.name == "split" for step in steps)
    if takes_lists:
        candidates: list[Any] = [None, *SET_PROBES, *([p] for p in derived if isinstance(p, str))]
    else:
        candidates = [None, "", *derived, *GENERIC_PROBES]
    unique: list[Any] = []
    for candidate in candidates:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def _canonical_probes(spec: FieldSpec, app_field: AppField, from_app: list[Any]) -> list[Any]:
    """Canonical values to try: those the app's probes produce, plus the outbound map's keys."""
    boolean = spec.consent or any(yields_bool(s) for s in (*spec.transforms, *app_field.inbound))
    values = list(from_app)
    for step in app_field.outbound:
        if step.name == "map":
            for key in map_keys(step.arg):
                if boolean and key in ("true", "false"):
                    values.append(key == "true")
                else:
                    values.append(key)
    unique: list[Any] = []
    for value in values:
        # Only values that are already canonical can be held in the canonical record.
        if _loose(spec.canonical(value)) == _loose(value) and value not in unique:
            unique.append(value)
    return unique


def _advice(spec: FieldSpec, app_field: AppField) -> str:
    steps = (*app_field.inbound, *app_field.outbound)
    fix = (
        "fix the map"
        if any(s.name == "map" for s in steps)
        else "make the outbound transforms undo the inbound ones"
    )
    if any(s.name in ("lower", "upper", "title") for s in app_field.inbound):
        fix += f" (or add the same normalisation to fields.{spec.name}.transforms)"
    return f'declare the field one-way (direction = "in" or "out") or {fix}'


def check_round_trip(
    spec: FieldSpec, app_field: AppField, field_specs: cabc.Mapping[str, FieldSpec]
) -> str | None:
    """A message describing the first probe that does not survive the round trip, else ``None``."""
    probes = app_probes(spec, app_field)
    canonical_seen: list[Any] = []
    for probe in probes:
        canonical = spec.canonical(run(app_field.inbound, probe))
        canonical_seen.append(canonical)
        record = {spec.name: canonical}
        for other in app_field.join_fields:
            other_field = field_specs[other].apps.get(app_field.app)
            if other_field is None or not other_field.readable or other_field.path != app_field.path:
                # The joined value depends on fields this app does not supply: not decidable here.
                return None
            record[other] = field_specs[other].canonical(run(other_field.inbound, probe))
        back = app_field.outbound_value(record)
        if _loose(spec.canonical(back)) != _loose(spec.canonical(probe)):
            return (
                f"two-way field is not round-trip stable: app value {_show(probe)} -> canonical "
                f"{_show(canonical)} -> app value {_show(back)}; {_advice(spec, app_field)}"
            )
    if app_field.join_fields:
        return None
    for canonical in _canonical_probes(spec, app_field, canonical_seen):
        remote = run(app_field.outbound, canonical)
        again = spec.canonical(run(app_field.inbound, remote))
        if _loose(again) != _loose(canonical):
            return (
                f"two-way field is not round-trip stable: canonical {_show(canonical)} -> app value "
                f"{_show(remote)} -> canonical {_show(again)}; {_advice(spec, app_field)}"
            )
    return None
