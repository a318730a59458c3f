"""The command line: `ambiance check` and `ambiance serve` as a user runs them."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

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
