"""The command line: `ambiance check` and `ambiance serve` as a user runs them."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ambiance.cli import main
from tests.hostile import alias_anchors, run_ambiance


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ambiance", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("AMBIANCE_DATA_DIR", str(folder))
    monkeypatch.delenv("AMBIANCE_CONFIG", raising=False)
    return folder


def test_check_the_embedded_default(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 1 room(s)")


def test_check_reports_a_broken_config_file_with_its_fields(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ambiance.yaml"
    config.write_text(
        "rooms:\n"
        "  bedroom:\n"
        "    routine: nope\n"
        "    lights: {backend: hue, group: Bedroom}\n"
        "  Living Room: {}\n"
    )
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"error: {config}: rooms.bedroom.lights.bridge: required" in err.replace(
        "Field required", "required"
    )
    assert "rooms.Living Room: room name 'Living Room' must be lower-case" in err
    assert "Traceback" not in err


def test_check_reports_an_unknown_default_routine(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ambiance.yaml"
    config.write_text("rooms:\n  bedroom: {routine: nope}\n")
    assert main(["check", "--config", str(config)]) == 1
    assert "rooms.bedroom.routine: unknown routine 'nope'" in capsys.readouterr().err


def test_check_a_users_scenes_folder(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "candle.yaml").write_text(
        "scenes:\n  candle:\n    lights: {kelvin: 1900, brightness: 8}\n"
    )
    ok = run("check", "--scenes", str(folder))
    assert ok.returncode == 0, ok.stderr
    (folder / "broken.yaml").write_text("scenes:\n  bad:\n    lights: {kelvin: 99999}\n")
    bad = run("check", "--scenes", str(folder))
    assert bad.returncode == 1
    assert f"{folder / 'broken.yaml'}: scenes.bad.lights.kelvin:" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_check_a_config_file_that_is_not_yaml(data_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "ambiance.yaml"
    config.write_text("rooms: [unclosed\n")
    result = run("check", "--config", str(config))
    assert result.returncode == 1
    assert f"{config}: not valid YAML (line" in result.stderr


def test_environment_overrides_the_file(data_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "ambiance.yaml"
    config.write_text("rooms:\n  den: {}\n")
    result = run("check", "--config", str(config), env={"AMBIANCE_ROOMS__DEN__ROUTINE": "nope"})
    assert result.returncode == 1
    assert "rooms.den.routine: unknown routine 'nope'" in result.stderr


@pytest.mark.parametrize("command", ["check", "serve"])
def test_an_alias_bomb_in_a_tagged_field_is_one_clear_line_at_once(
    data_dir: Path, tmp_path: Path, command: str
) -> None:
    # `*x8` stands for 43 million values; the message about the unknown backend used to
    # show them all (minutes, gigabytes). Now the file is refused as it is read, by
    # `check` and by `serve` (before it binds) alike, in one line.
    config = tmp_path / "bomb.yaml"
    config.write_text(
        "anchors:\n"
        + alias_anchors(indent="  ")
        + "rooms:\n  bedroom:\n    lights: {backend: *x8}\n"
    )
    args = [command, "--config", str(config)] + (["--port", "0"] if command == "serve" else [])
    result = run_ambiance(*args)  # under 1 GiB of memory, within seconds
    said = result.stderr[:2000]
    assert result.returncode == 1, said
    assert len(result.stderr.splitlines()) == 1, said
    line = result.stderr.strip()
    assert line.startswith(f"error: {config}: refused (line "), said
    assert "too many aliases" in line, said
    assert len(line) < 300, said


@pytest.fixture
def server(data_dir: Path) -> Iterator[str]:
    """`ambiance serve --port 0` in a real process; yields the URL it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ambiance", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True)
    reader.start()
    url = None
    seen = []
    try:
        while url is None:
            line = lines.get(timeout=30)
            seen.append(line)
            if "is running: open " in line:
                url = line.rsplit(" ", 1)[1].strip()
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        # A graceful stop, then the interrupt's own exit status (128 + SIGINT).
        reader.join(timeout=10)  # stdout closes when the process ends
        output = "".join(seen) + "".join(lines.queue)
        assert process.returncode == 130, output
        assert "Finished server process" in output
        assert "Traceback" not in output


