"""Settings: ``config.toml`` plus ``SYNCD_*`` environment variables (nested with ``__``).

Secrets (tokens, API keys, webhook secrets, the admin token) are ``SecretStr`` and are accepted
only from the environment or from files named by ``*_file`` keys, never from the TOML file, so a
config file can be committed and shared. Validation errors are reported as
``file: key.path: what was expected`` and make the CLI exit with code 2.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# ConfigFileError is defined where importing it costs nothing (the CLI), and re-exported here.
from syncd.errors import ConfigFileError as ConfigFileError
from syncd.store.location import StateUrl, check_postgres_url

#: Keys whose values are secrets: refused in the TOML file (use the environment or a ``*_file`` key).
SECRET_KEY_PARTS = ("token", "secret", "password", "api_key", "apikey", "client_secret")

#: Shortest admin token accepted: a short token can be guessed, an empty one opens the admin API.
MIN_ADMIN_TOKEN_LENGTH = 16


def is_secret_list_key(key: str) -> bool:
    """True for keys holding several secrets (``previous_client_secrets``): a list, not one string."""
    return key.lower().endswith("secrets")


def _secret_list(key: str, value: Any) -> Any:
    """A secret list given as text (an environment variable) parsed as a JSON list of strings."""
    if not isinstance(value, str | dict):
        return value
    hint = (
        f"{key} must be a JSON list of strings, e.g. SYNCD_..._{key.upper()}='[\"old-secret\"]', "
        f"or {key}_file = PATH with one secret per line"
    )
    if isinstance(value, dict):
        raise ValueError(hint)
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValueError(hint) from None
    if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
        raise ValueError(hint)
    return parsed


class AppSettings(BaseModel):
    """One app: which connector, and its settings (validated by the connector's own model)."""

    model_config = ConfigDict(extra="forbid")

    connector: str = Field(
        description="Connector name, as registered under the syncd.connectors entry points."
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="The connector's settings.")
    poll_interval: float = Field(
        default=30.0, gt=0, description="Seconds between incremental polls (daemon)."
    )
    id_scan_interval: float = Field(
        default=300.0,
        ge=0,
        description=(
            "Seconds between id-only listings that find hard deletes between full reconciliations "
            "(daemon; connectors that list ids cheaply, such as sql); 0 scans at every poll."
        ),
    )
    enabled: bool = Field(
        default=True, description="Set false to leave the app out without deleting its section."
    )

    @field_validator("settings")
    @classmethod
    def _secret_lists(cls, settings: dict[str, Any]) -> dict[str, Any]:
        # Environment variables are text: a rotation list arrives as a JSON array.
        return {k: _secret_list(k, v) if is_secret_list_key(k) else v for k, v in settings.items()}


class DaemonSettings(BaseModel):
    """Settings of ``syncd run``."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="Address the webhook and admin server listens on.")
    port: int = Field(
        default=8750, ge=0, le=65535, description="Port of the webhook and admin server (0 = any free port)."
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description=f"Bearer token for the admin API (env or admin_token_file; at least "
        f"{MIN_ADMIN_TOKEN_LENGTH} characters).",
    )
    readonly_token: SecretStr | None = Field(
        default=None,
        description=f"Token of the review web page's read-only role: sees everything, changes nothing "
        f"(env or readonly_token_file; at least {MIN_ADMIN_TOKEN_LENGTH} characters; not the admin token).",
    )
    web_session_ttl: float = Field(
        default=28800.0, gt=0, description="Seconds a review web page login lasts (then log in again)."
    )
    readonly_sees_personal_data: bool = Field(
        default=False,
        description="Show the read-only role of the review web page emails, names, phones and other "
        "mapped values unmasked.",
    )
    full_reconcile_interval: float = Field(
        default=86400.0, gt=0, description="Seconds between full reconciliations."
    )
    poll_jitter: float = Field(
        default=0.1, ge=0, le=1, description="Random share of the poll interval added as jitter."
    )
    webhook_max_bytes: int = Field(default=1_000_000, gt=0, description="Largest webhook body accepted.")
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's headers, and the most an idle "
        "connection stays open; then it is closed.",
    )
    body_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a request's body (408 after)."
    )
    max_connections: int = Field(
        default=256,
        ge=1,
        description="Most open client connections; when full, the oldest idle one is closed for a newcomer.",
    )
    drain_timeout: float = Field(default=8.0, gt=0, description="Seconds SIGTERM waits for in-flight writes.")
    lease_ttl: float = Field(
        default=30.0, gt=0, description="Seconds before another instance may take over the lease."
    )
    changelog_retention_days: int = Field(
        default=90, gt=0, description="Change-log entries older than this are pruned."
    )

    @field_validator("admin_token", "readonly_token")
    @classmethod
    def _admin_token(cls, token: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if token is None:
            return None
        what = "the admin token" if info.field_name == "admin_token" else "the read-only token"
        value = token.get_secret_value().strip()
        if not value:
            raise ValueError(
                f"{what} is empty; set a long random one "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))') "
                "or leave it unset to disable "
                + ("the admin API" if what == "the admin token" else "that role")
            )
        if len(value) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"{what} is {len(value)} characters long; use at least "
                f"{MIN_ADMIN_TOKEN_LENGTH} random ones "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return SecretStr(value)

    @model_validator(mode="after")
    def _distinct_tokens(self) -> DaemonSettings:
        admin, readonly = self.admin_token, self.readonly_token
        if (
            admin is not None
            and readonly is not None
            and admin.get_secret_value() == readonly.get_secret_value()
        ):
            raise ValueError("readonly_token equals admin_token: the read-only role needs a token of its own")
        return self


#: Set by ``load_settings`` while it builds Settings: the apps the config file defines, and where
#: the environment source reports the ``SYNCD_APPS__*`` sections it leaves out.
_FILE_APPS: ContextVar[tuple[frozenset[str], list[str]] | None] = ContextVar("_FILE_APPS", default=None)


class _EnvForDefinedApps(PydanticBaseSettingsSource):
    """The environment, minus settings of apps the config file does not define.

    A stray ``SYNCD_APPS__GHOST__SETTINGS__TOKEN`` (an app removed from the file, a typo in its
    name) would otherwise make an app without a connector and break every command. A section
    that names its own ``connector`` defines an app and is kept.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.env.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        data = self.env()
        known = _FILE_APPS.get()
        apps = data.get("apps")
        if known is None or not isinstance(apps, dict):
            return data
        defined, ignored = known
        for name in sorted(apps):
            section = apps[name]
            if name not in defined and not (isinstance(section, dict) and "connector" in section):
                del apps[name]
                ignored.append(name)
        return data


class Settings(BaseSettings):
    """Everything syncd reads from ``config.toml`` and the environment."""

    model_config = SettingsConfigDict(env_prefix="SYNCD_", env_nested_delimiter="__", extra="forbid")

    state: Path | str = Field(
        default=Path("state/syncd.db"),
        description="Path of the SQLite state store, or a postgresql:// URL (several daemons on one state).",
    )
    state_password: SecretStr | None = Field(
        default=None,
        description="Password of a PostgreSQL state (SYNCD_STATE_PASSWORD or state_password_file).",
    )
    mappings: list[Path] = Field(
        default_factory=lambda: [Path("mappings")], description="Mapping files or folders."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a TTY."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level logged."
    )
    apps: dict[str, AppSettings] = Field(
        default_factory=dict, description="The apps syncd connects, by name."
    )
    daemon: DaemonSettings = Field(default_factory=DaemonSettings, description="Settings of `syncd run`.")
    batch_size: int = Field(
        default=500, gt=0, description="Most writes sent to one app in one dispatch round."
    )

    #: The config file's folder: relative paths (state, mappings, secret files, a connector's
    #: database file) are taken from it, whatever the working directory is.
    _base_dir: Path = PrivateAttr(default_factory=lambda: Path("."))
    #: Problems that do not stop syncd (the CLI prints them as warnings).
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    @field_validator("state")
    @classmethod
    def _state_location(cls, value: Path | str) -> Path | str:
        """A postgresql:// URL stays a checked URL; anything else is a SQLite file path."""
        if isinstance(value, str) and "://" in value:
            return check_postgres_url(value)
        return Path(value)

    @field_validator("apps")
    @classmethod
    def _app_names(cls, apps: dict[str, AppSettings]) -> dict[str, AppSettings]:
        for name in apps:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"app name {name!r} must be letters, digits, '-' or '_'")
        return apps

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed as init kwargs merged below).
        return (_EnvForDefinedApps(settings_cls, env_settings), init_settings, file_secret_settings)


