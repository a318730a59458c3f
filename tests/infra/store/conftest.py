"""The store under test: a fresh database in a folder the store has to make."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ambiance.infra.store import DB_NAME, Store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / DB_NAME


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with Store(db) as opened:
        yield opened
