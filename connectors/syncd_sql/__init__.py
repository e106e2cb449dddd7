"""syncd's ``sql`` connector: sync a table of your own product's database (SQLite; PostgreSQL to follow).

Registered under the ``syncd.connectors`` entry-point group as ``sql``; see README.md for settings.
"""

from ._connector import ROWS_ALIAS, SqlConnector
from ._settings import SqlSettings

__all__ = ["ROWS_ALIAS", "SqlConnector", "SqlSettings"]
