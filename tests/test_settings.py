"""Settings: the example config documents every key, secrets come only from the environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.settings import ConfigFileError, DaemonSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads_and_documents_every_key() -> None:
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.apps["product"].connector == "sql"
    text = (ROOT / "config.example.toml").read_text()
    documented = set(re.findall(r"^#?\s*([a-z_]+)(?:\s*=|:)", text, flags=re.MULTILINE))
    for key in [*Settings.model_fields, *DaemonSettings.model_fields]:
        if key in ("apps", "daemon"):
            continue
        assert key in documented, f"config.example.toml does not document {key!r}"


def test_secret_in_the_config_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[apps.crm]\nconnector = "hubspot"\n[apps.crm.settings]\ntoken = "pat-123"\n')
    with pytest.raises(ConfigFileError) as err:
        load_settings(cfg)
    assert err.value.problems == [
        f"{cfg}: apps.crm.settings.token: secrets are not read from the config file; "
        "set SYNCD_APPS__CRM__SETTINGS__TOKEN or use token_file = PATH"
    ]


def test_secret_from_environment_is_merged_into_app_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[apps.crm]\nconnector = "hubspot"\n[apps.crm.settings]\nproperties = ["email"]\n')
    monkeypatch.setenv("SYNCD_APPS__CRM__SETTINGS__TOKEN", "pat-from-env")
    settings = load_settings(cfg)
    assert settings.apps["crm"].settings == {"properties": ["email"], "token": "pat-from-env"}


def test_secret_file_key_reads_the_file(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("pat-in-file\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text('[apps.crm]\nconnector = "hubspot"\n[apps.crm.settings]\ntoken_file = "tok"\n')
    assert load_settings(cfg).apps["crm"].settings["token"] == "pat-in-file"


def test_unknown_key_names_file_and_key_path(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('statee = "x.db"\n[daemon]\nport = "high"\n')
    with pytest.raises(ConfigFileError) as err:
        load_settings(cfg)
    assert f"{cfg}: statee: unknown key" in err.value.problems
    assert any(p.startswith(f"{cfg}: daemon.port: ") for p in err.value.problems)


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("state = \nmappings = []\n")
    with pytest.raises(ConfigFileError) as err:
        load_settings(cfg)
    assert err.value.problems[0].startswith(f"{cfg}: ")
    assert "line" in err.value.problems[0]
