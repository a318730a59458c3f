"""Backups of the database in `<data dir>/backups/`, a few kept.

A backup is SQLite's online backup (`sqlite3.Connection.backup`) of the open database: a
consistent copy even while the service writes. `Database` makes one at every start, once
the database passed its check and before a migration changes it (a new database: once it
has its tables, so that a backup says there was one here), and the service once a day
while it runs; each after a quick_check, so a damaged database is never copied over the
good ones (`Database.backup`, `ambiance backup`).

The files: `ambiance-<YYYYmmdd-HHMMSS>.db` (local time), mode 0600 (profiles say things
about people's bodies), each a complete SQLite database in one file (rollback journal, no
-wal). A backup equal to the newest one is not kept, so restarts with nothing new do not
push the older ones out; the newest `KEEP` are kept, and nothing else in the folder is
ever deleted (the database a restore replaced is kept there as `replaced-<stamp>.db`,
restore.py).
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import re
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Final

FOLDER: Final = "backups"  # inside the data dir
KEEP: Final = 7  # the backups kept, newest first
_NAME: Final = re.compile(r"^ambiance-(\d{8})-(\d{6})(?:-(\d+))?\.db$")
_TEMP_PREFIX: Final = ".backup-"


def folder_of(db: Path) -> Path:
    """The backups of the database `db`: a folder beside it."""
    return db.parent / FOLDER


def listing(folder: Path) -> list[Path]:
    """The backups in `folder`, newest first (by the time in their names)."""
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(match, name) for name in names if (match := _NAME.match(name))]
    found.sort(key=lambda m: (m[0][1], m[0][2], int(m[0][3] or 1)), reverse=True)
    return [folder / name for _, name in found]


def newest(folder: Path) -> Path | None:
    found = listing(folder)
    return found[0] if found else None


def restore_hint(db: Path) -> str:
    """What to do about a damaged `db`: restore its newest backup, or start a new one."""
    latest = newest(folder_of(db))
    if latest is None:
        return (
            f"there is no backup of it: stop ambiance and move {db} aside to start with "
            "a new database (ambiance never deletes it)"
        )
    return f"stop ambiance and restore the newest backup: ambiance restore {latest}"


def write(source: sqlite3.Connection, folder: Path, at: float) -> Path | None:
    """Back `source` up into `folder`; the new file, or None when it equals the newest."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=folder, prefix=_TEMP_PREFIX, suffix=".tmp")  # 0600
    os.close(fd)
    temp = Path(name)
    try:
        target = sqlite3.connect(temp, isolation_level=None)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")  # one file, readable on its own
        finally:
            target.close()
        _fsync(temp)
        latest = newest(folder)
        if latest is not None and filecmp.cmp(latest, temp, shallow=False):
            temp.unlink()
            return None
        path = _free_name(folder, at)
        os.replace(temp, path)
        _fsync(folder)
    except BaseException:
        _remove_temp(temp)
        raise
    rotate(folder)
    return path


def rotate(folder: Path, keep: int = KEEP) -> None:
    """Delete all but the newest `keep` backups (only files named as ours are counted)."""
    for old in listing(folder)[keep:]:
        old.unlink(missing_ok=True)


def stamp(at: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(at))


def _free_name(folder: Path, at: float) -> Path:
    base = f"ambiance-{stamp(at)}"
    path = folder / f"{base}.db"
    number = 1
    while path.exists():
        number += 1
        path = folder / f"{base}-{number}.db"
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_temp(temp: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            Path(f"{temp}{suffix}").unlink()
