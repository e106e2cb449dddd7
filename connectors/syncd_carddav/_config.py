"""Settings of the CardDAV connector: where the server is, how to log in, how hard to push it."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from syncd.connector import ConnectorConfig


class CardDavConfig(ConnectorConfig):
    """How to reach one address book on a CardDAV server.

    ``url`` is either the address book collection itself or any URL of the server (its root, a
    principal, an address book home): the connector then discovers the address book through
    ``current-user-principal`` and ``addressbook-home-set``, picking the one named by
    ``addressbook`` (last path segment or display name) or, when unset, the first one.

    Log in with ``username`` + ``password`` (HTTP basic) or with ``bearer_token``, not both.
    """

    url: str = Field(min_length=1)
    #: Which address book to use when discovery finds several (path segment or display name).
    addressbook: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    bearer_token: SecretStr | None = None
    #: vCard version of the cards syncd creates; existing cards keep their own version.
    vcard_version: Literal["3.0", "4.0"] = "3.0"
    #: ``auto`` uses RFC 6578 sync-collection when the server offers it, ETag comparison otherwise.
    sync_mode: Literal["auto", "sync-collection", "etag"] = "auto"
    #: Cards per addressbook-multiget request, and so per page of a listing.
    page_size: int = Field(default=100, ge=1, le=1000)
    #: Simultaneous requests (conditional writes run in parallel up to this many).
    concurrency: int = Field(default=8, ge=1, le=64)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        return value

    @model_validator(mode="after")
    def _one_login(self) -> CardDavConfig:
        basic = self.username is not None or self.password is not None
        if basic and self.bearer_token is not None:
            raise ValueError("set either username/password or bearer_token, not both")
        if basic and (self.username is None or self.password is None):
            raise ValueError("basic auth needs both username and password")
        return self

    @property
    def origin(self) -> str:
        """``scheme://host[:port]/``: every request path is absolute on this origin."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/"

    @property
    def start_path(self) -> str:
        """The path part of ``url``, ending in ``/`` (collections are addressed with one)."""
        path = urlsplit(self.url).path or "/"
        return path if path.endswith("/") else path + "/"


__all__ = ["CardDavConfig"]
