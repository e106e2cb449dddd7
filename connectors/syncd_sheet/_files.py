"""File system work: reading a consistent snapshot, locking, and replacing the file atomically.

The connector never writes into the file a person may have open. A write:

1. refuses (retryably) while a spreadsheet app's lock file says the file is open
   (LibreOffice's ``.~lock.NAME#``, Excel's ``~$NAME``);
2. takes an exclusive ``flock`` on ``.NAME.syncd-lock`` next to the file, so two syncd processes
   never interleave their read-modify-write cycles;
3. writes the new content to a temporary file in the same folder, fsyncs it, checks that the file
   has not changed since it was read, and renames it over the original (``os.replace``): a reader
   sees the old file or the new one, never half of each, and a crash leaves the original intact.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from syncd.connector import ConfigError, TransientError

#: Reads retried when the file changes while it is being read.
READ_ATTEMPTS = 3
#: A file modified this recently may change again within the file system's timestamp resolution.
RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class FileSig:
    """What identifies one version of the file without reading it."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileSig:
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)

    def racy(self, now_ns: int | None = None) -> bool:
        """True if the file was modified so recently that a later edit could keep this signature."""
        now = time.time_ns() if now_ns is None else now_ns
        return now - self.mtime_ns < RACY_NS


def office_lock(path: Path) -> Path | None:
    """The lock file of a spreadsheet app that has ``path`` open, if there is one."""
    name = path.name
    candidates = [path.with_name(f".~lock.{name}#"), path.with_name(f"~${name}")]
    if len(name) > 8:
        candidates.append(path.with_name(f"~${name[2:]}"))  # Excel shortens long names
    return next((c for c in candidates if c.exists()), None)


def refuse_if_open(path: Path) -> None:
    lock = office_lock(path) or office_lock(path.resolve())
    if lock is not None:
        raise TransientError(
            f"{path}: open in a spreadsheet app (lock file {lock.name}); syncd writes once it is closed. "
            "If nobody has it open, the app crashed: delete the lock file."
        )


def stat(path: Path) -> FileSig:
    try:
        return FileSig.of(path.stat())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except OSError as exc:
        raise TransientError(f"{path}: cannot read the file ({exc.strerror})") from exc


def read(path: Path) -> tuple[bytes, FileSig]:
    """The file's bytes with the signature they belong to.

    The signature is taken before reading and checked after: a file written in place while we
    read it is read again, so the bytes never mix two versions under one signature.
    """
    for _ in range(READ_ATTEMPTS):
        try:
            with path.open("rb") as handle:
                before = FileSig.of(os.fstat(handle.fileno()))
                data = handle.read()
            after = FileSig.of(path.stat())
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: file not found") from exc
        except PermissionError as exc:
            raise ConfigError(f"{path}: not allowed to read the file") from exc
        except OSError as exc:
            raise TransientError(f"{path}: cannot read the file ({exc.strerror})") from exc
        if before == after and len(data) == before.size:
            return data, before
    raise TransientError(f"{path}: the file kept changing while syncd read it; will retry")


@contextlib.contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold the exclusive lock on ``.NAME.syncd-lock`` next to ``path`` (TransientError on timeout)."""
    real = path.resolve()
    lock_path = real.with_name(f".{real.name}.syncd-lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError as exc:
        raise ConfigError(
            f"{path}: cannot create the lock file {lock_path.name} (folder not writable)"
        ) from exc
    except OSError as exc:
        raise TransientError(f"{path}: cannot open the lock file {lock_path.name} ({exc.strerror})") from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TransientError(
                        f"{path}: another syncd process is writing the file (lock {lock_path.name})"
                    ) from None
                time.sleep(0.05)  # a worker thread waiting for another process: nothing to await
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def replace(path: Path, data: bytes, expected: FileSig) -> FileSig:
    """Atomically replace ``path`` with ``data`` unless it changed since ``expected`` was read.

    A symbolic link is followed: the file it points to is replaced, the link stays. The temporary
    file gets the original's permission bits (and owner, where the process may set it). On any
    failure the temporary file is removed and the original is left as it was.
    """
    path = path.resolve()
    folder = path.parent
    try:
        fd, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".syncd-tmp")
    except PermissionError as exc:
        raise ConfigError(f"{path}: cannot write in folder {folder} (permission denied)") from exc
    except OSError as exc:
        raise TransientError(f"{path}: cannot create a temporary file ({exc.strerror})") from exc
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        current = path.stat()
        os.chmod(temp, current.st_mode & 0o7777)
        if (current.st_uid, current.st_gid) != (os.getuid(), os.getgid()):
            with contextlib.suppress(PermissionError):
                os.chown(temp, current.st_uid, current.st_gid)
        if FileSig.of(current) != expected:
            raise TransientError(f"{path}: changed while syncd was writing it; the write will be retried")
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, FileNotFoundError):
            raise ConfigError(f"{path}: file not found") from exc
        if isinstance(exc, OSError):
            raise TransientError(f"{path}: could not replace the file ({exc}); it is unchanged") from exc
        raise
    _sync_folder(folder)
    return FileSig.of(path.stat())


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["RACY_NS", "FileSig", "locked", "office_lock", "read", "refuse_if_open", "replace", "stat"]
