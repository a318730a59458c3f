"""Shared fixtures. Async tests run on asyncio through anyio's pytest plugin."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.mqtt_fixtures"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
