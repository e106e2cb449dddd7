"""Where a state lives: a SQLite file path, or a PostgreSQL URL whose password travels beside it."""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("postgresql", "postgres")


class StateUrl(str):
    """A PostgreSQL state URL. It never holds the password (printing or logging it is safe);
    the password, from ``SYNCD_STATE_PASSWORD`` or ``state_password_file``, rides along here."""

    password: str | None

    def __new__(cls, url: str, password: str | None = None) -> StateUrl:
        self = super().__new__(cls, url)
        self.password = password
        return self


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(tuple(f"{s}://" for s in SCHEMES))


def check_postgres_url(url: str) -> str:
    """``url`` if it names a PostgreSQL database without a password in it, else ``ValueError``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        raise ValueError(f"not a valid PostgreSQL URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(f"a PostgreSQL URL starts with postgresql://, not {parts.scheme}://")
    if parts.password:
        raise ValueError(
            "the URL holds a password: remove it and set SYNCD_STATE_PASSWORD or state_password_file"
        )
    if not parts.path.strip("/"):
        raise ValueError("the URL names no database (postgresql://user@host:5432/DATABASE)")
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("the URL names no host (postgresql://user@HOST:5432/database)")
    return url
