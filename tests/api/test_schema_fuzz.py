"""Schemathesis against the app's own OpenAPI schema, in-process (ASGI): every operation,
a bounded, derandomized number of examples each, and every check schemathesis has (the
CLI's `--checks all`): no 5xx; every response conforms to the schema (status codes,
bodies, headers, content types); every request the schema allows is accepted
(`positive_data_acceptance`: no 400 or 422 for it) and every request it forbids is
refused (`negative_data_rejection`).

A schema-valid request may still name what does not exist, and the answer to that is a
404 (or a 409 for a command that does not fit the room's state), which both checks allow.
One schema-valid request is a 422 by design (issue 15): a length (`minutes`, 1 to 90) that
the routine it names cannot be fitted to, since what a routine can take depends on its
stages, which the schema cannot know. For those cases (`_beyond_reach()`, from the reach
GET /routines/{name}/fit tells) the answer must be that 422, naming the shortest and the
longest possible, or a 404/409 that comes first; every other check runs on it as usual.
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
from ambiance.core.fitting import Reach, reach
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


def _beyond_reach(case: schemathesis.Case) -> Reach | None:
    """The reach of the routine a schema-valid case fits, when it asks for a length past it."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    params = case.path_parameters or {}
    if case.operation.path == "/api/v1/routines/{name}/fit":
        minutes, routine = (case.query or {}).get("minutes"), params.get("name")
    elif (case.operation.path, case.method.upper()) == ("/api/v1/rooms/{room}/spa", "POST"):
        body = case.body if isinstance(case.body, dict) else {}
        room = ROOMS.get(str(params.get("room")))
        minutes, routine = body.get("minutes"), body.get("routine") or (room and room.routine)
    else:
        return None
    try:
        minutes = float(minutes)  # a query's value is sent as text
    except (TypeError, ValueError):
        return None
    if routine not in LIBRARY.routines:
        return None
    found = reach(LIBRARY.routines[str(routine)])
    # The bounds are shown to a tenth of a minute; a length within 3 s of them is taken.
    if found.shortest - 0.05 <= minutes <= found.longest + 0.05:
        return None
    return found


POSITIVE_DATA_ACCEPTANCE = next(c for c in ALL_CHECKS if c.__name__ == "positive_data_acceptance")


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
    beyond = _beyond_reach(case)
    if beyond is None:
        case.call_and_validate(checks=ALL_CHECKS)
        return
    response = case.call_and_validate(checks=ALL_CHECKS, excluded_checks=[POSITIVE_DATA_ACCEPTANCE])
    assert response.status_code in (404, 409, 422), response.text
    if response.status_code == 422:
        error = response.json()["error"]
        assert error["code"] == "invalid_input", error
        assert f"can take {beyond.shortest:g} to {beyond.longest:g} minutes" in error["message"]
        assert error["detail"]["shortest"] == beyond.shortest


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
