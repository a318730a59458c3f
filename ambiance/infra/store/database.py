"""The database: one SQLite file, one connection, its settings, its migrations.

How it is used
    The repositories call it straight from the asyncio loop and from worker threads. Each
    of their methods is one small transaction on an indexed table and takes well under a
    millisecond, so it is synchronous on purpose: a thread hop per call would cost more
    than the call. One connection, guarded by a `threading.Lock`, serves every thread;
    another process (`ambiance pair`, a second service by mistake) has its own
    connection, and SQLite's locking plus `busy_timeout` make the two take turns.

    The writes that wait for the end of the loop's turn (writebehind.py) are done before
    every other transaction, under the same lock.

Durability
    WAL journal with `synchronous=NORMAL`: once a transaction is over, it is in the WAL
    file (written, in the OS page cache), so a killed process loses nothing; see
    `_connect` for why FULL is not needed for that.

Schema versions
    `open()` applies the missing `schema.MIGRATIONS`, each in its own transaction. A
    database from a newer ambiance is refused with `ConfigError` and left untouched.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Final

from ambiance.errors import ConfigError
from ambiance.infra.store import schema
from ambiance.infra.store.schema import user_version
from ambiance.infra.store.writebehind import Deferred, WriteBehind

log = logging.getLogger(__name__)

DB_NAME: Final = "ambiance.db"  # the file's name inside the data dir (`Store.in_dir`)
BUSY_TIMEOUT_MS: Final = 5000  # how long a writer waits for another connection's turn


class Database:
    """The SQLite file at `path`: `open()` before use, `close()` after."""

    def __init__(self, path: Path) -> None:
        self.path = path  # the database file; its folder is created by `open()`
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._behind = WriteBehind(self._end_of_turn)  # guarded by `_lock`

    def open(self) -> None:
        """Connect and bring the schema up to date; a second call does nothing."""
        with self._lock:
            if self._conn is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            try:
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    def close(self) -> None:
        """Do the held writes and disconnect; a second call does nothing."""
        with self._lock:
            if self._conn is not None:
                self._behind.run(self._conn)
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @property
    def version(self) -> int:
        """The database's schema version (`SCHEMA_VERSION` once open)."""
        with self.read() as conn:
            return user_version(conn)

    def read(self) -> AbstractContextManager[sqlite3.Connection]:
        """One read transaction: a method's several SELECTs see one snapshot."""
        return self._transaction("BEGIN")

    def write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction, committed at the end of the block or rolled back on an error.

        IMMEDIATE takes the write lock up front, so a writer waits its turn through
        busy_timeout instead of failing with "database is locked" when it would upgrade a
        read transaction that another connection overtook."""
        return self._transaction("BEGIN IMMEDIATE")

    def defer(self, key: str | None, what: str, write: Deferred) -> None:
        """Hold a write to the end of the running loop's turn (`WriteBehind.add`)."""
        with self._lock:
            self._require()
            self._behind.add(key, what, write)

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._require()
            self._behind.run(conn)
            with conn:  # commit on success, roll back on any error
                conn.execute(begin)
                yield conn

    def _end_of_turn(self) -> None:
        with self._lock:
            self._behind.turn_ended()
            if self._conn is not None:
                self._behind.run(self._conn)

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the store {self.path} is not open")
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the sqlite3 module opens no transactions by itself; each
        # transaction says BEGIN IMMEDIATE (writes) or BEGIN (reads) and `with conn:`
        # commits or rolls back.
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,  # one connection for every thread, under self._lock
            )
        except sqlite3.Error as exc:
            raise ConfigError([f"{self.path}: cannot open the database: {exc}"]) from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Look at the version before anything writes (switching to WAL rewrites the
            # header): a database from a newer ambiance is refused, and left untouched.
            found, known = user_version(conn), len(schema.MIGRATIONS)
            if found > known:
                raise ConfigError(
                    [
                        f"{self.path}: the database is at schema version {found}, but this "
                        f"ambiance knows versions up to {known}; it was written by "
                        "a newer ambiance: upgrade, or point the data dir elsewhere"
                    ]
                )
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # e.g. a file system without shared memory
                log.warning("store: %s runs in %s journal mode, not WAL", self.path, mode)
            # NORMAL, not FULL: in WAL mode a commit has been write()n to the WAL file when
            # it returns, and the OS keeps those pages even if this process is killed;
            # NORMAL only skips the fsync, which matters for a power cut or a kernel crash
            # (the last commits may be lost, the database still never corrupts). FULL
            # would fsync on every commit, milliseconds on the event loop, for that alone.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")  # per connection, off by default
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ConfigError([f"{self.path}: not a usable SQLite database: {exc}"]) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the missing migrations, each in its own transaction with its version."""
        for version, script in enumerate(schema.MIGRATIONS, start=1):
            with conn:
                # Check under the write lock: another process opening the same file at the
                # same moment may have just applied this very step.
                conn.execute("BEGIN IMMEDIATE")
                found = user_version(conn)
                if found >= version:
                    continue
                try:
                    for statement in schema.statements(script):
                        conn.execute(statement)
                except sqlite3.Error as exc:  # rolled back by `with conn`: still at `found`
                    raise ConfigError(
                        [f"{self.path}: migrating to schema version {version} failed: {exc}"]
                    ) from exc
                # PRAGMA user_version is part of the transaction: script and version
                # commit together or not at all.
                conn.execute(f"PRAGMA user_version = {version}")
                log.info("store: %s migrated to schema version %d", self.path, version)
