"""docs/mapping-reference.md: current, complete, and generation fails on anything undocumented."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from syncd.demo import docs_gen
from syncd.mapping.schema import build_schema
from syncd.mapping.transforms import TRANSFORMS, TransformDef

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "mapping-reference.md"


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {docs_gen._code(heading)}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_committed_mapping_reference_is_current() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == docs_gen.render(), (
        "docs/mapping-reference.md is stale: run python -m syncd.demo.docs_gen"
    )


def test_every_key_of_every_mapping_model_has_a_row_in_its_section() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    paths = docs_gen.option_paths()
    assert len(paths) >= 20
    for model, key in paths:
        section = _section(text, docs_gen.SECTIONS[model].heading)
        assert f"\n| `{key}` |" in section, f"{model}.{key} is missing from its section"


def test_every_transform_is_listed_and_has_computed_examples() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    for name in TRANSFORMS:
        assert f"| [`{name}`](#{name}) |" in text
        block = text.split(f"\n### {name}\n", 1)[1].split("\n### ", 1)[0]
        rows = re.findall(r"^\| `.+` \| `.+` \| `.+` \|$", block, flags=re.M)
        assert rows, f"transform {name} has no example row"


def test_a_mapping_option_without_a_description_fails_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = copy.deepcopy(build_schema())
    schema["$defs"]["DeleteModel"]["properties"]["grace_days"] = {"type": "integer", "default": 0}
    monkeypatch.setattr(docs_gen, "build_schema", lambda: schema)
    with pytest.raises(docs_gen.UndocumentedError, match=r"DeleteModel\.grace_days has no description"):
        docs_gen.render()


def test_a_new_mapping_model_without_a_section_fails_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    schema: dict[str, Any] = copy.deepcopy(build_schema())
    schema["$defs"]["RetryModel"] = {"description": "retries", "properties": {}}
    monkeypatch.setattr(docs_gen, "build_schema", lambda: schema)
    with pytest.raises(docs_gen.UndocumentedError, match="RetryModel"):
        docs_gen.render()


def test_a_transform_without_an_example_fails_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = dict(TRANSFORMS)
    extra["reverse"] = TransformDef(lambda _arg: lambda v: v, "none", "reverse text")
    monkeypatch.setattr(docs_gen, "TRANSFORMS", extra)
    with pytest.raises(docs_gen.UndocumentedError, match="reverse"):
        docs_gen.render()


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "ref.md"
    stale.write_text("# old\n")
    assert docs_gen.main([str(stale), "--check"]) == 1
    assert docs_gen.main([str(stale)]) == 0
    assert docs_gen.main([str(stale), "--check"]) == 0
