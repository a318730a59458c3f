"""The disk under a real service process: a data dir that is read-only, a disk that fills
mid-session and empties again, a database with garbage over a page. Nothing unsaved is
acknowledged, nothing fails without saying so, and a bad database is kept, refused in one
line that names the backup, and brought back with `ambiance restore`.

The read-only and full disks are real mounts in a namespace of the service's own
(tests/mounts.py), so they hold for root too."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from ambiance.infra.store import Store, backups
from tests import mounts
from tests.mosquitto import Mosquitto, Subscriber
from tests.service_process import ServiceProcess, write

ROOM = "/api/v1/rooms/bedroom"
SAM = {"name": "sam", "display_name": "Sam", "pressure": "medium"}


def ambiance(*args: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """`ambiance <args>` as a user runs it (once, to its end)."""
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "ambiance", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("AMBIANCE_")},
    )


def stored(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of the service's database as they are on its disk, from a copy of the file and
    its -wal (SQLite resolves /proc/<pid>/root, a link, to the folder outside the mount)."""
    look = Path(tempfile.mkdtemp(prefix="look-"))
    try:
        for suffix in ("", "-wal"):
            source = Path(f"{db}{suffix}")
            if source.exists():
                shutil.copyfile(source, look / f"copy.db{suffix}")
        conn = sqlite3.connect(look / "copy.db")
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    finally:
        shutil.rmtree(look)


# --- a read-only data dir ---------------------------------------------------------------