def _find_secrets(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found += _find_secrets(value, path + ".")
        elif any(part in key.lower() for part in SECRET_KEY_PARTS) and not key.lower().endswith("_file"):
            found.append(path)
    return found


def _read_secret_files(data: dict[str, Any], base: Path) -> None:
    """Replace ``foo_file = "path"`` keys by ``foo = <file contents>`` (secrets from files).

    A ``*_secrets_file`` (a rotation list) holds one secret per line; blank lines are skipped.
    """
    for key in list(data):
        value = data[key]
        if isinstance(value, dict):
            _read_secret_files(value, base)
        elif (
            key.endswith("_file")
            and isinstance(value, str)
            and any(p in key.lower() for p in SECRET_KEY_PARTS)
        ):
            name = key.removesuffix("_file")
            text = (base / value).read_text()
            if is_secret_list_key(name):
                data[name] = [line.strip() for line in text.splitlines() if line.strip()]
            else:
                data[name] = text.strip()
            del data[key]


def _format_error(source: str, error: ValidationError) -> list[str]:
    problems = []
    for err in error.errors():
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append(f"{source}: {loc}: {msg}")
    return problems


def load_settings(path: str | os.PathLike[str] | None = None, *, required: bool = False) -> Settings:
    """Load ``path`` (default ``config.toml`` if it exists) merged with ``SYNCD_*`` env variables.

    ``required`` makes a missing default ``config.toml`` an error (the CLI); a ``path`` given
    explicitly must always exist. Relative paths — state, mappings, secret files, wherever they
    were set, and a connector's files — are resolved against the file's folder.
    """
    file = Path(path) if path is not None else Path("config.toml")
    data: dict[str, Any] = {}
    source = str(file)
    if path is None and required and not file.exists():
        raise ConfigFileError(
            [
                f"config.toml not found in {Path.cwd()}: give its path with --config PATH, or run syncd in its folder"
            ]
        )
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigFileError([f"{source}: {exc}"]) from exc
        secrets = _find_secrets(data)
        if secrets:
            raise ConfigFileError(
                [
                    f"{source}: {p}: secrets are not read from the config file; set SYNCD_{p.upper().replace('.', '__')} "
                    f"or use {p.split('.')[-1]}_file = PATH"
                    for p in secrets
                ]
            )
        try:
            _read_secret_files(data, file.parent)
        except OSError as exc:
            raise ConfigFileError([f"{source}: cannot read secret file: {exc}"]) from exc
    elif required or path is not None:
        raise ConfigFileError([f"{source}: config file not found"])
    base = file.parent
    apps = data.get("apps")
    ignored: list[str] = []
    token = _FILE_APPS.set((frozenset(apps if isinstance(apps, dict) else ()), ignored))
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigFileError(_format_error(source, exc)) from exc
    finally:
        _FILE_APPS.reset(token)
    # One rule for every relative path, from the file or the environment: the file's folder.
    if isinstance(settings.state, Path):
        settings.state = base / settings.state
    else:
        password = settings.state_password.get_secret_value() if settings.state_password else None
        settings.state = StateUrl(settings.state, password)
    settings.mappings = [base / entry for entry in settings.mappings]
    settings._base_dir = base
    settings._warnings = [
        f"{source}: apps.{name}: SYNCD_APPS__{name.upper()}__* is set in the environment, but the config "
        "file defines no such app: ignored"
        for name in ignored
    ]
    return settings
