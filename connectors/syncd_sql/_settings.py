"""Settings of the ``sql`` connector: which database, which table, and which columns mean what."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from syncd.connector import ConnectorConfig


class SqlSettings(ConnectorConfig):
    """One table in one database, synced as one object type named after the table.

    Column names are checked against the live schema when the connector first touches the
    database (or in ``check()``), not here: the settings alone cannot know the table.
    """

    url: str = Field(
        min_length=1,
        description="Database URL, e.g. sqlite:///data/app.db (a relative path is relative to the "
        "folder of the config file, sqlite:////abs/path.db for absolute ones). Only SQLite is supported so far.",
    )
    table: str = Field(min_length=1, description="The table to sync; also the object type's name.")
    primary_key: str = Field(
        default="id", min_length=1, description="A unique column; its value (as text) is the record id."
    )
    updated_at: str | None = Field(
        default=None,
        min_length=1,
        description="Last-modified column (ISO-8601 text or epoch numbers): the incremental cursor and "
        "the record version. Without it every read is a full listing and versions are content hashes.",
    )
    deleted_at: str | None = Field(
        default=None,
        min_length=1,
        description="Soft-delete column: a row with a non-NULL value is deleted. Deletes then set it "
        "instead of removing the row, and incremental reads report such rows as tombstones.",
    )
    batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Most write items applied in one transaction."
    )
    page_size: int = Field(default=1000, ge=1, le=100_000, description="Rows per page of a read.")
    create_table: bool = Field(
        default=False,
        description="Let syncd own the table: create it when missing and add a column for any field "
        "written that it lacks. Leave off for your product's own tables.",
    )
    overlap_seconds: float = Field(
        default=2.0,
        ge=0,
        le=86_400,
        description="The longest a writer takes between stamping updated_at and committing: incremental "
        "reads re-read rows stamped this long before the previous read began, to catch rows committed "
        "late with an older stamp. Raise it if your writers hold long transactions (or stamp rows with "
        "a clock behind this machine's).",
    )
    busy_timeout_seconds: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="How long to wait for a lock held by another writer before a transient error.",
    )

    @field_validator("url")
    @classmethod
    def _relative_to_config(cls, url: str, info: ValidationInfo) -> str:
        """A relative SQLite path is taken from the config file's folder, never the working directory."""
        prefix = "sqlite:///"
        base = (info.context or {}).get("base_dir")
        if base is None or not url.lower().startswith(prefix):
            return url
        rest = url[len(prefix) :]
        if not rest or rest.startswith(":") or Path(rest).is_absolute():
            return url
        return prefix + str((Path(base) / rest).absolute())

    @model_validator(mode="after")
    def _distinct_roles(self) -> Self:
        roles = {
            "primary_key": self.primary_key,
            "updated_at": self.updated_at,
            "deleted_at": self.deleted_at,
        }
        named = [(role, column) for role, column in roles.items() if column is not None]
        for index, (role, column) in enumerate(named):
            for other_role, other in named[index + 1 :]:
                if column == other:
                    raise ValueError(f"{role} and {other_role} name the same column {column!r}")
        return self
