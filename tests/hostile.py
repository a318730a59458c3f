"""Hostile files, and `ambiance` run on them in a child that cannot take the machine.

The child has an address-space limit (1 GiB) and a timeout, so that a file which makes
ambiance read or expand gigabytes fails the test (a MemoryError traceback, or the
timeout) instead of swapping the machine the test run shares.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

MEMORY = 1 << 30  # bytes of address space: ambiance checking a config needs ~300 MiB
TIMEOUT = 10.0  # seconds: a refused file takes well under one, start-up included


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run_ambiance(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m ambiance *args` under the memory limit; TimeoutExpired past TIMEOUT."""
    return subprocess.run(
        [sys.executable, "-m", "ambiance", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **(env or {})},
        preexec_fn=_limit_memory,
    )


def alias_anchors(levels: int = 8, width: int = 9, indent: str = "") -> str:
    """A "billion laughs": `- &x1 [a, ...]`, then each `&xN` a list of `width` `*x(N-1)`.

    Eighty lines; `*x8` stands for 9**8 = 43 million values. Returned as the items of a
    YAML list, for a key of the caller's choosing.
    """
    lines = [f"{indent}- &x1 [{', '.join(['a'] * width)}]"]
    for level in range(2, levels + 1):
        lines.append(f"{indent}- &x{level} [{', '.join([f'*x{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def sparse_file(path: Path, size: int) -> Path:
    """A file of `size` bytes that takes no disk: reading it whole would take `size` bytes."""
    with path.open("wb") as f:
        f.truncate(size)
    return path
