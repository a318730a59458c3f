"""The data dir: the folder ambiance writes (its database and backups, the API token's hash,
the Hue usernames, the discovery record).

`problems()` says, without making or changing anything (a little file is written and
removed in a folder that exists), what keeps a path from being one: `ambiance check`
reports it, and `ambiance serve` refuses to start with the same lines. `prepare()` then
makes the folder and proves that it takes a write (a real one: a read-only mount, a full
disk and permissions all fail it, even for root), before anything is written there. Each
problem is one line: what, where, and what to do.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from ambiance.errors import StorageError
from ambiance.infra.store.database import DB_NAME
from ambiance.infra.store.faults import kind_of

_POINT_ELSEWHERE = "or point data_dir (--data-dir, AMBIANCE_DATA_DIR) elsewhere"
_READ_ONLY = "a read-only disk, or no permission for the user ambiance runs as"
_NOT_A_FOLDER = "not_a_directory"
# Files in the data dir that ambiance writes in place (the others are replaced by a rename,
# which needs only the folder): SQLite opens a read-only database file read-only, quietly.
_WRITTEN_IN_PLACE = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm")


def problems(path: Path) -> list[str]:
    """What keeps `path` from being the data dir (nothing is made or changed)."""
    return [message for _, message in _problems(path)]


def _problems(path: Path) -> list[tuple[str, str]]:
    """(kind, message) for each problem: the kinds of `StorageError`."""
    here = path.absolute()
    nearest: Path | None = None  # the deepest part of the path that exists
    for part in [*reversed(here.parents), here]:
        try:
            mode = part.stat().st_mode
        except FileNotFoundError:
            break
        except OSError as exc:
            what = f"cannot look into {part} ({exc.strerror})"
            return [("read_only", f"data_dir {path}: {what}: {_POINT_ELSEWHERE}")]
        if not stat.S_ISDIR(mode):
            if part == here:
                what = f"data_dir {path} is a file, not a folder: move it aside"
            else:
                what = f"data_dir {path} cannot be made: {part} is a file:"
            return [(_NOT_A_FOLDER, f"{what} {_POINT_ELSEWHERE}")]
        nearest = part
    if nearest is None:  # not even the root: nothing to write into
        return [("read_only", f"data_dir {path} cannot be made: {_POINT_ELSEWHERE}")]
    # access() knows read-only mounts (EROFS) as well as permissions, for root too.
    if not os.access(nearest, os.W_OK | os.X_OK):
        if nearest == here:
            what = f"data_dir {path} cannot be written ({_READ_ONLY}): make it writable,"
        else:
            what = f"data_dir {path} cannot be made in {nearest} ({_READ_ONLY}): make it,"
        return [("read_only", f"{what} {_POINT_ELSEWHERE}")]
    found = []
    if nearest == here:
        failure = _write_check(path)  # a file made and removed: nothing else is changed
        if failure is not None:
            return [(failure.kind, failure.message)]
        for name in _WRITTEN_IN_PLACE:
            file = path / name
            if file.exists() and not os.access(file, os.W_OK):
                what = f"{file} cannot be written ({_READ_ONLY}): make it writable"
                found.append(("read_only", f"data_dir {path}: {what}"))
    return found


def prepare(path: Path) -> None:
    """Make the data dir (0700: it holds secrets) and prove it takes a write, or raise
    `StorageError` with what `problems()` says or what the disk said."""
    found = _problems(path)
    if found:
        kind, message = found[0]
        raise StorageError(message, kind=kind, path=str(path))
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    failure = _write_check(path)
    if failure is not None:
        raise failure


def _write_check(path: Path) -> StorageError | None:
    """Write a little file in `path` (then remove it): a full disk, a read-only mount and
    permissions all fail it, for root too."""
    try:
        fd, name = tempfile.mkstemp(dir=path, prefix=".write-check-")
        try:
            os.write(fd, b"ok")
            os.fsync(fd)  # a full disk may say so only here
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name)
    except OSError as exc:
        return _unwritable(path, exc)
    return None


def _unwritable(path: Path, exc: OSError) -> StorageError:
    kind = kind_of(exc)
    what, to_do = ("the disk is full", "free some space on that disk")
    if kind != "full":
        what, to_do = ("it cannot be written", "make it writable")
    return StorageError(
        f"data_dir {path}: {what} ({exc.strerror or exc}): {to_do}, {_POINT_ELSEWHERE}",
        kind=kind,
        path=str(path),
    )
