"""Fixtures with a real Mosquitto broker on a loopback port of its own (see tests/mosquitto.py).

Load them for every test with `pytest_plugins = ["tests.mqtt_fixtures"]` in tests/conftest.py,
or import them into one test module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ambiance.infra.mqtt import MqttSettings
from tests.mosquitto import Certificates, Mosquitto, make_certificates

USER = "ambiance"
PASSWORD = "spa-time-42"


def mqtt_settings(broker: Mosquitto, **overrides: Any) -> MqttSettings:
    """Settings for `broker` with small reconnect delays, so that a test waits a fraction of a
    second for a reconnect, and a client id of its own."""
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "client_id": f"ambiance-test-{uuid.uuid4().hex[:8]}",
        "keepalive": 5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
    }
    values.update(overrides)
    return MqttSettings(**values)


@pytest.fixture(scope="session")
def mqtt_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA with a server certificate for 127.0.0.1/localhost and a client one."""
    return make_certificates(tmp_path_factory.mktemp("mqtt-certs"))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """An anonymous broker, running."""
    with Mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
def mosquitto_auth(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that knows one user, `USER` with `PASSWORD`, and refuses anonymous clients."""
    with Mosquitto(tmp_path / "mosquitto-auth", users={USER: PASSWORD}) as broker:
        yield broker


@pytest.fixture
def mosquitto_tls(tmp_path: Path, mqtt_certificates: Certificates) -> Iterator[Mosquitto]:
    """A broker with a TLS listener only, its certificate signed by `mqtt_certificates`' CA."""
    with Mosquitto(tmp_path / "mosquitto-tls", certificates=mqtt_certificates) as broker:
        yield broker
