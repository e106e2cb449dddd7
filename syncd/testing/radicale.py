"""A real Radicale CardDAV server on a loopback port, for the CardDAV connector's tests and benchmark.

Radicale runs as a subprocess (``python -m radicale --config ...``) with a generated config: a
temporary storage folder, plain htpasswd users, owner-only rights and no web interface.
``start`` waits for it with a deadline; ``stop`` ends it. Address books are created over HTTP
with an extended MKCOL, as a client would. Radicale is a dev dependency: callers skip when
``available()`` is false.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

import httpx

_MKCOL = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:mkcol xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>'
    "<d:resourcetype><d:collection/><card:addressbook/></d:resourcetype>"
    "<d:displayname>{name}</d:displayname>"
    "</d:prop></d:set></d:mkcol>"
)


def available() -> bool:
    """Whether Radicale is installed in this environment."""
    return importlib.util.find_spec("radicale") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RadicaleServer:
    """One Radicale process with its own storage; ``users`` maps user names to passwords."""

    def __init__(
        self,
        users: dict[str, str],
        *,
        startup_timeout: float = 20.0,
        log_level: str = "warning",
        storage: dict[str, str] | None = None,
    ) -> None:
        self.users = dict(users)
        #: Extra ``[storage]`` settings (e.g. ``use_mtime_and_size_for_item_cache``).
        self.storage_settings = dict(storage or {})
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="syncd-radicale-")
        self.root = Path(self._tmp.name)
        self.storage = self.root / "storage"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        #: Radicale's own log (one line per request at log level ``info``).
        self.log = self.root / "radicale.log"

    @property
    def pid(self) -> int | None:
        """The Radicale process's id while it runs (the benchmark reads its CPU time)."""
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        htpasswd = self.root / "users"
        htpasswd.write_text("".join(f"{user}:{password}\n" for user, password in self.users.items()))
        config = self.root / "config"
        config.write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{self.port}\n"
            "max_connections = 16\n"
            "[auth]\n"
            "type = htpasswd\n"
            f"htpasswd_filename = {htpasswd}\n"
            "htpasswd_encryption = plain\n"
            "delay = 0.001\n"
            "[rights]\n"
            "type = owner_only\n"
            "[storage]\n"
            f"filesystem_folder = {self.storage}\n"
            + "".join(f"{key} = {value}\n" for key, value in self.storage_settings.items())
            + "[web]\n"
            "type = none\n"
            "[logging]\n"
            f"level = {self.log_level}\n"
        )
        return config

    def start(self) -> RadicaleServer:
        self.port = _free_port()
        config = self._write_config()
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                output = self.log.read_text()[-2000:]
                self.stop()
                raise RuntimeError(f"radicale exited at start-up: {output}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("radicale did not start listening in time") from None
                time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._tmp.cleanup()

    def __enter__(self) -> RadicaleServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def client(self, user: str) -> httpx.Client:
        """A plain HTTP client logged in as ``user`` (the "other client" behind syncd's back)."""
        return httpx.Client(base_url=self.url, auth=(user, self.users[user]), timeout=30.0)

    def create_addressbook(self, user: str, name: str | None = None) -> str:
        """Create an address book for ``user`` (extended MKCOL); return its path, ending in ``/``."""
        name = name or f"book-{uuid.uuid4().hex[:12]}"
        path = f"/{user}/{name}/"
        with self.client(user) as client:
            response = client.request(
                "MKCOL",
                path,
                content=_MKCOL.format(name=name).encode(),
                headers={"Content-Type": 'application/xml; charset="utf-8"'},
            )
        if response.status_code != 201:
            raise RuntimeError(f"MKCOL {path} -> {response.status_code}: {response.text[:200]}")
        return path


__all__ = ["RadicaleServer", "available"]
