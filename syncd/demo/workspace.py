"""The demo's working directory: a real ``config.toml``, the mapping, secret files and the state.

Everything a production deployment would have, laid out so that every CLI command works
against the running demo with nothing but ``--config``:

    config.toml              apps, daemon settings; secrets only through ``*_file`` keys
    mappings/contacts.toml   the example mapping (HubSpot contacts <-> Mailchimp members)
    mappings/schema.json     its JSON Schema, for editors
    secrets/                 one file per secret, readable by the owner only
    state/syncd.db           the SQLite state store
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.mapping.schema import render_schema

from .apps import (
    CRM_CLIENT_SECRET,
    CRM_PROPERTIES,
    CRM_TOKEN,
    EMAIL_API_KEY,
    EMAIL_WEBHOOK_SECRET,
    LIST_ID,
)

if TYPE_CHECKING:
    from .fourapps import ExtraApps

#: The example mapping shipped inside this package (a copy of mappings/contacts.toml).
MAPPING_NAME = "contacts.toml"
#: Seconds between the daemon's incremental polls of each fake (webhooks do the fast path).
POLL_INTERVAL = 10


def packaged_mapping() -> str:
    """The text of the example mapping, read from the installed package."""
    return resources.files("syncd.demo").joinpath(MAPPING_NAME).read_text(encoding="utf-8")


@dataclass
class Workspace:
    """A demo directory; ``temporary`` ones are removed by ``cleanup``."""

    root: Path
    temporary: bool
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: The mapping file's name (``customers.toml`` with ``--apps all``).
    mapping_name: str = MAPPING_NAME

    @classmethod
    def create(cls, directory: Path | None = None) -> Workspace:
        """Use ``directory`` (created if missing, must be empty) or a fresh temporary one."""
        if directory is None:
            return cls(Path(tempfile.mkdtemp(prefix="syncd-demo-")).resolve(), temporary=True)
        directory = directory.resolve()
        if directory.exists() and any(directory.iterdir()):
            raise FileExistsError(f"{directory} is not empty; give the demo a new or empty directory")
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory, temporary=False)

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def state(self) -> Path:
        return self.root / "state" / "syncd.db"

    @property
    def mapping(self) -> Path:
        return self.root / "mappings" / self.mapping_name

    def secret_file(self, name: str) -> Path:
        return self.root / "secrets" / name

    def write(
        self,
        *,
        hubspot_url: str,
        mailchimp_url: str,
        port: int,
        poll_interval: float = POLL_INTERVAL,
        extra: ExtraApps | None = None,
    ) -> None:
        """Write the secrets, the mapping and ``config.toml`` for fakes at these URLs (and the
        help desk and billing apps of ``extra``, with the four-app mapping)."""
        (self.root / "state").mkdir(parents=True, exist_ok=True)
        if extra is not None:
            from .fourapps import MAPPING_NAME as FOUR_APPS_MAPPING

            self.mapping_name = FOUR_APPS_MAPPING
        self.mapping.parent.mkdir(parents=True, exist_ok=True)
        self.mapping.write_text(packaged_mapping() if extra is None else extra.mapping(), encoding="utf-8")
        (self.mapping.parent / "schema.json").write_text(render_schema(), encoding="utf-8")
        folder = self.root / "secrets"
        folder.mkdir(mode=0o700, exist_ok=True)
        for name, value in {
            "crm_token": CRM_TOKEN,
            "crm_client_secret": CRM_CLIENT_SECRET,
            "email_api_key": EMAIL_API_KEY,
            "email_webhook_secret": EMAIL_WEBHOOK_SECRET,
            "admin_token": self.admin_token,
            **(extra.secrets() if extra is not None else {}),
        }.items():
            path = self.secret_file(name)
            path.write_text(value + "\n", encoding="utf-8")
            os.chmod(path, 0o600)
        text = _CONFIG.format(
            hubspot_url=hubspot_url,
            mailchimp_url=mailchimp_url,
            list_id=LIST_ID,
            properties=json.dumps(list(CRM_PROPERTIES)),
            poll=poll_interval,
            port=port,
        )
        if extra is not None:
            from .fourapps import CRM_READ

            text = text.replace('"mappings/contacts.toml"', f'"mappings/{self.mapping_name}"')
            text = text.replace(json.dumps(list(CRM_PROPERTIES)), json.dumps([*CRM_PROPERTIES, *CRM_READ]))
            text = text.replace("\n[daemon]\n", extra.config(poll_interval) + "\n[daemon]\n")
        self.config.write_text(text, encoding="utf-8")

    def cleanup(self) -> None:
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)


_CONFIG = """\
# Written by `syncd demo` for its fake apps on loopback ports. Every syncd command works against
# it: syncd conflicts list --config THIS_FILE. Secrets are read from the files in secrets/.
state = "state/syncd.db"
mappings = ["mappings/contacts.toml"]
log_format = "console"
log_level = "warning"

[apps.crm]
connector = "hubspot"
poll_interval = {poll}
[apps.crm.settings]
base_url = "{hubspot_url}"
token_file = "secrets/crm_token"
client_secret_file = "secrets/crm_client_secret"
properties = {properties}

[apps.email]
connector = "mailchimp"
poll_interval = {poll}
[apps.email.settings]
base_url = "{mailchimp_url}"
list_id = "{list_id}"
api_key_file = "secrets/email_api_key"
webhook_secret_file = "secrets/email_webhook_secret"

[daemon]
host = "127.0.0.1"
port = {port}
admin_token_file = "secrets/admin_token"
"""
