"""Mapping files: how each app's record fields translate to canonical fields and back.

``load_mapping`` reads and validates one TOML mapping file into an immutable ``Mapping``;
``load_mappings`` loads several and reports every problem of every file in one ``MappingError``.
The package does no network or database I/O (it only reads the files it is given).
"""

from .compiled import ConflictPolicy, Mapping
from .errors import MappingError
from .load import load_mapping, load_mappings, parse_mapping

__all__ = [
    "ConflictPolicy",
    "Mapping",
    "MappingError",
    "load_mapping",
    "load_mappings",
    "parse_mapping",
]
