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

Faults (faults.py turns SQLite's and the OS's errors into `StorageError`)
    `open()` checks the file before anything writes to it (checks.py: a SQLite file, its
    quick_check, our tables) and refuses a bad one, which it keeps as it is. While open,
    a read or write that fails raises `StorageError` to its caller and tells the `monitor`
    (the service's health), and `problem` holds it; the first write that works again
    clears it, except damage, which stays until a restore. `flush()` does the held writes
    now, for a command that must not be acknowledged before its change is saved; `probe()`
    tries a write while a fault lasts, so that health recovers without one. `backup()`
    copies the database into the backups folder (backups.py) after a quick_check.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Final, Protocol

from ambiance.errors import ConfigError, StorageError
from ambiance.infra.store import backups, checks, faults, schema
from ambiance.infra.store.restore import DirLock
from ambiance.infra.store.schema import user_version
from ambiance.infra.store.writebehind import Deferred, WriteBehind

log = logging.getLogger(__name__)

DB_NAME: Final = "ambiance.db"  # the file's name inside the data dir (`Store.in_dir`)
BUSY_TIMEOUT_MS: Final = 5000  # how long a writer waits for another connection's turn


class Monitor(Protocol):
    """Told of the database's faults, and of each write that worked (core/health.py's
    `Availability` is one: it logs once on a failure and once on the recovery)."""

    def failed(self, exc: BaseException) -> None: ...

    def ok(self) -> None: ...


class Database:
    """The SQLite file at `path`: `open()` before use, `close()` after."""

    def __init__(self, path: Path) -> None:
        self.path = path  # the database file; its folder is created by `open()`
        self.monitor: Monitor | None = None  # told of faults and recoveries (the health)
        self.problem: StorageError | None = None  # the fault now, if any (see the module)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._behind = WriteBehind(self._end_of_turn)  # guarded by `_lock`
        self._dir_lock = DirLock(path.parent)  # shared while open: no restore under us

    def open(self, *, backup: bool = False) -> None:
        """Check the file, connect and bring the schema up to date; with `backup`, back it
        up once checked, before a migration changes it. A second call does nothing.

        `StorageError` (in one line: what, where, what to do) for a folder that is not
        one or cannot be written, and for a database that is damaged or not ours."""
        with self._lock:
            if self._conn is not None:
                return
            self._make_folder()
            self._dir_lock.acquire(exclusive=False)
            try:
                conn, state = self._connect()
                try:
                    # An existing database is backed up as it is, before a migration; a
                    # new one once it has its tables (its backup says: there was one here).
                    if backup and state == "database":
                        self._backup(conn, "backing up the database at start")
                    self._migrate(conn)
                    if backup and state == "new":
                        self._backup(conn, "backing up the new database")
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                self._dir_lock.release()
                raise
            self._conn = conn

    def close(self) -> None:
        """Do the held writes and disconnect; a second call does nothing. Writes that
        cannot be done now are logged as lost (the service is going away)."""
        with self._lock:
            if self._conn is not None and self._behind.pending:
                failure = self._run_behind(self._conn, "not saved")
                if failure is not None:
                    log.error(
                        "store: %d changes could not be saved before closing, and are lost: %s",
                        self._behind.pending,
                        failure.message,
                    )
            conn, self._conn = self._conn, None
            self._dir_lock.release()
        if conn is not None:
            conn.close()

    def flush(self) -> None:
        """Do the held writes now; `StorageError` when they could not be (they are kept,
        and tried again first at the next call)."""
        with self._lock:
            conn = self._require()
            if not self._behind.pending:
                return
            failure = self._run_behind(conn, "not saved")
        self._report(failure, wrote=True)
        if failure is not None:
            raise failure

    def probe(self) -> bool:
        """Try the held writes, or one small write when none are held: is the database
        writable again? Says so to the monitor either way."""
        failure = self._damaged  # damage does not pass by itself: nothing to try
        if failure is None:
            with self._lock:
                conn = self._require()
                if self._behind.pending:
                    failure = self._run_behind(conn, "not saved")
                else:
                    failure = self._write_nothing(conn)
        self._report(failure, wrote=True)
        return failure is None

    def backup(self, at: float | None = None) -> Path | None:
        """Back the open database up after a quick_check (backups.py); the new file, or
        None when nothing changed since the newest. `StorageError` when it is damaged
        (then no backup is made) or the backup cannot be written."""
        failure: StorageError | None = None
        made: Path | None = None
        with self._lock:
            conn = self._require()
            try:
                made = self._backup(conn, "backing up the database", at)
            except StorageError as exc:
                failure = exc
        self._report(failure, wrote=False)
        if failure is not None:
            raise failure
        return made

    def restore_hint(self) -> str:
        return backups.restore_hint(self.path)

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
        writing = begin != "BEGIN"
        failure: StorageError | None = None
        committed = False
        wrote_held = False
        try:
            with self._lock:
                conn = self._require()
                held = self._behind.pending > 0
                failure = self._run_behind(conn, "a change was not saved")
                wrote_held = held and failure is None
                damage = self._damaged
                if writing and damage is not None:
                    # A write into a damaged database may spread the damage, and would be
                    # lost with the restore that is coming: refused, reads go on.
                    failure = StorageError(
                        f"not saved: {damage.message}", kind=damage.kind, path=damage.path
                    )
                    raise failure
                try:
                    with conn:  # commit on success, roll back on any error
                        conn.execute(begin)
                        yield conn
                except BaseException as exc:
                    if not faults.is_storage_fault(exc):
                        raise
                    failure = self._fault(exc, "not saved" if writing else "cannot read")
                    raise failure from exc
                committed = True
        finally:
            self._report(failure, wrote=wrote_held or (writing and committed))

    def _end_of_turn(self) -> None:
        failure: StorageError | None = None
        held = False
        with self._lock:
            self._behind.turn_ended()
            if self._conn is not None and self._behind.pending:
                held = True
                failure = self._run_behind(self._conn, "a change was not saved")
        self._report(failure, wrote=held)

    def _write_nothing(self, conn: sqlite3.Connection) -> StorageError | None:
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                # Rewrites the header page: a real write that changes nothing.
                conn.execute(f"PRAGMA user_version = {user_version(conn)}")
        except (sqlite3.Error, OSError) as exc:
            return self._fault(exc, "cannot write to the database")
        return None

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the store {self.path} is not open")
        return self._conn

    def _run_behind(self, conn: sqlite3.Connection, doing: str) -> StorageError | None:
        """Do the held writes (under the lock); their fault, if they failed (kept)."""
        if self._damaged is not None:
            return self._damaged
        try:
            self._behind.run(conn)
        except (sqlite3.Error, OSError) as exc:
            return self._fault(exc, f"{doing} (kept, to be saved once it can be)")
        return None

    def _fault(self, exc: BaseException, doing: str) -> StorageError:
        return faults.storage_error(exc, self.path, doing, restore=self.restore_hint)

    @property
    def _damaged(self) -> StorageError | None:
        """The damage found while open: it stays (writes are refused) until a restore."""
        problem = self.problem
        return problem if problem is not None and problem.kind == faults.DAMAGED else None

    def _report(self, failure: StorageError | None, *, wrote: bool) -> None:
        """Keep `problem` and tell the monitor (outside the lock: it publishes events)."""
        monitor = self.monitor
        if failure is not None:
            if self.problem is None or self.problem.kind != faults.DAMAGED:
                self.problem = failure  # damage is what matters, whatever comes after
            if monitor is not None:
                monitor.failed(self.problem)
        elif wrote and (self.problem is None or self.problem.kind != faults.DAMAGED):
            if self.problem is not None:
                self.problem = None
            if monitor is not None:
                monitor.ok()

    def _make_folder(self) -> None:
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise StorageError(
                f"the data dir {folder} is a file, not a folder: move it aside or point "
                "data_dir elsewhere",
                kind="not_a_directory",
                path=str(folder),
            ) from None
        except OSError as exc:
            raise self._fault(exc, "cannot make the data dir") from None

    def _backup(self, conn: sqlite3.Connection, doing: str, at: float | None = None) -> Path | None:
        """Back up `conn` (under the lock, or before it is shared) after a quick_check."""
        checks.check_contents(conn, self.path)
        try:
            folder = backups.folder_of(self.path)
            made = backups.write(conn, folder, time.time() if at is None else at)
        except (sqlite3.Error, OSError) as exc:
            raise self._fault(exc, doing) from exc
        if made is not None:
            log.info("store: backed up to %s", made)
        return made

    def _connect(self) -> tuple[sqlite3.Connection, checks.State]:
        # Look at the file before SQLite makes or touches anything (checks.py).
        state = checks.file_state(self.path)
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
            raise self._fault(exc, "cannot open the database") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if state == "database":
                checks.check_contents(conn, self.path)
            # Look at the version before anything writes (switching to WAL rewrites the
            # header): a database from a newer ambiance is refused, and left untouched.
            found = user_version(conn)
            if found > len(schema.MIGRATIONS):
                raise checks.newer(self.path, found)
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
        except (sqlite3.Error, OSError) as exc:
            conn.close()
            raise self._fault(exc, "cannot open the database") from exc
        except BaseException:
            conn.close()
            raise
        return conn, state

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the missing migrations, each in its own transaction with its version."""
        for version, script in enumerate(schema.MIGRATIONS, start=1):
            try:
                self._migrate_to(conn, version, script)
            except (sqlite3.Error, OSError) as exc:  # the disk, not the script
                raise self._fault(exc, f"cannot migrate to schema version {version}") from exc

    def _migrate_to(self, conn: sqlite3.Connection, version: int, script: str) -> None:
        with conn:
            # Check under the write lock: another process opening the same file at the
            # same moment may have just applied this very step.
            conn.execute("BEGIN IMMEDIATE")
            found = user_version(conn)
            if found >= version:
                return
            try:
                for statement in schema.statements(script):
                    conn.execute(statement)
            except sqlite3.Error as exc:  # rolled back by `with conn`: still at `found`
                if faults.is_storage_fault(exc) and faults.kind_of(exc) != faults.IO:
                    raise  # the disk (full, read-only, damaged), not the script
                raise ConfigError(
                    [f"{self.path}: migrating to schema version {version} failed: {exc}"]
                ) from exc
            # PRAGMA user_version is part of the transaction: script and version
            # commit together or not at all.
            conn.execute(f"PRAGMA user_version = {version}")
            log.info("store: %s migrated to schema version %d", self.path, version)
