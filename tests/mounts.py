"""Real read-only and full disks for a process under test, as root or not.

chmod does not stop root from writing, so a read-only data dir is a read-only bind mount
and a full disk is a small tmpfs, each in a mount namespace of the process's own:
`unshare -rm` maps the user to root in a new user namespace, where it may mount, so
neither sudo nor root is needed (root where user namespaces are barred, as in a container,
uses `unshare -m`), and nothing outside the namespace sees the mounts. The test reaches
the namespace's files through `/proc/<pid>/root` (`inside`). Where neither is allowed, the
test is skipped and says why.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

# `sh -c SCRIPT path command...`: $0 is the folder, "$@" the command run in its place.
_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
_SMALL_DISK = 'mount -t tmpfs -o size={size} tmpfs "$0" && exec "$@"'
_FULL_DISK = (
    'mount -t tmpfs -o size=1m tmpfs "$0"'
    ' && { dd if=/dev/zero of="$0/filler" bs=4096 2>/dev/null; exec "$@"; }'
)


@functools.cache
def _unshare() -> list[str] | str:
    """The `unshare` that gives a mount namespace here, or why there is none: a user
    namespace first (any user), else, for root without one, a mount namespace alone."""
    if shutil.which("unshare") is None:
        return "no unshare(1) (util-linux) on this machine"
    tries = [["unshare", "-rm"]] + ([["unshare", "-m"]] if os.geteuid() == 0 else [])
    said = ""
    for command in tries:
        probe = subprocess.run(
            [*command, "sh", "-c", 'mount -t tmpfs tmpfs "$0"', "/tmp"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode == 0:
            return command
        said = probe.stderr.strip()
    return f"user and mount namespaces are not allowed here ({said})"


def need_namespaces() -> list[str]:
    """The `unshare` command to use; skips the test, saying why, where a real read-only or
    full disk cannot be made."""
    found = _unshare()
    if isinstance(found, str):
        pytest.skip(f"needs a mount namespace for a real read-only or full disk: {found}")
    return found


def read_only(folder: Path) -> list[str]:
    """The command prefix that runs a command with `folder` mounted read-only."""
    return [*need_namespaces(), "sh", "-c", _READ_ONLY, str(folder)]


def small_disk(folder: Path, size: str = "8m") -> list[str]:
    """The command prefix that runs a command with an empty disk of `size` at `folder`."""
    return [*need_namespaces(), "sh", "-c", _SMALL_DISK.format(size=size), str(folder)]


def full_disk(folder: Path) -> list[str]:
    """The command prefix that runs a command with a full disk at `folder`."""
    return [*need_namespaces(), "sh", "-c", _FULL_DISK, str(folder)]


def inside(pid: int, path: Path) -> Path:
    """`path` as the process `pid` sees it (in its mount namespace)."""
    return Path(f"/proc/{pid}/root") / path.absolute().relative_to("/")


def fill(folder: Path) -> Path:
    """Fill the disk `folder` is on, to the last block; the file that fills it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    return filler
