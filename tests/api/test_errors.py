"""Every error path answers in the API's error shape: the bounds of every parameter (a
422 naming it, never SQLite's OverflowError), and an exception no handler takes (a 500
with a request id, its traceback logged once), over a real uvicorn."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ambiance.core import commands
from ambiance.core.commands import Command, NoArguments, Rest
from ambiance.core.room import Room
from api.app import create_app
from tests.api.conftest import Api
from tests.http_server import serve

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "query",
    [
        {"offset": 2**63},  # was SQLite's OverflowError: a plain-text 500
        {"offset": 1_000_001},
        {"room": "Not A Room"},
        {"profile": "x" * 65},
    ],
)
async def test_an_out_of_range_history_query_is_a_422_naming_it(
    api: Api, query: dict[str, Any]
) -> None:
    r = await api.client.get("/api/v1/sessions", params=query)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert [p["field"] for p in error["detail"]] == [f"query.{name}" for name in query]


async def test_every_parameter_is_bounded_in_the_schema(api: Api) -> None:
    """Each path and query parameter of every operation says its bounds: integers a
    minimum and a maximum, names a pattern or a length, lists a number of items."""
    document = (await api.client.get("/openapi.json")).json()
    seen = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                for shape in schema.get("anyOf", [schema]):
                    where = (method, path, parameter["name"], shape)
                    seen += 1
                    if shape["type"] == "integer":
                        assert {"minimum", "maximum"} <= set(shape), where
                    elif shape["type"] == "string":
                        assert {"pattern", "maxLength", "enum"} & set(shape), where
                    elif shape["type"] == "array":
                        assert "maxItems" in shape, where
                        assert "pattern" in shape["items"], where
    assert seen > 20  # the walk found the parameters


def _broken(room: Room, _: NoArguments) -> None:
    raise RuntimeError("a bug in a plug-in's command")


BROKEN = Command(
    "broken",
    "A command with a bug (a toy).",
    NoArguments,
    _broken,
    (Rest("POST", "/broken", "Fail"),),
    conflicts=False,
)


@pytest.fixture
def broken() -> Iterator[Command[NoArguments]]:
    unregister = commands.register(BROKEN)
    try:
        yield BROKEN
    finally:
        unregister()


async def test_an_unexpected_error_is_a_500_in_the_error_shape_logged_once(
    api: Api, broken: Command[NoArguments], caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn's own loggers do not reach the root logger: listen to them too.
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(caplog.handler)
    try:
        async with serve(create_app(api.core)) as base, httpx.AsyncClient(base_url=base) as c:
            r = await c.post("/api/v1/rooms/bedroom/broken")
            assert r.status_code == 500
            error = r.json()["error"]
            request_id = error["detail"]["request_id"]
            assert error["code"] == "internal_error"
            assert request_id in error["message"]
            assert r.headers["x-request-id"] == request_id
            assert r.headers["x-content-type-options"] == "nosniff"  # still every header
            # The service goes on answering.
            assert (await c.get("/api/v1/rooms/bedroom")).status_code == 200
    finally:
        uvicorn_log.removeHandler(caplog.handler)
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) == 1, [record.getMessage() for record in tracebacks]
    assert request_id in tracebacks[0].getMessage()
    assert "POST /api/v1/rooms/bedroom/broken" in tracebacks[0].getMessage()
    assert "a bug in a plug-in's command" in str(tracebacks[0].exc_info[1])
