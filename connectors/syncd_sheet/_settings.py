"""Settings of the ``sheet`` connector: which file, which worksheet, and which column identifies a row."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from syncd.connector import ConnectorConfig

#: File name endings the connector reads, and the format each one means.
FORMATS: dict[str, Literal["csv", "xlsx"]] = {".csv": "csv", ".xlsx": "xlsx"}


class SheetSettings(ConnectorConfig):
    """One worksheet of one CSV or XLSX file, synced as the object type ``rows``.

    ``path`` is resolved when the settings are validated: a relative path is taken relative to the
    working directory of the process (the same rule as the ``sql`` connector's database URL), so
    later changes of directory do not move the file.
    """

    path: Path = Field(
        description="The .csv or .xlsx file. A relative path is relative to the working directory "
        "syncd runs in; prefer an absolute path for a service."
    )
    sheet: str | None = Field(
        default=None,
        min_length=1,
        description="Worksheet name (XLSX only); default the first worksheet.",
    )
    key_column: str | None = Field(
        default=None,
        min_length=1,
        description="A column whose value identifies a row (e.g. email). Without it the connector "
        "keeps its own ids in the id_column.",
    )
    id_column: str = Field(
        default="syncd_id",
        min_length=1,
        description="Column holding the connector's row ids when key_column is not set; added (hidden "
        "in XLSX) on the first write if the file lacks it.",
    )
    encoding: str = Field(
        default="utf-8", min_length=1, description="Text encoding of a CSV file (a UTF-8 BOM is kept)."
    )
    delimiter: str | None = Field(
        default=None,
        min_length=1,
        max_length=1,
        description="CSV field separator; by default the one of , ; TAB | found most in the header.",
    )
    batch_size: int = Field(
        default=500, ge=1, le=100_000, description="Most write items applied in one rewrite of the file."
    )
    page_size: int = Field(default=1000, ge=1, le=100_000, description="Records per page of a read.")
    lock_timeout_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="How long a write waits for another syncd process's lock on the file before a "
        "retryable error.",
    )

    @field_validator("path")
    @classmethod
    def _known_format(cls, path: Path) -> Path:
        if path.suffix.lower() not in FORMATS:
            known = ", ".join(FORMATS)
            raise ValueError(f"{path.name!r} is not a spreadsheet this connector reads (known: {known})")
        return path.expanduser().absolute()

    @model_validator(mode="after")
    def _sheet_only_for_xlsx(self) -> Self:
        if self.sheet is not None and self.format == "csv":
            raise ValueError("sheet names a worksheet, but a CSV file has only one")
        if self.key_column is not None and self.key_column == self.id_column:
            raise ValueError("key_column and id_column name the same column")
        return self

    @property
    def format(self) -> Literal["csv", "xlsx"]:
        return FORMATS[self.path.suffix.lower()]
