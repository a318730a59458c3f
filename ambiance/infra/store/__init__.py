"""The store: everything that must outlive the process, in the data dir.

What it keeps, so that nothing is lost when the service is killed (kill -9) or restarts:
running sessions with their stage deadlines (and the routine as the session uses it, so a
session resumes even if the YAML changed meanwhile), the commands given, each device's
snapshot taken at a session's start (so the room can still be put back), the
do-not-disturb state sent to each phone, profiles, feedback and session history, all in
one SQLite file (`Database`, database.py); and the API token's hash, in a file of its own.

`Store` is what the service opens: one database and a repository per kind of data, each
a small class over it (`store.sessions`, `store.snapshots`, `store.dnd`, `store.profiles`,
`store.feedback`), plus `store.tokens`. Every repository method is one short transaction,
except the `*_soon` ones, which wait for the end of the event loop's turn
(writebehind.py: the rule for "no loop" is there). A read or write that fails raises
`StorageError` (faults.py); the file is checked at open (checks.py) and backed up into
`<data dir>/backups/` (backups.py), from where `ambiance restore` puts one back
(restore.py).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from ambiance.core.status import ACTIVE
from ambiance.infra.store.database import DB_NAME, Database
from ambiance.infra.store.dnd import DndStates
from ambiance.infra.store.feedback import AlreadyGiven, FeedbackLog
from ambiance.infra.store.profiles import Profiles
from ambiance.infra.store.schema import MIGRATIONS, SCHEMA_VERSION
from ambiance.infra.store.sessions import STATUSES, SessionRecord, Sessions
from ambiance.infra.store.snapshots import PendingRestore, Snapshots
from ambiance.infra.store.tokens import Tokens

__all__ = [
    "ACTIVE",
    "DB_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATUSES",
    "AlreadyGiven",
    "Database",
    "PendingRestore",
    "SessionRecord",
    "Store",
    "Tokens",
]


class Store:
    """The database at `path` with its repositories; `open()` before use, `close()` after
    (or `with Store(path):`). The token file is beside the database, in its folder, and
    needs no `open()`."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path)
        self.sessions = Sessions(self.db)
        self.snapshots = Snapshots(self.db)
        self.dnd = DndStates(self.db)
        self.profiles = Profiles(self.db)
        self.feedback = FeedbackLog(self.db)
        self.tokens = Tokens(path.parent)

    @classmethod
    def in_dir(cls, data_dir: Path) -> Store:
        """The store at its usual place: `<data dir>/ambiance.db`."""
        return cls(data_dir / DB_NAME)

    def open(self, *, backup: bool = False) -> None:
        """Open the database (`Database.open`: checked first; with `backup`, backed up)."""
        self.db.open(backup=backup)

    def flush(self) -> None:
        """Write what is held for the end of the turn now; `StorageError` if it cannot be."""
        self.db.flush()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
