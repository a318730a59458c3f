"""One way to write a JSON file that a crash never leaves half-written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(
    path: Path, data: Any, *, sort_keys: bool = False, dir_mode: int = 0o777
) -> None:
    """Write `data` as JSON to `path`, readable and writable by its owner alone (0600).

    A temp file in the same folder is written, flushed to disk and renamed over the old one,
    so a crash leaves the old file or the new one, never half a file; mkstemp makes it 0600
    from the start, since several of these files hold secrets.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=sort_keys)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
