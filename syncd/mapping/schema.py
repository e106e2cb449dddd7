"""Export the JSON Schema of mapping files to ``mappings/schema.json``.

Editors that understand JSON Schema for TOML (Even Better TOML / taplo, via a ``#:schema``
comment) then check mapping files as they are typed. Run ``python -m syncd.mapping.schema`` to
write the file, or with ``--check`` to fail when the committed file is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .model import MappingFile, transform_schema

DEFAULT_PATH = Path("mappings") / "schema.json"


def _share_transform_schema(node: Any, shared: dict[str, Any]) -> Any:
    """Replace each inline copy of the transform schema by a reference to one definition."""
    if node == shared:
        return {"$ref": "#/$defs/Transform"}
    if isinstance(node, dict):
        return {key: _share_transform_schema(value, shared) for key, value in node.items()}
    if isinstance(node, list):
        return [_share_transform_schema(value, shared) for value in node]
    return node


def build_schema() -> dict[str, Any]:
    """The JSON Schema of a mapping file."""
    shared = transform_schema()
    schema: dict[str, Any] = _share_transform_schema(MappingFile.model_json_schema(), shared)
    schema.setdefault("$defs", {})["Transform"] = shared
    return schema


def render_schema() -> str:
    """The schema as the exact text committed to ``mappings/schema.json``."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m syncd.mapping.schema", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help="where to write the schema")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is missing or stale")
    args = parser.parse_args(argv)
    text = render_schema()
    path: Path = args.path
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            print(f"{path} is stale: run python -m syncd.mapping.schema", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
