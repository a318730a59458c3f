"""A real MPD for tests, on a loopback port of its own, with music it makes itself.

`MpdServer` runs Debian's `/usr/bin/mpd --no-daemon --stderr <conf>` with a config written
into a temporary folder: its own music and playlist folders, database, pid file, a null
audio output with a software mixer (so volume works with no sound card), never port 6600
and never an MPD that happens to run already. The music is short WAV sine tones (MPD
decodes WAV with libsndfile) and `.m3u` playlists of them; `start()` returns once the
database holds them. `stop()` (SIGTERM) then `start()` brings MPD back on the same port,
with an empty queue (no state file), which is what a restart looks like to a client;
`kill()` (SIGKILL) is a crash.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shlex
import signal
import subprocess
import threading
import time
import wave
from array import array
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from mpd import ConnectionError as MpdConnectionError
from mpd import MPDClient

from ambiance.devices.music.chime import chime_wav
from tests.ports import free_port, start_on_a_free_port

MPD = "/usr/bin/mpd"
HOST = "127.0.0.1"
START_TIMEOUT = 10.0
RATE = 8000  # Hz: tones need no more, and small files are quick to write and scan

# Playlist name -> (file, tone in Hz, seconds). Tones divide RATE so one period repeats exactly.
LIBRARY: dict[str, list[tuple[str, int, int]]] = {
    "calm": [("calm/one.wav", 200, 40), ("calm/two.wav", 250, 40), ("calm/three.wav", 320, 40)],
    "flowing": [("flowing/a.wav", 400, 40), ("flowing/b.wav", 500, 40)],
}
CHIME = "ambiance/chime.wav"
CHIME_SECONDS = 0.6
_COMMAND = re.compile(r'client: \[\d+\] process command "(.*)"$')


def tone_wav(path: Path, frequency: int, seconds: int) -> None:
    """A quiet 16-bit mono sine tone; one period is computed and repeated."""
    period = RATE // frequency
    one = array("h", (round(6000 * math.sin(2 * math.pi * i / period)) for i in range(period)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((one * (seconds * RATE // period)).tobytes())


class MpdServer:
    """One MPD process on its own loopback port; `stop()`/`kill()` and `start()` keep the port.

    playlists: name -> files in the music folder (default: `LIBRARY`'s).
    chime: put `ambiance.devices.music.chime.chime_wav()` into the music folder as `CHIME`.
    password: given, MPD asks clients for it (and allows nothing without it).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        playlists: Mapping[str, Iterable[str]] | None = None,
        chime: bool = True,
        password: str | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.host = HOST
        self.port = port or free_port()
        self._may_move = port is None  # a port picked here may be taken by the time MPD binds
        self.password = password
        self.music_dir = workdir / "music"
        self.playlist_dir = workdir / "playlists"
        self.config_file = workdir / "mpd.conf"
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []
        self._marks = 0  # markers sent by mark()
        self._changed = threading.Condition()
        workdir.mkdir(parents=True, exist_ok=True)
        self.music_dir.mkdir(exist_ok=True)
        self.playlist_dir.mkdir(exist_ok=True)
        for tracks in LIBRARY.values():
            for file, frequency, seconds in tracks:
                tone_wav(self.music_dir / file, frequency, seconds)
        if playlists is None:
            playlists = {name: [file for file, _, _ in tracks] for name, tracks in LIBRARY.items()}
        for name, files in playlists.items():
            (self.playlist_dir / f"{name}.m3u").write_text("".join(f"{f}\n" for f in files))
        if chime:
            (self.music_dir / CHIME).parent.mkdir(parents=True, exist_ok=True)
            (self.music_dir / CHIME).write_bytes(chime_wav(CHIME_SECONDS))
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            f'music_directory "{self.music_dir}"',
            f'playlist_directory "{self.playlist_dir}"',
            f'db_file "{self.workdir / "database"}"',
            f'pid_file "{self.workdir / "pid"}"',
            # No state_file: a restarted MPD comes back empty, as after a crash without one.
            f'bind_to_address "{HOST}"',
            f'port "{self.port}"',
            'auto_update "no"',
            'zeroconf_enabled "no"',  # Debian's build has Avahi: no announcing from tests
            'log_level "verbose"',
            "audio_output {",
            '    type "null"',
            '    name "null"',
            '    mixer_type "software"',
            "}",
        ]
        if self.password is not None:
            lines.append(f'password "{self.password}@read,add,control,admin"')
            lines.append('default_permissions ""')
        self.config_file.write_text("\n".join(lines) + "\n")

    # The process ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start MPD and return once it answers and its database holds the music."""
        start_on_a_free_port(
            functools.partial(self._start, timeout), self._move, self._may_move, "mpd"
        )
        self._may_move = False

    def _move(self, port: int) -> None:
        self.port = port
        self._write_config()

    def _start(self, timeout: float) -> None:
        if self.running:
            return
        deadline = time.monotonic() + timeout
        proc = subprocess.Popen(
            [MPD, "--no-daemon", "--stderr", str(self.config_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._proc = proc
        self._reader = threading.Thread(
            target=self._read_output, args=(proc,), name=f"mpd-{self.port}", daemon=True
        )
        self._reader.start()
        try:
            client = self._connect_when_up(proc, deadline)
        except BaseException:
            self.stop()
            raise
        try:
            self._update(client, deadline)
        finally:
            client.disconnect()

    def _connect_when_up(self, proc: subprocess.Popen[str], deadline: float) -> MPDClient:
        """A connection to the new MPD. It logs no line when it listens, so try to connect,
        and after a refusal wait for its next log line (it logs while it starts up) or a
        short while, whichever comes first; give up at the deadline or when it exits."""
        while True:
            with self._changed:
                seen = len(self._lines)
            client = MPDClient()
            client.timeout = max(0.1, deadline - time.monotonic())
            try:
                client.connect(self.host, self.port)
            except (OSError, MpdConnectionError) as exc:
                if proc.poll() is not None:
                    self._reader_join()
                    raise RuntimeError(f"mpd exited with {proc.returncode}:\n{self.log()}") from exc
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"mpd did not answer in time:\n{self.log()}") from exc
                with self._changed:
                    self._changed.wait_for(lambda n=seen: len(self._lines) > n, 0.02)
                continue
            if self.password is not None:
                client.password(self.password)
            return client

    def _update(self, client: MPDClient, deadline: float) -> None:
        """Scan the music folder and wait for the scan to end: MPD says `update` in idle when
        a scan starts and ends; `updating_db` leaves its status once none is left."""
        client.update()
        while "updating_db" in cast(dict[str, str], client.status()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"mpd did not finish its database update:\n{self.log()}")
            # Changes since our last idle are kept for us: one that ended the scan between
            # `status` and here makes this idle return at once.
            client.idletimeout = remaining
            try:
                client.idle("update", "database")
            except TimeoutError as exc:
                raise RuntimeError(
                    f"mpd did not finish its database update:\n{self.log()}"
                ) from exc

    def _read_output(self, proc: subprocess.Popen[str]) -> None:
        # Drains the pipe for the process's whole life, so MPD never blocks on a full pipe,
        # and wakes whoever waits for a log line.
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        proc.stdout.close()
        with self._changed:
            self._changed.notify_all()

    def _reader_join(self) -> None:
        if self._reader is not None:
            self._reader.join(START_TIMEOUT)
            self._reader = None

    def stop(self, timeout: float = START_TIMEOUT) -> None:
        """Terminate MPD (SIGTERM) and wait until it has exited."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self._reader_join()

    def kill(self) -> None:
        """Crash MPD (SIGKILL): no goodbye to its clients, the kernel closes the sockets."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(START_TIMEOUT)
        self._reader_join()

    def log(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    def mark(self) -> int:
        """A place in the log: `commands(since=mark)` lists only what came after it.

        Synced with MPD: our reader of its log may be a moment behind (on a loaded machine,
        more), so the place is taken just after a marker command sent now, which MPD logs
        after everything it processed before this call."""
        self._marks += 1
        token = f"ambiance-test-mark-{self._marks}"
        self.command("find", "file", token)

        def place() -> int | None:
            for i in range(len(self._lines) - 1, -1, -1):
                if token in self._lines[i]:
                    return i + 1
            return None

        with self._changed:
            if not self._changed.wait_for(lambda: place() is not None, 5.0):
                raise TimeoutError(f"MPD did not log the marker {token!r}:\n{self.log()}")
            found = place()
            assert found is not None
            return found

    def commands(self, since: int = 0) -> list[list[str]]:
        """Every command MPD processed (its verbose log has them all), as words:
        `[["setvol", "40"], ["play"], ...]`, from every client, in order."""
        with self._changed:
            lines = self._lines[since:]
        found: list[list[str]] = []
        for line in lines:
            match = _COMMAND.search(line)
            if match is not None:
                found.append(shlex.split(match.group(1)))
        return found

    def wait_for_command(
        self, *words: str, since: int = 0, timeout: float = 5.0
    ) -> list[list[str]]:
        """Wait until MPD has logged a command that starts with `words`; return `commands()`.
        (MPD logs a command before it answers it, but our reader may be a moment behind.)"""

        def seen() -> bool:
            return any(c[: len(words)] == list(words) for c in self.commands(since))

        with self._changed:
            if not self._changed.wait_for(seen, timeout):
                raise TimeoutError(f"MPD did not log {' '.join(words)!r}:\n{self.log()}")
        return self.commands(since)

    def __enter__(self) -> MpdServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # For tests ----------------------------------------------------------------------

    def client(self) -> MPDClient:
        """A blocking python-mpd2 client, connected (and logged in); disconnect it after."""
        client = MPDClient()
        client.timeout = 5
        client.connect(self.host, self.port)
        if self.password is not None:
            client.password(self.password)
        return client

    def command(self, name: str, *args: Any) -> Any:
        """One command on a fresh connection: `server.command("status")`."""
        client = self.client()
        try:
            return getattr(client, name)(*args)
        finally:
            client.disconnect()

    def status(self) -> dict[str, str]:
        return cast(dict[str, str], self.command("status"))

    def queue(self) -> list[str]:
        """The files in the queue, in order."""
        return [song["file"] for song in cast(list[dict[str, str]], self.command("playlistinfo"))]