def test_serve_prints_where_to_open_it_and_serves_spa_mode(server: str) -> None:
    assert server.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=server, timeout=10) as client:
        assert client.get("/api/v1/health").json()["status"] == "ok"
        assert client.get("/").status_code in (200, 307)
        r = client.post("/api/v1/rooms/bedroom/spa")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["session"]["routine"] == "classic"
        assert body["session"]["stage"]["name"] == "prepare"
        assert body["lights"]["synced"]
        assert all(light["on"] for light in body["lights"]["lights"])
        r = client.post("/api/v1/rooms/bedroom/session/next")
        assert r.json()["session"]["stage"]["name"] == "effleurage"
        assert client.delete("/api/v1/rooms/bedroom/spa").json()["session"] is None


def test_chime_writes_a_short_wav(tmp_path: Path) -> None:
    import wave

    result = run("chime", "--out", str(tmp_path / "ambiance"))
    assert result.returncode == 0, result.stderr
    path = tmp_path / "ambiance" / "chime.wav"
    with wave.open(str(path)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
        assert 0.5 < seconds < 3
        assert wav.getnchannels() == 1
    assert "mpc update" in result.stdout


# --- check and serve agree ---------------------------------------------------------------

PAGE_OF_GARBAGE = b"\xde\xad\xbe\xef" * 4


def _database(data: Path, *, version: int | None = None) -> Path:
    """A real database with a profile in it, as a service leaves it."""
    from ambiance.infra.store import Store

    with Store.in_dir(data) as store:
        store.profiles.put("sam", {"name": "sam"}, at=1.0)
    db = data / "ambiance.db"
    if version is not None:
        conn = sqlite3.connect(db)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.close()
    return db


def _spoiled(data: Path) -> None:
    db = _database(data)
    conn = sqlite3.connect(db)
    page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'profiles'").fetchone()
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with db.open("r+b") as f:
        f.seek((page[0] - 1) * size + 8)
        f.write(PAGE_OF_GARBAGE)


def _emptied(data: Path) -> None:
    from ambiance.infra.store import Store

    _database(data)
    store = Store.in_dir(data)
    store.open(backup=True)
    store.close()
    (data / "ambiance.db").write_bytes(b"")


def _foreign(data: Path) -> None:
    data.mkdir(parents=True)
    conn = sqlite3.connect(data / "ambiance.db")
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# Each: the config's text (with {tmp}) and what to do to the data dir before both run.
BAD_STARTS: dict[str, tuple[str, Any]] = {
    "tls-ca-file-missing": ("mqtt: {host: 127.0.0.1, tls: true, ca_file: /nonexistent}", None),
    "tls-ca-file-not-a-certificate": (
        "mqtt: {host: 127.0.0.1, ca_file: {tmp}/ca.crt}",
        lambda data, tmp: _write(tmp / "ca.crt", "not a certificate\n"),
    ),
    "tls-client-certificate-not-one": (
        "mqtt: {host: 127.0.0.1, cert_file: {tmp}/c.crt, key_file: {tmp}/c.key}",
        lambda data, tmp: (_write(tmp / "c.crt", "nope\n"), _write(tmp / "c.key", "nope\n")),
    ),
    "data-dir-is-a-file": ("{}", lambda data, tmp: _write(data, "")),
    "data-dir-under-a-file": (
        "data_dir: {tmp}/file/data",
        lambda data, tmp: _write(tmp / "file", ""),
    ),
    "database-damaged": ("{}", lambda data, tmp: _spoiled(data)),
    "database-not-sqlite": ("{}", lambda data, tmp: _write(data / "ambiance.db", "hello " * 50)),
    "database-emptied": ("{}", lambda data, tmp: _emptied(data)),
    "database-not-ours": ("{}", lambda data, tmp: _foreign(data)),
    "database-newer": ("{}", lambda data, tmp: _database(data, version=99)),
    "host-not-of-this-machine": ("host: 192.0.2.1", None),  # TEST-NET-1: nobody's
    "token-file-broken": ("{}", lambda data, tmp: _write(data / "auth.json", "{nope")),
    "hue-usernames-broken": (
        "rooms: {bedroom: {lights: {backend: hue, bridge: '127.0.0.1:9', group: Bedroom}}}",
        lambda data, tmp: _write(data / "hue.json", "[nope"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_STARTS))
def test_what_serve_refuses_check_names_first_in_the_same_words(tmp_path: Path, case: str) -> None:
    text, spoil = BAD_STARTS[case]
    data = tmp_path / "data"
    config = tmp_path / "ambiance.yaml"
    config.write_text(text.replace("{tmp}", str(tmp_path)) + "\n")
    if spoil is not None:
        spoil(data, tmp_path)
    args = ("--config", str(config), "--data-dir", str(data))
    if "data_dir:" in text:
        args = ("--config", str(config))
    before = _listing(tmp_path)

    check = run("check", *args)
    serve = run("serve", "--port", "0", *args)

    assert check.returncode == serve.returncode == 1, check.stderr + serve.stdout + serve.stderr
    for result in (check, serve):
        assert "Traceback" not in result.stderr, result.stderr
    assert "is running" not in serve.stdout
    assert _errors(serve) == _errors(check) != [], serve.stderr
    assert _listing(tmp_path) == before  # neither made nor changed anything


@pytest.mark.parametrize("disk", ["read-only", "full"])
def test_a_data_dir_that_takes_no_write_is_named_by_check_and_refused_by_serve(
    tmp_path: Path, disk: str
) -> None:
    from tests import mounts

    data = tmp_path / "data"
    data.mkdir()
    prefix = mounts.read_only(data) if disk == "read-only" else mounts.full_disk(data)

    def under(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "ambiance", *args, "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    check, serve = under("check"), under("serve", "--port", "0")
    assert check.returncode == serve.returncode == 1, check.stderr + serve.stderr
    expected = {
        "read-only": f"error: data_dir {data} cannot be written (a read-only disk, or no "
        "permission for the user ambiance runs as): make it writable, or point data_dir "
        "(--data-dir, AMBIANCE_DATA_DIR) elsewhere",
        "full": f"error: data_dir {data}: the disk is full (No space left on device): free "
        "some space on that disk, or point data_dir (--data-dir, AMBIANCE_DATA_DIR) elsewhere",
    }[disk]
    assert _errors(serve) == _errors(check) == [expected]
    assert "Traceback" not in serve.stderr + check.stderr


def _errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _listing(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else b"<dir>"
        for path in sorted(folder.rglob("*"))
    }


def test_backup_and_restore_from_the_command_line(data_dir: Path) -> None:
    assert run("backup").returncode == 1  # no database yet: nothing to back up, and said
    db = _database(data_dir)
    made = run("backup")
    assert made.returncode == 0, made.stderr
    line = made.stdout.splitlines()[0]
    assert line.startswith(f"Backed up to {data_dir / 'backups'}/ambiance-")
    backup = Path(line.removeprefix("Backed up to ").removesuffix("."))
    again = run("backup")
    assert again.stdout.splitlines()[0] == f"Nothing changed since the newest backup, {backup}."

    db.write_bytes(b"")  # lost
    restored = run("restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name FROM profiles").fetchall() == [("sam",)]
    conn.close()
    refused = run("restore", str(data_dir / "nope.db"))
    assert (refused.returncode, refused.stderr) == (
        1,
        f"error: {data_dir / 'nope.db'}: no such backup file\n",
    )


def test_check_warns_of_a_step_that_names_no_body_area(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "legs.yaml").write_text(
        "routines:\n  legs:\n    stages:\n"
        "      - name: knead\n        scene: rest\n        duration: 5m\n"
        "        guidance:\n          summary: Knead.\n          steps:\n"
        "            - Knead the calves.\n"
        "            - {text: Knead the thighs., areas: [thighs], technique: petrissage}\n"
    )
    ok = run("check", "--scenes", str(folder))
    assert ok.returncode == 0, ok.stderr
    warnings = [line for line in ok.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {folder / 'legs.yaml'}: routines.legs.stages[0].guidance.steps[0]: names no "
        "body area: write it as {text: ..., areas: [...]} (areas: [] when it touches no one) "
        "so a session can leave out what the receiver avoids"
    ]
    (folder / "legs.yaml").write_text(
        (folder / "legs.yaml").read_text().replace("[thighs]", "[knees]")
    )
    bad = run("check", "--scenes", str(folder))
    assert bad.returncode == 1
    assert "steps[1].areas[0]: 'knees' is not a body area" in bad.stderr
