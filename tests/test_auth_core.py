"""Who needs the API token (ambiance/infra/auth.py), and the token on the command line.

The token file itself is tests/infra/store/test_tokens.py."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from ambiance.cli import main
from ambiance.config import load_settings
from ambiance.errors import ConfigError
from ambiance.infra.auth import AuthSettings, is_loopback, token_required
from ambiance.infra.store import Tokens


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
    assert Tokens(data).verify(token)
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
