"""Storage faults: the one place where SQLite's and the OS's errors become `StorageError`.

Each error says what failed, where, and what to do about it, in one line: the service
refuses to start with it, the API answers it (503), and /health shows it as the store's
reason. The kinds:

- `full`: the disk has no room (SQLITE_FULL, ENOSPC, EDQUOT);
- `read_only`: the file or its folder cannot be written (a read-only mount, permissions);
- `busy`: another process holds the database locked beyond the busy timeout;
- `damaged`: the file is not (or no longer) a sound SQLite database: only a restore helps;
- `io`: anything else the disk said.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ambiance.errors import StorageError

FULL: Final = "full"
READ_ONLY: Final = "read_only"
BUSY: Final = "busy"
DAMAGED: Final = "damaged"
IO: Final = "io"

_SQLITE_KINDS: Final = {
    sqlite3.SQLITE_FULL: FULL,
    sqlite3.SQLITE_READONLY: READ_ONLY,
    sqlite3.SQLITE_PERM: READ_ONLY,
    sqlite3.SQLITE_CANTOPEN: READ_ONLY,
    sqlite3.SQLITE_BUSY: BUSY,
    sqlite3.SQLITE_LOCKED: BUSY,
    sqlite3.SQLITE_CORRUPT: DAMAGED,
    sqlite3.SQLITE_NOTADB: DAMAGED,
}
_OS_KINDS: Final = {
    errno.ENOSPC: FULL,
    errno.EDQUOT: FULL,
    errno.EROFS: READ_ONLY,
    errno.EACCES: READ_ONLY,
    errno.EPERM: READ_ONLY,
}
_WHAT: Final = {
    FULL: "cannot be written, the disk is full",
    READ_ONLY: "cannot be written",
    BUSY: "is locked by another process",
    DAMAGED: "is damaged",
    IO: "cannot be read or written",
}
_TO_DO: Final = {
    FULL: "free some space on that disk",
    READ_ONLY: "make it writable for the user ambiance runs as",
    BUSY: "is a second ambiance running on this data dir?",
    IO: "check the disk",
}


def is_storage_fault(exc: BaseException) -> bool:
    """An error of the disk or the file, not of our SQL: constraints and misuse stay bugs."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return False
    return isinstance(exc, sqlite3.Error)


def kind_of(exc: BaseException) -> str:
    if isinstance(exc, StorageError):
        return exc.kind
    if isinstance(exc, OSError):
        return _OS_KINDS.get(exc.errno or 0, IO)
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _SQLITE_KINDS.get(code & 0xFF, IO)  # the primary code of an extended one
    if isinstance(exc, sqlite3.DatabaseError) and type(exc) is sqlite3.DatabaseError:
        return DAMAGED  # "file is not a database", "database disk image is malformed"
    return IO


def storage_error(
    exc: BaseException, path: Path, doing: str, *, restore: Callable[[], str]
) -> StorageError:
    """`<doing>: <path> <what is wrong> (<what the disk said>): <what to do>`; for damage,
    `<path> is damaged (<what SQLite said>): <restore()>`, how to get the data back."""
    if isinstance(exc, StorageError):
        return exc
    kind = kind_of(exc)
    said = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
    if kind == DAMAGED:  # whatever was being done, this is what matters now
        message = f"{path} {_WHAT[kind]} ({said}): {restore()}"
    else:
        message = f"{doing}: {path} {_WHAT[kind]} ({said}): {_TO_DO[kind]}"
    return StorageError(message, kind=kind, path=str(path))
