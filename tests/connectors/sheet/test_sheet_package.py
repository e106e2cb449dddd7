"""The package surface and the settings: what syncd and its admins may rely on."""

from __future__ import annotations

import os
from pathlib import Path

import pydantic
import pytest

import syncd_sheet
from syncd.connector import CONNECTOR_API_VERSION, available, load
from syncd_sheet import SheetConnector, SheetSettings


def test_public_names_are_exactly_the_sorted_all() -> None:
    public = sorted(name for name in vars(syncd_sheet) if not name.startswith("_"))
    assert syncd_sheet.__all__ == sorted(syncd_sheet.__all__)
    assert public == syncd_sheet.__all__


def test_connector_is_registered_as_sheet() -> None:
    assert "sheet" in available()
    assert load("sheet") is SheetConnector
    assert SheetConnector.api_version == CONNECTOR_API_VERSION
    assert not SheetConnector.capabilities.webhooks


def test_a_relative_path_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = SheetSettings(path=Path("data/people.csv"))
    monkeypatch.chdir(os.sep)
    assert settings.path == tmp_path / "data" / "people.csv"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"path": "people.ods"}, "not a spreadsheet this connector reads"),
        ({"path": "people.csv", "sheet": "People"}, "a CSV file has only one"),
        ({"path": "people.xlsx", "key_column": "syncd_id"}, "name the same column"),
        ({"path": "people.csv", "delimiter": ";;"}, "at most 1 character"),
    ],
)
def test_settings_that_cannot_work_are_refused(settings: dict[str, str], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        SheetSettings.model_validate(settings)


def test_the_object_names_its_id_column_and_natural_key(tmp_path: Path) -> None:
    own = SheetConnector(SheetSettings(path=tmp_path / "a.csv"))
    keyed = SheetConnector(SheetSettings(path=tmp_path / "a.xlsx", key_column="email", batch_size=50))
    assert own.object_type("rows").primary_key == "syncd_id"
    assert keyed.object_type("rows").primary_key == "email"
    assert keyed.object_type("rows").natural_keys == ("email",)
    assert keyed.capabilities.batch_size == 50
