"""The API token's repository: made once, kept hashed in a private file, compared in
constant time; the store's own sits beside its database and needs no open database."""

from __future__ import annotations

import hmac
import json
import stat
from pathlib import Path

import pytest

from ambiance.errors import ConfigError
from ambiance.infra.store import Store, Tokens


def test_the_token_is_made_once_and_stored_hashed_in_a_private_file(tmp_path: Path) -> None:
    store = Tokens(tmp_path / "data")
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
    store = Tokens(tmp_path)
    old = store.reset()
    running = Tokens(tmp_path)  # a running service's own store sees the change
    assert running.verify(old)
    new = store.reset()
    assert new != old
    assert running.verify(new)
    assert not running.verify(old)


def test_the_hashes_are_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Tokens(tmp_path)
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
        Tokens(tmp_path).verify("x")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # Valid JSON, but over the 64 KiB a salt and a hash could ever need.
        (json.dumps({"salt": "00", "hash": "00", "pad": "x" * 65536}), "too large to read"),
        ("[" * 60_000 + "]" * 60_000, "too large to read"),
        ("[" * 30_000 + "]" * 30_000, "nested too deeply"),
    ],
    ids=["padded", "nested, over the limit", "nested"],
)
def test_a_hostile_token_file_is_a_clear_error(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "auth.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        Tokens(tmp_path).verify("x")
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: "), problem
    assert words in problem, problem
    assert problem.endswith("; make a new one: ambiance token --reset"), problem


def test_the_stores_tokens_are_the_data_dirs_auth_file_without_opening_the_database(
    tmp_path: Path,
) -> None:
    store = Store.in_dir(tmp_path)
    token = store.tokens.reset()  # the database is not open, and not needed
    assert store.tokens.path == tmp_path / "auth.json"
    assert not store.db.path.exists()
    assert Tokens(tmp_path).verify(token)
