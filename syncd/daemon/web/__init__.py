"""The review web page served by the daemon at ``/`` (see docs/admin-api.md, "Review web page").

Server-rendered pages behind a login (admin or read-only token, then a session cookie): status,
conflicts (single and bulk resolution, "always prefer app X"), dead letters, one customer, and a
live activity stream.
"""

from ._activity import ActivityLog, entry_view, recent_entries
from ._masking import mask_prose, mask_value
from ._review import ConflictFilter, MappingEditError, plan_resolution, prefer_edit, write_atomically
from ._routes import COOKIE, ReviewPage, WebBackend, is_page
from ._sessions import ADMIN, READONLY, Session, Sessions, role_for

__all__ = [
    "ADMIN",
    "COOKIE",
    "READONLY",
    "ActivityLog",
    "ConflictFilter",
    "MappingEditError",
    "ReviewPage",
    "Session",
    "Sessions",
    "WebBackend",
    "entry_view",
    "is_page",
    "mask_prose",
    "mask_value",
    "plan_resolution",
    "prefer_edit",
    "recent_entries",
    "role_for",
    "write_atomically",
]
