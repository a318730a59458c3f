"""Reading a file we did not write whole, up to a size limit checked before reading.

Every file ambiance reads (the config, scene and routine files, its own JSON files in the
data directory) comes through `read_text`, so a 50 MB file, a sparse 1 TB one or
/dev/zero given as the config is refused at once with its size and the limit, instead
of being read into memory and parsed for minutes.
"""

from __future__ import annotations

import os
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB


class UnreadableFile(ValueError):
    """The file exists but cannot be read: too large, not UTF-8, or refused by the system.

    The message names the file and says why; a missing file is FileNotFoundError instead,
    since callers often take it as empty.
    """


class RefusedBySystem(UnreadableFile):
    """The system would not let us read the file (permissions, an I/O error): a fault of
    the disk or its setup, not of what the file says."""


def size_text(size: int) -> str:
    """`262144` -> `256 KiB`: a limit as people read it."""
    for unit, factor in (("MiB", MiB), ("KiB", KiB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size:,} bytes"


def read_text(path: Path, max_bytes: int, kind: str = "this kind of file") -> str:
    """Read the UTF-8 text of `path`, refusing a file over `max_bytes` before reading it.

    `kind` names the file in the message (`a scenes file`), with its size and the limit.

    The size is checked with fstat first, and at most `max_bytes + 1` bytes are ever
    read, so a file that grows, or a device or pipe whose size is unknown, is bounded too.
    """
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise UnreadableFile(_too_large(path, f"{size:,} bytes", max_bytes, kind))
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise RefusedBySystem(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise UnreadableFile(_too_large(path, f"more than {max_bytes:,} bytes", max_bytes, kind))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path}: cannot read the file: it is not UTF-8 text") from None


def _too_large(path: Path, size: str, max_bytes: int, kind: str) -> str:
    return (
        f"{path}: the file is too large to read: {size}, over the limit of "
        f"{size_text(max_bytes)} ({max_bytes:,} bytes) for {kind}"
    )
