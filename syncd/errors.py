"""The errors syncd's core raises on purpose (connector errors live in ``syncd.connector``).

SyncdError
└── AdminError            an admin action that cannot be done as asked; nothing changed
    ├── ConflictNotFound  no conflict has that id              (CLI exit 1, admin API 404)
    ├── ConflictClosed    the conflict is resolved already      (CLI exit 1, admin API 409)
    ├── NotASide          the app named is not a side of it     (CLI exit 1, admin API 400)
    ├── RefusedValue      the value fails the field's checks    (CLI exit 2, admin API 400)
    ├── HoldNotFound      no held delete has that id            (CLI exit 1, admin API 404)
    └── HoldDecided       the held delete was decided already   (CLI exit 1, admin API 409)

ConfigFileError           the config file is missing, not TOML, or invalid (CLI exit 2); defined
                          here, where importing it costs nothing, and re-exported by ``syncd.settings``
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base of the errors syncd raises on purpose."""


class AdminError(SyncdError):
    """An admin action (CLI command, admin API call) that cannot be done as asked; the state is
    unchanged. The message says why, in words an admin can act on."""


class ConflictNotFound(AdminError):
    """No conflict has the id given."""

    def __init__(self, conflict_id: int) -> None:
        super().__init__(f"no conflict {conflict_id}")
        self.conflict_id = conflict_id


class ConflictClosed(AdminError):
    """The conflict was settled already (``status`` says how)."""

    def __init__(self, conflict_id: int, status: str) -> None:
        super().__init__(f"conflict {conflict_id} is already {status}")
        self.conflict_id = conflict_id
        self.status = status


class NotASide(AdminError):
    """The app named to take a value from is not one of the conflict's sides."""

    def __init__(self, conflict_id: int, app: str, sides: list[str]) -> None:
        super().__init__(f"{app!r} is not a side of conflict {conflict_id} (sides: {', '.join(sides)})")
        self.conflict_id = conflict_id
        self.app = app
        self.sides = sides


class RefusedValue(AdminError):
    """A value set by hand that the field's transforms and checks do not accept (nothing changed)."""


class HoldNotFound(AdminError):
    """No deletes held by the mass-delete guard have the id given."""

    def __init__(self, hold_id: int) -> None:
        super().__init__(f"no held deletes #{hold_id}")
        self.hold_id = hold_id


class HoldDecided(AdminError):
    """The held deletes were approved, rejected or cleared already (``status`` says which)."""

    def __init__(self, hold_id: int, status: str) -> None:
        super().__init__(f"held deletes #{hold_id} are already {status}")
        self.hold_id = hold_id
        self.status = status


class ConfigFileError(Exception):
    """The config file is missing, not TOML, or invalid. ``problems`` are ``file: key: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
