"""Schemathesis against the app's own OpenAPI schema, in-process (ASGI): every operation,
a bounded, derandomized number of examples each, and every check schemathesis has (the
CLI's `--checks all`): no 5xx; every response conforms to the schema (status codes,
bodies, headers, content types); every request the schema allows is accepted
(`positive_data_acceptance`: no 400 or 422 for it) and every request it forbids is
refused (`negative_data_rejection`).

A schema-valid request may still name what does not exist, and the answer to that is a
404 (or a 409 for a command that does not fit the room's state), which both checks allow.
So that the operations on one thing (a profile, a session, a room) are tested on a thing
that exists, and not only on the 404, `_existing()` makes the profile a generated request
names before it is sent, and points the other generated requests at a room, scene,
routine or session that exists (a request the schema allows stays one).

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
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.transport import Response
from schemathesis.python import asgi as schemathesis_asgi

from ambiance.config import RoomConfig, Settings
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app
from tests.helpers import make_library

# The store's folder is made when the core starts (on the first call), not at import.
DATA_DIR = Path(tempfile.gettempdir()) / f"ambiance-schema-fuzz-{os.getpid()}"
LIBRARY = make_library()
ROOMS = {"bedroom": RoomConfig(routine="quick"), "living": RoomConfig(routine="timed")}
APP = create_app(
    Ambiance(Settings(data_dir=DATA_DIR, rooms=ROOMS), clock=FakeClock(), library=LIBRARY),
    manage_core=True,
)

load_all_checks()
# Every check schemathesis has, as `--checks all` runs them (the class-based ones, if any
# were registered, run on every response by themselves).
ALL_CHECKS = [check for check in CHECKS.get_all() if not isinstance(check, type)]


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


def _call(method: str, path: str, **parts: Any) -> Response:
    """One request to the app, as a generated one goes (on the core's own loop)."""
    return EVERYTHING[path][method].Case(**parts).call()


def _ok(method: str, path: str, **parts: Any) -> Any:
    response = _call(method, path, **parts)
    assert response.status_code < 300, (method, path, response.text)
    return response.json()


def _a_finished_session() -> str:
    """The id of a session that has run and ended (made once, at the first need)."""
    global _SESSION
    if _SESSION is None:
        room = {"room": "living"}
        _call("DELETE", "/api/v1/rooms/{room}/spa", path_parameters=room)  # a 409 if none runs
        _ok("POST", "/api/v1/rooms/{room}/spa", path_parameters=room)
        _ok("DELETE", "/api/v1/rooms/{room}/spa", path_parameters=room)
        history = _ok("GET", "/api/v1/sessions", query={"room": "living", "limit": 1})
        _SESSION = history[0]["id"]
    return _SESSION


_SESSION: str | None = None


def _existing(case: schemathesis.Case) -> None:
    """Make the profile the case names exist; point a schema-valid case at a room, scene,
    routine and session that exist (chosen by the generated name, so it varies)."""
    params = case.path_parameters or {}
    path = case.operation.path
    if path.startswith("/api/v1/profiles/{name}") and isinstance(params.get("name"), str):
        # (A name the schema refuses gets the PUT's 422, and no profile.)
        name = params["name"]
        _call("PUT", "/api/v1/profiles/{name}", path_parameters={"name": name}, body={"name": name})
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return  # a request the schema forbids is refused whatever it names
    choices = {
        "room": sorted(ROOMS),
        "session_id": [_a_finished_session()] if "session_id" in params else [],
    }
    if path.startswith("/api/v1/scenes/"):
        choices["name"] = sorted(LIBRARY.scenes)
    elif path.startswith("/api/v1/routines/"):
        choices["name"] = sorted(LIBRARY.routines)
    for key, names in choices.items():
        if key in params and names:
            params[key] = names[len(str(params[key])) % len(names)]


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,  # the same examples on every run: CI is repeatable
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_conforms_to_the_schema(case: schemathesis.Case) -> None:
    _existing(case)
    case.call_and_validate(checks=ALL_CHECKS)


def test_every_check_runs() -> None:
    names = {check.__name__ for check in ALL_CHECKS}
    assert {
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "positive_data_acceptance",
        "negative_data_rejection",
        "unsupported_method",
    } <= names


def test_the_event_stream_s_404_is_documented() -> None:
    """A short-lived request to the SSE endpoint: an unknown room answers at once (404)."""
    operation = EVERYTHING["/api/v1/events"]["GET"]
    case = operation.Case(query={"room": ["attic"]})
    response = case.call_and_validate(checks=ALL_CHECKS)
    assert response.status_code == 404
