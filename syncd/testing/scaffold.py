"""``syncd connectors new NAME``: write a complete, working connector plugin package to start from.

The generated project has a ``pyproject.toml`` registering the connector under the
``syncd.connectors`` entry point, a ``syncd_<name>`` package with a settings model and a connector
speaking a simple JSON REST API through the SDK's HttpClient, an aiohttp fake of that API, and a
conformance test module that passes as generated. Templates live in ``scaffold_templates/``; a
path segment ``__package__`` becomes the package name, ``{{name}}``-style markers are filled in.
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_TEMPLATE_SUFFIX = ".tmpl"


def _markers(name: str) -> dict[str, str]:
    camel = "".join(part.capitalize() for part in name.split("_") if part)
    return {
        "{{name}}": name,
        "{{Class}}": camel,
        "{{package}}": f"syncd_{name}",
        "{{dist}}": f"syncd-{name.replace('_', '-')}",
    }


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` can be a connector name, an entry point and a module name."""
    if not _NAME.fullmatch(name) or name.endswith("_") or "__" in name:
        raise ValueError(
            f"connector name {name!r} must be 1-40 lower-case letters, digits and single underscores, "
            "starting with a letter (e.g. 'acme' or 'acme_crm')"
        )
    if keyword.iskeyword(name):
        raise ValueError(f"connector name {name!r} is a Python keyword")


def _templates(root: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Traversable]]:
    found: list[tuple[tuple[str, ...], Traversable]] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                found.extend(_templates(entry, (*prefix, entry.name)))
        elif entry.name.endswith(_TEMPLATE_SUFFIX):
            found.append(((*prefix, entry.name.removesuffix(_TEMPLATE_SUFFIX)), entry))
    return found


def scaffold(name: str, dest: Path) -> Path:
    """Write the plugin project ``syncd-<name>/`` under ``dest`` and return its path.

    Refuses (FileExistsError) to write into a non-empty directory, so nothing is overwritten.
    """
    check_name(name)
    markers = _markers(name)
    project = Path(dest) / markers["{{dist}}"]
    if project.exists() and any(project.iterdir()):
        raise FileExistsError(f"{project} already exists and is not empty")
    templates = _templates(resources.files("syncd.testing") / "scaffold_templates")
    if not templates:
        raise RuntimeError("the scaffold templates are missing from this syncd installation")
    for parts, template in templates:
        target = project.joinpath(*(markers["{{package}}"] if p == "__package__" else p for p in parts))
        text = template.read_text(encoding="utf-8")
        for marker, value in markers.items():
            text = text.replace(marker, value)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return project


__all__ = ["check_name", "scaffold"]
