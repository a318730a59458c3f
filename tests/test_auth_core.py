"""The API token in the core (ambiance/infra/auth.py) and on the command line."""

from __future__ import annotations

import hmac
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from ambiance.cli import main
from ambiance.config import load_settings
from ambiance.errors import ConfigError
from ambiance.infra.auth import AuthSettings, TokenStore, is_loopback, token_required


def test_the_token_is_made_once_and_stored_hashed_in_a_private_file(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "data")
    token = store.ensure()
    assert token is not None and len(token) >= 43  # 32 random bytes, URL-safe base64
    assert store.ensure() is None  # already there: not made (or shown) again
    text = store.path.read_text()
    assert token not in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert not [p for p in store.data_dir.iterdir() if p.name.endswith(".tmp")]
    assert store.verify(token)
    assert not store.verify(token + "x")
    assert not store.verify("")
    assert not store.verify(None)


def test_reset_makes_a_new_token_and_the_old_one_stops_working(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    old = store.reset()
    running = TokenStore(tmp_path)  # a running service's own store sees the change
    assert running.verify(old)
    new = store.reset()
    assert new != old
    assert running.verify(new)
    assert not running.verify(old)


def test_the_hashes_are_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TokenStore(tmp_path)
    token = store.reset()
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def recording(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert store.verify(token)
    assert not store.verify("wrong")
    assert len(calls) == 2
    assert all(token not in (a, b) for a, b in calls)  # hashes, not the token


def test_a_broken_token_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "auth.json").write_text("{}")
    with pytest.raises(ConfigError, match="ambiance token --reset"):
        TokenStore(tmp_path).verify("x")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.5", False),
        ("myhost.lan", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert token_required(AuthSettings(), host) is not loopback


def test_always_and_never() -> None:
    assert token_required(AuthSettings(required="always"), "127.0.0.1")
    assert not token_required(AuthSettings(required="never"), "0.0.0.0")


def test_auth_settings_from_the_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AMBIANCE_CONFIG", raising=False)
    config = tmp_path / "ambiance.yaml"
    config.write_text("auth: {required: always, cors_origins: ['https://ha.local']}\n")
    settings = load_settings(config, data_dir=tmp_path)
    assert settings.auth.required == "always"
    assert settings.auth.cors_origins == ["https://ha.local"]
    assert settings.auth.max_body_bytes == 64 * 1024
    monkeypatch.setenv("AMBIANCE_AUTH__REQUIRED", "never")
    assert load_settings(config, data_dir=tmp_path).auth.required == "never"
    monkeypatch.delenv("AMBIANCE_AUTH__REQUIRED")
    config.write_text("auth: {required: sometimes}\n")
    with pytest.raises(ConfigError, match=r"auth\.required"):
        load_settings(config, data_dir=tmp_path)


def test_the_cli_takes_no_secrets_in_its_arguments() -> None:
    from ambiance.cli import build_parser

    parser = build_parser()
    options: list[str] = []
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for sub in action.choices.values():  # type: ignore[union-attr]
            for a in sub._actions:
                options += a.option_strings
    for word in ("password", "passwd", "secret", "username", "token"):
        assert not [o for o in options if word in o], options


def test_token_reset_prints_a_new_token_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AMBIANCE_CONFIG", raising=False)
    data = tmp_path / "data"
    assert main(["token", "--data-dir", str(data)]) == 0
    assert "does not exist yet" in capsys.readouterr().out
    assert main(["token", "--reset", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    link = next(line for line in out.splitlines() if "#token=" in line)
    token = link.rsplit("#token=", 1)[1]
    assert TokenStore(data).verify(token)
    assert token not in (data / "auth.json").read_text()
    assert main(["token", "--data-dir", str(data)]) == 0
    assert token not in capsys.readouterr().out


Served = tuple[str, list[str], subprocess.Popen[str], "queue.Queue[str]", threading.Thread]


def _serve(data: Path, env: dict[str, str]) -> Served:
    process = subprocess.Popen(
        [sys.executable, "-m", "ambiance", "serve", "--port", "0", "--log-level", "debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "AMBIANCE_DATA_DIR": str(data), **env},
    )
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    while not any("API and its docs" in line for line in seen):
        seen.append(lines.get(timeout=30))
    while True:  # the token's lines, when there are any, follow at once
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            break
    url = next(line for line in seen if "is running: open " in line).rsplit(" ", 1)[1].strip()
    return url, seen, process, lines, reader


def _stop(served: Served) -> str:
    _, seen, process, lines, reader = served
    process.send_signal(signal.SIGINT)
    process.wait(timeout=20)
    reader.join(timeout=10)
    return "".join(seen) + "".join(lines.queue)


def test_serve_shows_the_token_only_when_it_makes_it_and_never_logs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AMBIANCE_CONFIG", raising=False)
    data = tmp_path / "data"
    env = {"AMBIANCE_AUTH__REQUIRED": "always"}
    served = _serve(data, env)
    url, seen = served[0], served[1]
    try:
        link = next(line for line in seen if "#token=" in line)
        token = link.rsplit("#token=", 1)[1].strip()
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/api/v1/rooms").status_code == 401
            auth = {"Authorization": f"Bearer {token}"}
            assert client.get("/api/v1/rooms", headers=auth).status_code == 200
            with client.stream("GET", "/api/v1/events", params={"access_token": token}) as stream:
                assert stream.status_code == 200
    finally:
        output = _stop(served)
    # Printed in the three lines that show it (the link, the header), nowhere else: not
    # in the access log of the event stream's URL, not in any other log line.
    assert [line for line in output.splitlines() if token in line] == [
        line for line in output.splitlines() if "#token=" in line or "Bearer " + token in line
    ]
    assert sum(token in line for line in output.splitlines()) == 2
    assert "access_token=[redacted]" in output

    output = _stop(_serve(data, env))  # the second start: the token exists
    assert "#token=" not in output
    assert token not in output
