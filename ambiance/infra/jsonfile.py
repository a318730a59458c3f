"""JSON files in the data directory: one crash-safe way to write them, one bounded way to
read them."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ambiance.infra import files


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


def read_json(path: Path, max_bytes: int, kind: str = "a JSON file") -> Any:
    """Read the JSON file at `path`, refusing one over `max_bytes` before reading it.

    Raises FileNotFoundError for a missing file, and ValueError naming the file for one
    that is too large, unreadable, not JSON, or nested too deeply to parse.
    """
    text = files.read_text(path, max_bytes, kind)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path}: not valid JSON (nested too deeply)") from None
