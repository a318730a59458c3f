"""Tokens: the API token, kept only as a salted hash in `<data dir>/auth.json`.

The token is made with `secrets.token_urlsafe(32)` (256 random bits), shown once, and
kept only as a salted SHA-256 hash (mode 0600, written atomically). A fast hash is enough
here: the token is random, not a password a person chose, so there is no dictionary to
try and 2**256 guesses are out of reach; a slow KDF (scrypt, PBKDF2) would only add its
cost to every request. The salt keeps two installs' hashes apart. Comparisons are of
hashes, with `hmac.compare_digest` (constant time).

A file of its own, not a table: `ambiance token --reset` works without opening the
database (even one a newer ambiance wrote), and existing installs keep their auth.json.
Who needs the token at all is the access rule in `ambiance/infra/auth.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from ambiance.errors import ConfigError, StorageError
from ambiance.infra.files import KiB, RefusedBySystem
from ambiance.infra.jsonfile import read_json, write_json_atomic
from ambiance.infra.store.faults import storage_error

AUTH_FILE: Final = "auth.json"  # the file's name inside the data dir
AUTH_FILE_MAX_BYTES: Final = 64 * KiB  # it holds a salt and a hash: about 150 bytes


def _hash(salt: bytes, token: str) -> str:
    return hashlib.sha256(salt + token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Stored:
    salt: bytes
    digest: str
    stamp: tuple[int, int]  # the file's (mtime_ns, size) when read


class Tokens:
    """The API token's hash in `<data_dir>/auth.json`; the token itself is never kept."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / AUTH_FILE
        self._cached: _Stored | None = None

    def exists(self) -> bool:
        return self.path.is_file()

    def check(self) -> None:
        """`ConfigError` when the token file is there but cannot be read (see `ensure`)."""
        self._load()

    def ensure(self) -> str | None:
        """Make a token if there is none; return it when it was just made, else None."""
        if self.exists():
            self._load()  # a broken file is an error now, not a 401 later
            return None
        return self.reset()

    def reset(self) -> str:
        """Make a new token (the old one stops working) and return it, the only time."""
        token = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        record = {
            "version": 1,
            "algorithm": "sha256(salt + token)",
            "salt": salt.hex(),
            "hash": _hash(salt, token),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            write_json_atomic(self.path, record, dir_mode=0o700)
        except OSError as exc:
            raise storage_error(
                exc, self.path, "cannot write the API token", restore=lambda: "remove it"
            ) from None
        self._cached = None
        return token

    def verify(self, candidate: str | None) -> bool:
        """Is this the token? Constant time in the candidate (hashes are compared)."""
        stored = self._load()
        if stored is None or not candidate:
            return False
        return hmac.compare_digest(_hash(stored.salt, candidate), stored.digest)

    def _load(self) -> _Stored | None:
        # Re-read when the file changes, so `ambiance token --reset` takes effect at once.
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._cached = None
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if self._cached is not None and self._cached.stamp == stamp:
            return self._cached
        try:
            data = read_json(self.path, AUTH_FILE_MAX_BYTES, "a token file")
        except RefusedBySystem as exc:  # the disk, not the file's content: StorageError (503)
            raise StorageError(
                f"{exc}: make it readable for the user ambiance runs as",
                kind="io",
                path=str(self.path),
            ) from None
        except ValueError as exc:  # too large or not JSON; names the file
            raise ConfigError([f"{exc}; make a new one: ambiance token --reset"]) from None
        try:
            stored = _Stored(bytes.fromhex(data["salt"]), str(data["hash"]), stamp)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                [f"{self.path}: not a token file ({exc}); make a new one: ambiance token --reset"]
            ) from None
        self._cached = stored
        return stored
