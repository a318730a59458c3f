"""`ambiance serve` in a real process of its own, for crash and restart tests."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class ServiceProcess:
    """Starts `ambiance serve --port 0` and learns its URL from what it prints."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None
    ) -> None:
        self.args = args
        self.prefix = prefix or []  # a command to run it under (tests/mounts.py)
        self.env = {**os.environ, **(env or {})}
        self.url = ""
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 30) -> str:
        process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "ambiance", "serve", "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        self._process = process
        assert process.stdout is not None
        stdout = process.stdout
        self._reader = threading.Thread(
            target=lambda: [self._lines.put(line) for line in stdout], daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise TimeoutError("ambiance did not start:\n" + "".join(self.output)) from None
            self.output.append(line)
            if "is running: open " in line:
                self.url = line.rsplit(" ", 1)[1].strip().rstrip("/")
                return self.url
            if process.poll() is not None and self._lines.empty():
                raise RuntimeError("ambiance exited:\n" + "".join(self.output))

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def wait_for_line(self, text: str, timeout: float = 30) -> str:
        """Block until the service prints a line with `text` (its log goes to stdout too)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no line with {text!r}:\n" + "".join(self.output)) from None
            self.output.append(line)
            if text in line:
                return line

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or a power cut of the process."""
        self._end(signal.SIGKILL)

    def terminate(self) -> int:
        return self._end(signal.SIGTERM)

    def _end(self, sig: int) -> int:
        process = self._process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
        code = process.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=10)
        self.output += list(self._lines.queue)
        self._process = None
        return code

    def log(self) -> str:
        return "".join(self.output)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
