"""Write-behind: writes held to the end of the event loop's turn, then done in one transaction.

Why: the stage timers of many rooms may fire at the same moment, and a commit each (~0.1 ms)
would make the last room's change late by all the others'. So the rooms' session saves and
command logs, and the phones' DND states, wait for the end of the loop's turn and go to
SQLite together: many rooms starting or ending at once cost one commit, not one each.

The rules
- A write is held only on a running event loop: "the end of the turn" means that loop's.
  Asking without one is a `RuntimeError`, since no turn would ever end to write it. Code
  that runs without a loop (a worker thread, a script, start-up before the loop) writes at
  once with the repository's plain method: `save()`, not `save_soon()`.
- The writes of one turn go in one transaction, in the order of their first request; a
  write given a key (a session's id) that is already waiting replaces the waiting one in
  its place, so several changes of a session in one turn are one write.
- The database does them before anything else it is asked (`Database.read`/`write`) and
  when it closes, so nothing ever sees the store without them.
- A write that fails on its own (a constraint, a record that cannot be built) is logged
  and left out; the others still commit. A batch that fails as a whole (disk full, I/O
  error) is rolled back and kept, to be tried again first thing at the next call, and
  its error is raised to the database, which says so (its health, the caller of `flush`).

Not thread-safe by itself: the database calls it under its lock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections.abc import Callable

log = logging.getLogger(__name__)

# A held write: it runs inside the batch's transaction, and what it returns (if anything)
# is called once that transaction has committed.
Deferred = Callable[[sqlite3.Connection], Callable[[], None] | None]


class WriteBehind:
    def __init__(self, end_of_turn: Callable[[], None]) -> None:
        self.end_of_turn = end_of_turn  # what the loop calls when the turn is over
        self._pending: dict[str | int, tuple[str, Deferred]] = {}  # key -> (what, write)
        self._numbers = itertools.count()  # keys of the writes given none
        self._waiting_on: asyncio.AbstractEventLoop | None = None  # the loop that will call

    def add(self, key: str | None, what: str, write: Deferred) -> None:
        """Hold `write` (`what` names it in the log) to the end of the running loop's turn."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"{what} was to be written at the end of the event loop's turn, but no loop "
                "is running: write it now instead (save(), not save_soon())"
            ) from None
        self._pending[next(self._numbers) if key is None else key] = (what, write)
        # One call a turn. Compared by loop: one that was closed before its call came
        # never calls, and a later loop must not wait for it.
        if self._waiting_on is not loop:
            self._waiting_on = loop
            loop.call_soon(self.end_of_turn)

    def turn_ended(self) -> None:
        """The loop has called: the next write held asks it again."""
        self._waiting_on = None

    @property
    def pending(self) -> int:
        """How many writes are held."""
        return len(self._pending)

    def run(self, conn: sqlite3.Connection) -> None:
        """Do the held writes in one transaction (see the rules above); a batch that fails
        as a whole raises its error (sqlite3.Error or OSError) once it is kept again."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        committed: list[Callable[[], None]] = []
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                for what, write in pending.values():
                    try:
                        done = write(conn)
                    except sqlite3.IntegrityError as exc:
                        # Only this statement is undone; the others still commit.
                        log.error("store: %s not saved: %s", what, exc)
                        continue
                    except (sqlite3.Error, OSError):
                        raise
                    except Exception:  # a record that cannot be built must not stop the rest
                        log.exception("store: %s not saved", what)
                        continue
                    if done is not None:
                        committed.append(done)
        except (sqlite3.Error, OSError):
            # The transaction is undone; the writes are tried again at the next call (the
            # caller's own work comes after them, as always).
            self._pending = pending
            raise
        for done in committed:
            done()
