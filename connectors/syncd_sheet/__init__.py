"""syncd's ``sheet`` connector: a CSV file or an XLSX worksheet as an app, one record per row.

Registered under the ``syncd.connectors`` entry-point group as ``sheet``; see
docs/connectors/sheet.md for settings, change detection, locking and limits.
"""

from ._connector import OBJECT, SheetConnector
from ._files import office_lock
from ._settings import SheetSettings

__all__ = ["OBJECT", "SheetConnector", "SheetSettings", "office_lock"]
