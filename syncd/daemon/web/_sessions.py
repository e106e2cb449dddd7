"""Logins of the review web page: which token opens which role, and the server-side sessions.

A login trades a token for a random session id (the cookie); the session, its role, its CSRF
token and its expiry live only in the daemon's memory, so a restart logs everyone out. Tokens
are compared in constant time, and so are CSRF tokens.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import SecretStr

#: Full access: the same powers as the admin API's bearer token.
ADMIN = "admin"
#: Sees every page, changes nothing (every POST but logout is refused).
READONLY = "read-only"
#: Most sessions kept at once; past it the oldest is dropped (a login loop cannot fill memory).
MAX_SESSIONS = 1000


@dataclass
class Session:
    """One logged-in browser."""

    id: str
    role: str
    #: Who logged in, as they named themselves at login (the change log records it), else the role.
    name: str
    expires_at: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def can_write(self) -> bool:
        return self.role == ADMIN

    @property
    def who(self) -> str:
        """How the change log names this session: ``name (role)``."""
        return f"{self.name} ({self.role})" if self.name != self.role else self.role

    def csrf_matches(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf.encode(), (given or "").encode())


def _secret(token: SecretStr | None) -> bytes:
    return token.get_secret_value().strip().encode() if token is not None else b""


def role_for(given: str, admin_token: SecretStr | None, readonly_token: SecretStr | None) -> str | None:
    """The role ``given`` opens, or None. Both tokens are always compared (constant time each), so
    the answer's timing does not tell which one was close; an empty token opens nothing."""
    presented = given.strip().encode()
    admin, readonly = _secret(admin_token), _secret(readonly_token)
    is_admin = hmac.compare_digest(presented, admin) and bool(admin)
    is_readonly = hmac.compare_digest(presented, readonly) and bool(readonly)
    if not presented:
        return None
    if is_admin:
        return ADMIN
    if is_readonly:
        return READONLY
    return None


class Sessions:
    """The live sessions of one daemon (in memory)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.clock = clock
        self._by_id: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def create(self, role: str, name: str = "") -> Session:
        if len(self._by_id) >= MAX_SESSIONS:
            self._prune()
        while len(self._by_id) >= MAX_SESSIONS:
            del self._by_id[min(self._by_id, key=lambda k: self._by_id[k].expires_at)]
        session = Session(
            id=secrets.token_urlsafe(32),
            role=role,
            name=" ".join(name.split())[:60] or role,
            expires_at=self.clock() + self.ttl,
        )
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with that id; an expired one is forgotten and gives None."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self.clock():
            del self._by_id[session_id]
            return None
        return session

    def drop(self, session_id: str | None) -> bool:
        return self._by_id.pop(session_id or "", None) is not None

    def _prune(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._by_id.items() if s.expires_at <= now]:
            del self._by_id[key]
