"""Schemathesis against the app's own OpenAPI schema, in-process (ASGI): every operation,
a bounded, derandomized number of examples each. No 5xx, and every response conforms to
the schema: documented status codes, bodies that match their models, content types.

The app manages its core here (`manage_core=True`): schemathesis runs ASGI apps on an
event loop thread of its own and starts the app's lifespan there, so the core (FakeClock,
the test library, virtual lights, a store in a temporary folder) runs on the same loop
that serves the requests. The module fixture shuts the lifespan down at the end.

`GET /events` is left out of the generated calls: it is a server-sent event stream that
by design never ends (a keepalive every 15 s), so a generated call would hang until the
timeout. `test_the_event_stream_s_404_is_documented` makes one short-lived call to it
(an unknown room), and tests/api/test_events.py follows the stream itself over uvicorn.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.python import asgi as schemathesis_asgi

from ambiance.config import RoomConfig, Settings
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app
from tests.helpers import make_library

# The store's folder is made when the core starts (on the first call), not at import.
DATA_DIR = Path(tempfile.gettempdir()) / f"ambiance-schema-fuzz-{os.getpid()}"
APP = create_app(
    Ambiance(
        Settings(
            data_dir=DATA_DIR,
            rooms={"bedroom": RoomConfig(routine="quick"), "living": RoomConfig(routine="timed")},
        ),
        clock=FakeClock(),
        library=make_library(),
    ),
    manage_core=True,
)


def _open_server_schema() -> dict[str, Any]:
    """The app's own schema document (no request, so no lifespan at import time).

    This server is open (loopback, no token asked for); the token's 401 belongs to the
    auth tests, so any security the document lists is left out here.
    """
    document = copy.deepcopy(APP.openapi())
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
    document.get("components", {}).pop("securitySchemes", None)
    return document


EVERYTHING = schemathesis.openapi.from_dict(_open_server_schema())
EVERYTHING.app = APP
schema = EVERYTHING.exclude(path="/api/v1/events", method="GET")


@pytest.fixture(scope="module", autouse=True)
def _stop_the_core() -> Iterator[None]:
    yield
    schemathesis_asgi.shutdown_lifespans()  # the app's lifespan stops the core
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,  # the same examples on every run: CI is repeatable
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_conforms_to_the_schema(case: schemathesis.Case) -> None:
    # Every default check but "a schema-valid request is accepted": a valid-looking body
    # can still name a stage, scene or routine that does not exist, and the documented
    # answer to that is 404 or 422, which that check does not allow.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_the_event_stream_s_404_is_documented() -> None:
    """A short-lived request to the SSE endpoint: an unknown room answers at once (404)."""
    operation = EVERYTHING["/api/v1/events"]["GET"]
    case = operation.Case(query={"room": ["attic"]})
    response = case.call_and_validate()
    assert response.status_code == 404
