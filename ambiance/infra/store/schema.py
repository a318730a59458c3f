"""The schema: the migrations that build it, one version at a time (`PRAGMA user_version`).

`Database.open()` runs each missing one in its own transaction, with its version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Final

_V1 = """
-- One row per session, live or over: the live ones are what a restart resumes, the
-- others are the history. `routine_data` is the routine (and scenes) as this session
-- uses them, adapted to the profile: JSON that only the engine reads.
CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    room             TEXT NOT NULL,
    routine          TEXT NOT NULL,
    routine_data     TEXT NOT NULL,
    profile          TEXT,
    status           TEXT NOT NULL
                     CHECK (status IN ('running', 'paused', 'finished', 'stopped')),
    stage_index      INTEGER NOT NULL,
    started_at       REAL NOT NULL,
    stage_started_at REAL NOT NULL,
    deadline         REAL,
    paused_remaining REAL,
    ended_at         REAL,
    updated_at       REAL NOT NULL
);
-- A room runs at most one session: the database says so too, so that two writers (a
-- bug, or two processes on one data dir) cannot both resume a session in one room.
CREATE UNIQUE INDEX sessions_one_active_per_room
    ON sessions (room) WHERE status IN ('running', 'paused');
CREATE INDEX sessions_by_start ON sessions (started_at);

-- What each device looked like before the session changed it (opaque JSON per device),
-- so the room can be put back even after a crash mid-session.
CREATE TABLE snapshots (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    device     TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (session_id, device)
);

-- The last do-not-disturb message sent to each phone of a room (to know after a restart
-- what the phones were told, and to switch them off again).
CREATE TABLE dnd (
    room       TEXT NOT NULL,
    phone      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (room, phone)
);

CREATE TABLE profiles (
    name       TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    data       TEXT NOT NULL,
    at         REAL NOT NULL
);
CREATE INDEX feedback_by_session ON feedback (session_id);
"""

_V2 = """
-- The commands given during a session (next, pause, extend...), oldest first: what the
-- history shows, and what tells apart a stage the person skipped from one that ran out.
CREATE TABLE commands (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    at         REAL NOT NULL,
    action     TEXT NOT NULL,
    args       TEXT NOT NULL
);
CREATE INDEX commands_by_session ON commands (session_id, id);

-- Feedback names its profile itself: a profile's feedback is read without a join, and it
-- stays that profile's even if the session row is ever pruned. Version 1 feedback
-- belonged to its session's profile, so that is what it gets.
ALTER TABLE feedback ADD COLUMN profile TEXT;
UPDATE feedback
    SET profile = (SELECT sessions.profile FROM sessions WHERE sessions.id = feedback.session_id);
CREATE INDEX feedback_by_profile ON feedback (profile, at);

-- History filtered by room or by profile, newest first, without a scan.
CREATE INDEX sessions_by_room ON sessions (room, started_at);
CREATE INDEX sessions_by_profile ON sessions (profile, started_at);
"""

_V3 = """
-- A session's routine (with its scenes) is fixed for the session's life. In a table of its
-- own it is written once, and each stage change rewrites only the small session row: about
-- 200 bytes instead of 5-10 KB with overflow pages, every few minutes of every session
-- (less time on the event loop, less wear on a Raspberry Pi's SD card).
CREATE TABLE session_routines (
    session_id   TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    routine_data TEXT NOT NULL
);
INSERT INTO session_routines (session_id, routine_data) SELECT id, routine_data FROM sessions;
ALTER TABLE sessions DROP COLUMN routine_data;
"""

_V4 = """
-- A snapshot is kept as not yet put back until its device is back as it says. A restore
-- that a crash (or a stop while the bridge was away) cut short is then done at the next
-- start. The snapshots of sessions that ended before this version are taken as put back.
ALTER TABLE snapshots ADD COLUMN restored_at REAL;
UPDATE snapshots SET restored_at = 0
    WHERE session_id IN (SELECT id FROM sessions WHERE status IN ('finished', 'stopped'));
"""

_V5 = """
-- Feedback is taken once per session: a session is for one receiver (its profile), and a
-- second feedback, sent from another phone, was learned a second time. The database says
-- so, so that two requests at once (or two processes) cannot both get in. Of the
-- duplicates stored before, the first given (the lowest id) stays; the others were
-- acknowledged once, so they are set aside in a table of their own, not deleted.
CREATE TABLE feedback_set_aside (
    id         INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    profile    TEXT,
    data       TEXT NOT NULL,
    at         REAL NOT NULL,
    reason     TEXT NOT NULL
);
INSERT INTO feedback_set_aside (id, session_id, profile, data, at, reason)
    SELECT id, session_id, profile, data, at, 'a second feedback on its session'
    FROM feedback
    WHERE id NOT IN (SELECT MIN(id) FROM feedback GROUP BY session_id);
DELETE FROM feedback WHERE id NOT IN (SELECT MIN(id) FROM feedback GROUP BY session_id);
DROP INDEX feedback_by_session;
CREATE UNIQUE INDEX feedback_once_per_session ON feedback (session_id);

-- The stages a session got to (a JSON list of names, in the order first entered): what
-- its feedback may speak of. NULL for the sessions before this version: they are taken
-- to have walked their stages in order up to the one they ended in.
ALTER TABLE sessions ADD COLUMN reached TEXT;
-- Taking turns: the session this one came after (the other person's massage).
ALTER TABLE sessions ADD COLUMN follows TEXT REFERENCES sessions (id) ON DELETE SET NULL;
CREATE INDEX sessions_by_follows ON sessions (follows) WHERE follows IS NOT NULL;
"""

_V6 = """
-- A session's pressure check-ins (JSON): the answers given, the level each hands-on stage
-- is at, the one asked now, and the stage's own time run (pauses left out), so that a
-- restart neither asks an answered one again nor loses an answer. NULL for the sessions
-- before this version: they had none.
ALTER TABLE sessions ADD COLUMN checkins TEXT;
"""

# MIGRATIONS[i] takes a database from version i to i + 1. Append only: a script that has
# shipped is never edited, since databases out there are already past it.
MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6]
SCHEMA_VERSION: Final = len(MIGRATIONS)  # the version `open()` brings a database to


def statements(script: str) -> Iterator[str]:
    """Split a script into single statements (`sqlite3.complete_statement` knows triggers).

    `executescript()` would be simpler, but it COMMITs first, so a migration could not run
    inside the transaction that checked the version and holds the write lock.
    """
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    # What is left is comments (nothing to run) or an unfinished statement, which SQLite
    # is given so that it says what is wrong with it.
    if any(line.strip() and not line.strip().startswith("--") for line in buffer.splitlines()):
        yield buffer


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])