@pytest.mark.parametrize("with_data", [False, True], ids=["empty", "with-a-database"])
def test_a_read_only_data_dir_is_refused_in_one_line_by_serve_and_check(
    tmp_path: Path, with_data: bool
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    if with_data:  # SQLite would open it read-only, quietly, and fail every write later
        with Store.in_dir(data) as store:
            store.profiles.put("sam", SAM, at=1.0)
    before = sorted(p.name for p in data.iterdir())
    prefix = mounts.read_only(data)

    serve = ambiance("serve", "--port", "0", "--data-dir", str(data), prefix=prefix)
    check = ambiance("check", "--data-dir", str(data), prefix=prefix)

    for result in (serve, check):
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [
            f"error: data_dir {data} cannot be written (a read-only disk, or no permission for "
            "the user ambiance runs as): make it writable, or point data_dir (--data-dir, "
            "AMBIANCE_DATA_DIR) elsewhere"
        ], result.stderr
    assert "is running" not in serve.stdout
    assert sorted(p.name for p in data.iterdir()) == before


# --- a disk that fills while the service runs ------------------------------------------


def test_a_disk_that_fills_mid_session_is_said_and_nothing_unsaved_is_acknowledged(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = write(
        tmp_path / "ambiance.yaml",
        f"mqtt: {{host: 127.0.0.1, port: {mosquitto.port}, reconnect_min: 0.05,"
        " reconnect_max: 0.5}\n",
    )
    service = ServiceProcess(
        "--config", str(config), "--data-dir", str(data), prefix=mounts.small_disk(data)
    )
    url = service.start()
    disk = mounts.inside(service.pid, data)  # the service's disk, as it sees it
    db = disk / "ambiance.db"
    try:
        with (
            httpx.Client(base_url=url, timeout=10) as client,
            Subscriber(mosquitto, "ambiance/bedroom/error") as errors,
        ):
            session = client.post(f"{ROOM}/spa").json()["session"]["id"]
            assert client.get("/api/v1/health").json()["store"]["available"] is True
            filler = mounts.fill(disk)

            # A command whose change cannot be saved is not acknowledged: the API's error.
            r = client.post(f"{ROOM}/session/next")
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "storage_error"
            assert error["message"].startswith("not saved (kept, to be saved once it can be):")
            assert "the disk is full" in error["message"]
            assert error["detail"]["kind"] == "full"
            service.wait_for_line("store (sqlite) is unavailable")
            health = client.get("/api/v1/health").json()
            assert health["status"] == "degraded"
            assert health["store"]["available"] is False
            assert "the disk is full" in health["store"]["error"]
            # The room obeys all the same (the person in it is not kept waiting) ...
            assert client.get(ROOM).json()["session"]["stage"]["index"] == 1
            # ... and a new profile, which changes nothing but the store, is refused.
            r = client.post("/api/v1/profiles", json=SAM)
            assert (r.status_code, r.json()["error"]["code"]) == (503, "storage_error")
            assert client.get("/api/v1/profiles").json() == []  # reads go on
            # Over MQTT, the error goes to <room>/error.
            errors.publish("ambiance/bedroom/cmd", "next")
            reported = json.loads(errors.wait_for("ambiance/bedroom/error").payload)
            assert reported["error"]["code"] == "storage_error", reported
            assert stored(db, "SELECT stage_index FROM sessions") == [(0,)]

            # Room again: the kept changes are saved, and health recovers by itself.
            filler.unlink()
            service.wait_for_line("store (sqlite) is back", timeout=10)
            assert client.get("/api/v1/health").json()["status"] == "ok"
            assert stored(db, "SELECT stage_index FROM sessions") == [(2,)]
            actions = stored(db, "SELECT action FROM commands WHERE session_id = ?", session)
            assert actions == [("start",), ("next",), ("next",)]
            assert client.delete(f"{ROOM}/spa").status_code == 200
            assert stored(db, "SELECT status FROM sessions") == [("stopped",)]
    finally:
        service.terminate()
    assert "Traceback" not in service.log()
    assert service.log().count("store (sqlite) is unavailable") == 1  # said once


# --- a damaged database -----------------------------------------------------------------


def profiles_page(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(
            conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'profiles'").fetchone()[0]
        )
    finally:
        conn.close()


def spoil(db: Path, page: int) -> None:
    """16 bytes of garbage over a page of the file, as a failing disk leaves them."""
    size = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    with db.open("r+b") as f:
        f.seek((page - 1) * size + 8)
        f.write(b"\xde\xad\xbe\xef" * 4)


def test_a_damaged_database_is_refused_kept_and_restored_from_its_backup(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = ServiceProcess("--data-dir", str(data))
    url = first.start()
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.post("/api/v1/profiles", json=SAM).status_code == 201
    first.terminate()
    with Store.in_dir(data) as store:
        newest = store.db.backup()  # as the next start, or `ambiance backup`, would
    assert newest is not None and newest == backups.newest(data / "backups")

    db = data / "ambiance.db"
    spoil(db, profiles_page(db))
    damaged = db.read_bytes()

    serve = ambiance("serve", "--port", "0", "--data-dir", str(data))
    check = ambiance("check", "--data-dir", str(data))
    for result in (serve, check):
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stderr
        assert errors[0].startswith(f"error: {db} is damaged (")
        assert errors[0].endswith(
            f": stop ambiance and restore the newest backup: ambiance restore {newest}"
        )
    assert db.read_bytes() == damaged  # kept as it was, for a restore or a look

    restored = ambiance("restore", "--data-dir", str(data), str(newest))
    assert restored.returncode == 0, restored.stderr
    kept = sorted((data / "backups").glob("replaced-*.db"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    assert f"The database it replaced is kept as {kept[0]}." in restored.stdout

    third = ServiceProcess("--data-dir", str(data))
    url = third.start()
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            assert [p["name"] for p in client.get("/api/v1/profiles").json()] == ["sam"]
            assert client.get("/api/v1/health").json()["status"] == "ok"
    finally:
        third.terminate()


def test_an_emptied_database_is_refused_with_the_backup_to_restore(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.in_dir(data) as store:
        store.profiles.put("sam", SAM, at=1.0)
    store = Store.in_dir(data)
    store.open(backup=True)  # as every start does
    store.close()
    (data / "ambiance.db").write_bytes(b"")  # a sync tool, a `>` too many: zero bytes left
    newest = next((data / "backups").glob("ambiance-*.db"))

    for result in (
        ambiance("serve", "--port", "0", "--data-dir", str(data)),
        ambiance("check", "--data-dir", str(data)),
    ):
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"error: {data / 'ambiance.db'} is empty (0 bytes), but it had data (there are "
            f"backups of it): stop ambiance and restore the newest backup: ambiance restore "
            f"{newest}"
        ]
    assert (data / "ambiance.db").read_bytes() == b""
