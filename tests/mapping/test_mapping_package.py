"""The package as others see it: examples load, schema.json is current, docs and API do not drift."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import get_args

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
from pydantic import BaseModel

import syncd.mapping
from syncd.mapping import load_mappings
from syncd.mapping.model import MappingFile
from syncd.mapping.schema import main, render_schema
from syncd.mapping.transforms import TRANSFORMS

from ._support import KNOWN_APPS, MAPPINGS

EXAMPLES = sorted(MAPPINGS.glob("*.toml"))


def test_example_mappings_load_cleanly_against_the_configured_apps() -> None:
    assert [p.name for p in EXAMPLES] == ["contacts.toml", "customers.toml", "users.toml"]
    mappings = load_mappings(EXAMPLES, known_apps=KNOWN_APPS)
    assert [m.name for m in mappings] == ["contacts", "customers", "users"]


def test_committed_schema_json_is_current() -> None:
    committed = (MAPPINGS / "schema.json").read_text(encoding="utf-8")
    assert committed == render_schema(), "mappings/schema.json is stale: run python -m syncd.mapping.schema"


def test_schema_command_writes_the_file_and_check_mode_detects_staleness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "schema.json"
    assert main(["--check", str(target)]) == 1
    assert main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render_schema()
    assert main(["--check", str(target)]) == 0
    target.write_text("{}\n", encoding="utf-8")
    assert main(["--check", str(target)]) == 1
    assert "is stale" in capsys.readouterr().err


def test_schema_accepts_the_examples_and_rejects_an_unknown_transform() -> None:
    schema = json.loads(render_schema())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert list(validator.iter_errors(data)) == [], path.name
    data = tomllib.loads((MAPPINGS / "contacts.toml").read_text(encoding="utf-8"))
    data["fields"]["phone"]["transforms"] = ["e164x"]
    assert list(validator.iter_errors(data))


def test_readme_documents_every_transform_and_every_key() -> None:
    readme = (MAPPINGS / "README.md").read_text(encoding="utf-8")
    for name in TRANSFORMS:
        assert f"| `{name}` |" in readme, f"transform {name!r} is not in the README's table"
    keys: set[str] = set()
    pending: list[type[BaseModel]] = [MappingFile]
    while pending:
        model = pending.pop()
        for key, field in model.model_fields.items():
            keys.add(key)
            for candidate in _models_in(field.annotation):
                pending.append(candidate)
    for key in sorted(keys):
        spellings = (f"`{key}`", f"{key} =", f"[{key}.", f"[{key}]", f".{key}]", f"`{key}.")
        assert any(s in readme for s in spellings), f"key {key!r} is not documented"


def _models_in(annotation: object) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in get_args(annotation):
        found.extend(_models_in(arg))
    return found


def test_public_api_is_exactly_the_sorted_all() -> None:
    assert syncd.mapping.__all__ == sorted(syncd.mapping.__all__)
    assert set(syncd.mapping.__all__) == {
        "ConflictPolicy",
        "Mapping",
        "MappingError",
        "load_mapping",
        "load_mappings",
        "parse_mapping",
    }
    for name in syncd.mapping.__all__:
        assert getattr(syncd.mapping, name).__module__.startswith("syncd.mapping.")


def test_importing_the_package_pulls_in_no_network_or_database_library() -> None:
    forbidden = [
        "aiohttp",
        "httpx",
        "sqlite3",
        "sqlite_utils",
        "dns",
        "asyncio",
        "http.client",
        "urllib.request",
    ]
    code = f"import sys, syncd.mapping; print([m for m in {forbidden!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
