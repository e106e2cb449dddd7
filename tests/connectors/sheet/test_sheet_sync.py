"""Black-box: ``syncd sync --once`` between a SQLite table and a CSV file kept by a person."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

MAPPING = """
name = "contacts"
key = "email"

[apps.product]
object = "users"
[apps.sheet]
object = "rows"

[fields.email]
transforms = ["email"]
apps.product = "email"
apps.sheet = "E-mail"

[fields.name]
transforms = ["trim"]
apps.product = "name"
apps.sheet = "Full name"
"""

CONFIG = """
state = "state/syncd.db"
mappings = ["contacts.toml"]
log_format = "json"
log_level = "warning"

[apps.product]
connector = "sql"
[apps.product.settings]
url = "sqlite:///product.db"
table = "users"

[apps.sheet]
connector = "sheet"
[apps.sheet.settings]
path = "people.csv"
"""


@pytest.fixture
def world(tmp_path: Path) -> Path:
    (tmp_path / "contacts.toml").write_text(MAPPING)
    (tmp_path / "config.toml").write_text(CONFIG)
    db = sqlite3.connect(tmp_path / "product.db")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT)")
    db.executemany(
        "INSERT INTO users (email, name) VALUES (?, ?)",
        [("ann@example.com", "Ann"), ("bob@example.com", "Bob")],
    )
    db.commit()
    db.close()
    (tmp_path / "people.csv").write_text(
        "E-mail,Full name,Notes\nBOB@example.com ,Bob,met at the fair\ncy@example.com,Cy,\n", encoding="utf-8"
    )
    return tmp_path


def syncd(root: Path, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    proc = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "--config", str(root / "config.toml"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"syncd {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def sheet_rows(root: Path) -> dict[str, dict[str, str]]:
    with (root / "people.csv").open(newline="", encoding="utf-8") as handle:
        return {row["E-mail"].strip().lower(): row for row in csv.DictReader(handle)}


def users(root: Path) -> dict[str, str]:
    db = sqlite3.connect(root / "product.db")
    try:
        return {email: name for email, name in db.execute("SELECT email, name FROM users")}
    finally:
        db.close()


def test_a_csv_file_syncs_both_ways_without_echo_or_duplicates(world: Path) -> None:
    first = syncd(world, "sync", "--once", "--json")
    assert first["linked"] == 1
    rows = sheet_rows(world)
    assert sorted(rows) == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert rows["bob@example.com"]["Notes"] == "met at the fair", "a column syncd does not map lost its value"
    assert all(row["syncd_id"] for row in rows.values())
    assert sorted(users(world)) == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert syncd(world, "sync", "--once", "--json")["writes"] == 0, "our own writes came back as changes"

    text = (world / "people.csv").read_text(encoding="utf-8")
    (world / "people.csv").write_text(text.replace(",Cy,", ",Cy Young,"), encoding="utf-8")
    third = syncd(world, "sync", "--once", "--json")
    assert users(world)["cy@example.com"] == "Cy Young"
    assert third["writes"] == 1, "the person's edit should be one write to the product, and nothing back"
