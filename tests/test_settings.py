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


def test_relative_paths_from_the_file_and_the_environment_follow_the_file_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    cfg = folder / "config.toml"
    cfg.write_text('mappings = ["maps"]\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNCD_STATE", "var/syncd.db")
    settings = load_settings(cfg)
    assert settings.state == folder / "var" / "syncd.db"
    assert settings.mappings == [folder / "maps"]
    assert settings.base_dir == folder


def test_a_missing_default_config_is_an_error_only_when_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().apps == {}
    with pytest.raises(ConfigFileError, match=r"config\.toml not found"):
        load_settings(required=True)


def test_environment_settings_of_an_undefined_app_are_ignored_unless_they_name_a_connector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[apps.crm]\nconnector = "hubspot"\n')
    monkeypatch.setenv("SYNCD_APPS__GHOST__SETTINGS__TOKEN", "x")
    monkeypatch.setenv("SYNCD_APPS__EXTRA__CONNECTOR", "sql")
    settings = load_settings(cfg)
    assert sorted(settings.apps) == ["crm", "extra"]
    assert settings.warnings == [
        f"{cfg}: apps.ghost: SYNCD_APPS__GHOST__* is set in the environment, but the config file "
        "defines no such app: ignored"
    ]


@pytest.mark.parametrize("token", ["", "   ", "short-token"])
def test_empty_or_short_admin_token_from_the_environment_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[daemon]\nport = 0\n")
    monkeypatch.setenv("SYNCD_DAEMON__ADMIN_TOKEN", token)
    with pytest.raises(ConfigFileError) as err:
        load_settings(cfg)
    [problem] = err.value.problems
    assert problem.startswith(f"{cfg}: daemon.admin_token: the admin token is ")
    reason = problem.removeprefix(f"{cfg}: daemon.admin_token: ")
    assert ("is empty" in reason) == (not token.strip())
    assert token.strip() == "" or token not in reason


def test_blank_admin_token_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "admin").write_text("  \n")
    cfg = tmp_path / "config.toml"
    cfg.write_text('[daemon]\nadmin_token_file = "admin"\n')
    with pytest.raises(ConfigFileError) as err:
        load_settings(cfg)
    assert err.value.problems[0].startswith(f"{cfg}: daemon.admin_token: the admin token is empty")


def test_admin_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "admin").write_text("0123456789abcdef-admin\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text('[daemon]\nadmin_token_file = "admin"\n')
    token = load_settings(cfg).daemon.admin_token
    assert token is not None
    assert token.get_secret_value() == "0123456789abcdef-admin"


def test_previous_secrets_from_the_environment_as_a_json_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[apps.crm]\nconnector = "hubspot"\n')
    monkeypatch.setenv("SYNCD_APPS__CRM__SETTINGS__PREVIOUS_CLIENT_SECRETS", '["old-one", "older-two"]')
    settings = load_settings(cfg)
    assert settings.apps["crm"].settings["previous_client_secrets"] == ["old-one", "older-two"]


def test_previous_secrets_file_holds_one_secret_per_line(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("old-one\n\n  older-two  \n")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[apps.email]\nconnector = "mailchimp"\n[apps.email.settings]\nprevious_webhook_secrets_file = "old"\n'
    )
    settings = load_settings(cfg)
    assert settings.apps["email"].settings["previous_webhook_secrets"] == ["old-one", "older-two"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SYNCD_APPS__CRM__SETTINGS__PREVIOUS_CLIENT_SECRETS", "old-one"),
        ("SYNCD_APPS__CRM__SETTINGS__PREVIOUS_CLIENT_SECRETS", "old-one,older-two"),
        ("SYNCD_APPS__CRM__SETTINGS__PREVIOUS_CLIENT_SECRETS", '{"a": "b"}'),
        ("SYNCD_APPS__CRM__SETTINGS__PREVIOUS_CLIENT_SECRETS", "[1, 2]"),
        ("SYNCD_APPS__CRM__SETTINGS__PREVIOUS_CLIENT_SECRETS__0", "old-one"),
    ],
)
def test_other_forms_of_a_secret_list_get_an_error_that_shows_the_json_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[apps.crm]\nconnector = "hubspot"\n')
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigFileError) as err:
        load_settings(cfg)
    [problem] = err.value.problems
    assert problem.startswith(f"{cfg}: apps.crm.settings: previous_client_secrets must be a JSON list")
    assert "previous_client_secrets_file = PATH" in problem
    assert "old-one" not in problem
