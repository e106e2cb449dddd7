"""The demo's small parts: printed requests, the change feed, the workspace, the packaged mapping."""

from __future__ import annotations

import io
import json
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from syncd.demo.apps import HttpCall
from syncd.demo.cli import demo_command
from syncd.demo.feed import entries_after, format_change, latest_id
from syncd.demo.run import say
from syncd.demo.workspace import Workspace, packaged_mapping
from syncd.engine.model import Change, ReasonCode
from syncd.settings import load_settings
from syncd.store import Store

from .curl import parse_curl

ROOT = Path(__file__).resolve().parents[2]


def test_a_printed_curl_line_is_the_request_it_describes_even_with_quotes_in_the_body() -> None:
    call = HttpCall(
        "PATCH",
        "http://127.0.0.1:1/crm/v3/objects/contacts/7",
        {"Authorization": "Bearer t"},
        {"properties": {"lastname": 'O\'Neil "Jr"'}},
    )
    parsed = parse_curl(call.curl())
    assert (parsed.method, parsed.url) == ("PATCH", call.url)
    assert parsed.headers == {"Authorization": "Bearer t", "Content-Type": "application/json"}
    assert json.loads(parsed.data or "") == call.body
    basic = parse_curl(HttpCall("GET", "http://127.0.0.1:1/x", {}, basic_auth=("demo", "k-us1")).curl())
    assert (basic.method, basic.auth) == ("GET", ("demo", "k-us1"))


def test_the_packaged_demo_mapping_is_the_example_mapping() -> None:
    # the demo ships its own copy so that it works from an installed package
    assert packaged_mapping() == (ROOT / "mappings" / "contacts.toml").read_text(encoding="utf-8")


def test_the_workspace_config_loads_with_secrets_from_files_only(tmp_path: Path) -> None:
    workspace = Workspace.create(tmp_path / "w")
    workspace.write(hubspot_url="http://127.0.0.1:1", mailchimp_url="http://127.0.0.1:2", port=0)
    raw = tomllib.loads(workspace.config.read_text())
    assert "token" not in raw["apps"]["crm"]["settings"]
    settings = load_settings(workspace.config)
    assert settings.daemon.admin_token is not None
    assert settings.daemon.admin_token.get_secret_value() == workspace.admin_token
    assert settings.state == workspace.state
    secret = workspace.secret_file("crm_token")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    workspace.cleanup()
    assert workspace.root.exists(), "a workspace the user named is never removed"


def test_a_temporary_workspace_is_removed_on_cleanup() -> None:
    workspace = Workspace.create(None)
    workspace.write(hubspot_url="http://127.0.0.1:1", mailchimp_url="http://127.0.0.1:2", port=0)
    workspace.cleanup()
    assert not workspace.root.exists()


def test_demo_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(demo_command, ["--once", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in result.output
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_the_feed_prints_each_new_change_once_oldest_first_with_the_customer_key(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with store.transaction():
        entity = store.new_entity("contacts", "ann@acme.io")
        store.log_changes(
            "contacts",
            [Change(entity.id, "*", None, "1", "crm", "new record in crm", code=ReasonCode.NEW_RECORD)],
            1,
        )
    seen = latest_id(store)
    with store.transaction():
        store.log_changes(
            "contacts",
            [
                Change(
                    entity.id,
                    "last_name",
                    "Lee",
                    f"Lee-{n}",
                    "crm",
                    "changed in crm",
                    code=ReasonCode.CHANGED,
                )
                for n in range(250)
            ],
            2,
        )
    found, upto = entries_after(store, seen, page=100)
    assert [e["new"] for e, _ in found] == [f"Lee-{n}" for n in range(250)]
    assert {key for _, key in found} == {"ann@acme.io"}
    assert upto == latest_id(store)
    assert entries_after(store, latest_id(store)) == ([], upto)
    line = format_change(found[0][0], found[0][1])
    assert line.endswith('ann@acme.io  last_name: "Lee" → "Lee-0"  (changed in crm)')
    store.close()


@pytest.mark.parametrize("width", [40, 200])
def test_guide_lines_are_never_wrapped_so_commands_stay_pasteable(width: int) -> None:
    console = Console(file=io.StringIO(), width=width)
    long = "curl -sS -H 'Authorization: Bearer " + "x" * 80 + "' http://127.0.0.1:1/api/status"
    say(console, "  " + long)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert out == "  " + long + "\n"
