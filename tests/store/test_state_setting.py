"""The `state` setting: a SQLite path, or a postgresql:// URL with its password kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.settings import ConfigFileError, load_settings
from syncd.store.location import StateUrl


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_sqlite_state_path_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, 'state = "data/s.db"\n'))
    assert settings.state == tmp_path / "data/s.db"


def test_a_postgresql_state_gets_its_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_STATE_PASSWORD", "s3cret-from-env")
    settings = load_settings(config(tmp_path, 'state = "postgresql://syncd@db.internal:5432/syncd"\n'))
    assert isinstance(settings.state, StateUrl)
    assert settings.state == "postgresql://syncd@db.internal:5432/syncd"
    assert settings.state.password == "s3cret-from-env"
    assert "s3cret" not in str(settings.state) + repr(settings.state) + repr(settings)


def test_a_postgresql_state_password_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "pg.pass").write_text("from-file\n", encoding="utf-8")
    text = 'state = "postgresql://syncd@db/syncd"\nstate_password_file = "pg.pass"\n'
    settings = load_settings(config(tmp_path, text))
    assert isinstance(settings.state, StateUrl)
    assert settings.state.password == "from-file"


def test_syncd_state_in_the_environment_selects_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_STATE", "postgres://syncd@db/syncd")
    settings = load_settings(config(tmp_path, ""))
    assert isinstance(settings.state, StateUrl)
    assert settings.state.password is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://syncd:hunter2@db/syncd", "holds a password"),
        ("postgresql://syncd@db", "names no database"),
        ("mysql://syncd@db/syncd", "starts with postgresql://"),
        ("postgresql://syncd@db:port/syncd", "not a valid PostgreSQL URL"),
    ],
)
def test_a_bad_state_url_is_a_config_error_naming_the_setting(tmp_path: Path, url: str, problem: str) -> None:
    path = config(tmp_path, f'state = "{url}"\n')
    with pytest.raises(ConfigFileError) as err:
        load_settings(path)
    [message] = err.value.problems
    assert message.startswith(f"{path}: state: ")
    assert problem in message
    assert "hunter2" not in message


def test_a_password_written_in_the_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="state_password"):
        load_settings(config(tmp_path, 'state = "postgresql://syncd@db/syncd"\nstate_password = "x"\n'))
