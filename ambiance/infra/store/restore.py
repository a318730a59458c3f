"""Putting a backup back (`ambiance restore <file>`), and the lock that keeps it from
happening under a running service.

The service holds a shared `flock` on the data dir while its database is open
(`DirLock`); a restore takes it exclusively, so it is refused while any ambiance runs on
that data dir (the running one would go on with the sessions it has in memory, and write
them over the restored data). The file to restore is checked first: a SQLite database,
sound (quick_check), with ambiance's schema at a version this ambiance knows. The
database it replaces is never deleted: it moves, with its -wal, into the backups folder
as `replaced-<stamp>.db`; the copy then takes its place in one rename.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import tempfile
from pathlib import Path

from ambiance.errors import StorageError
from ambiance.infra.store import backups, checks, schema
from ambiance.infra.store.faults import BUSY, DAMAGED, storage_error

_COMPANIONS = ("-wal", "-shm", "")  # a database's files: the -wal holds committed data


class DirLock:
    """A `flock` on a folder: shared while a service has its database open, exclusive for
    a restore. File systems without flock on folders (some network ones) go without."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def acquire(self, *, exclusive: bool) -> None:
        """Take the lock without waiting; `StorageError` (busy) when another holds it."""
        if self._fd is not None:
            return
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return  # no flock here: nothing to take turns with
            doing = "ambiance is running with" if exclusive else "a restore is going on in"
            raise StorageError(
                f"{doing} the data dir {self.folder}: "
                + ("stop it first" if exclusive else "wait for it to end, then start again"),
                kind=BUSY,
                path=str(self.folder),
            ) from None
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor lets go of the lock


def verify(source: Path) -> int:
    """Check that `source` can be restored; its schema version. `StorageError` if not."""
    if not source.is_file():
        raise StorageError(f"{source}: no such backup file", kind=DAMAGED, path=str(source))
    if source.stat().st_size == 0 or checks.file_state(source) != "database":
        raise StorageError(f"{source} is empty: not a backup", kind=DAMAGED, path=str(source))
    conn = _read_only(source)
    try:
        checks.check_contents(conn, source, then="choose another backup")
        version = schema.user_version(conn)
    finally:
        conn.close()
    if not 1 <= version <= schema.SCHEMA_VERSION:
        what = "has no ambiance schema" if version == 0 else f"is at schema version {version}"
        raise StorageError(
            f"{source} {what}: this ambiance knows versions 1 to {schema.SCHEMA_VERSION}",
            kind=DAMAGED,
            path=str(source),
        )
    return version


def restore(source: Path, db: Path, at: float) -> Path | None:
    """Put the backup `source` in place of the database `db` (the service stopped);
    return where the database it replaced is kept (None when there was none)."""
    verify(source)
    db.parent.mkdir(parents=True, exist_ok=True)
    lock = DirLock(db.parent)
    lock.acquire(exclusive=True)
    try:
        try:
            temp = _copy_beside(source, db)
            try:
                replaced = _move_aside(db, at)
                os.replace(temp, db)
            except BaseException:
                _remove(temp)
                raise
        except (sqlite3.Error, OSError) as exc:
            raise storage_error(
                exc, db, "restore failed", restore=lambda: backups.restore_hint(db)
            ) from exc
    finally:
        lock.release()
    return replaced


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)


def _move_aside(db: Path, at: float) -> Path | None:
    """Move `db` and its -wal/-shm into the backups folder as replaced-<stamp>.db: the
    -wal first, since a -wal left beside another database would be read into it."""
    present = [suffix for suffix in _COMPANIONS if Path(f"{db}{suffix}").exists()]
    if not present:
        return None
    folder = backups.folder_of(db)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    base = folder / f"replaced-{backups.stamp(at)}.db"
    number = 1
    while any(Path(f"{base}{suffix}").exists() for suffix in _COMPANIONS):
        number += 1
        base = folder / f"replaced-{backups.stamp(at)}-{number}.db"
    for suffix in present:
        os.replace(f"{db}{suffix}", f"{base}{suffix}")
    return base


def _copy_beside(source: Path, db: Path) -> Path:
    """A copy of `source` in `db`'s folder (one file, synced), ready to be renamed."""
    fd, name = tempfile.mkstemp(dir=db.parent, prefix=".restore-", suffix=".tmp")  # 0600
    os.close(fd)
    temp = Path(name)
    try:
        src = _read_only(source)
        try:
            target = sqlite3.connect(temp, isolation_level=None)
            try:
                src.backup(target)
                target.execute("PRAGMA journal_mode = DELETE")  # no -wal to carry along
            finally:
                target.close()
        finally:
            src.close()
        with open(temp, "rb") as f:
            os.fsync(f.fileno())
    except BaseException:
        _remove(temp)
        raise
    return temp


def _remove(temp: Path) -> None:
    for suffix in ("", "-journal"):
        with contextlib.suppress(OSError):
            Path(f"{temp}{suffix}").unlink()
