from __future__ import annotations

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def test_scenes_and_routines_are_listed(api: Api) -> None:
    scenes = (await api.client.get("/api/v1/scenes")).json()
    assert [s["name"] for s in scenes] == ["dark", "dim", "warm"]
    assert scenes[2]["lights"]["kelvin"] == 2700
    routines = (await api.client.get("/api/v1/routines")).json()
    assert [r["name"] for r in routines] == ["quick", "timed"]
    quick = (await api.client.get("/api/v1/routines/quick")).json()
    assert [s["name"] for s in quick["stages"]] == ["prepare", "a", "b", "c"]
    assert quick["stages"][0]["duration"] is None
    dim = (await api.client.get("/api/v1/scenes/dim")).json()
    assert dim["lights"]["brightness"] == 20


async def test_unknown_scene_and_routine(api: Api) -> None:
    r = await api.client.get("/api/v1/scenes/nope")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "scene_not_found")
    r = await api.client.get("/api/v1/routines/nope")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "routine_not_found")


async def test_health(api: Api) -> None:
    body = (await api.client.get("/api/v1/health")).json()
    assert body["status"] == "ok"
    assert body["rooms"] == {"bedroom": "ok", "living": "ok"}


async def test_openapi_has_examples_and_error_shape(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    spa = schema["paths"]["/api/v1/rooms/{room}/spa"]["post"]
    assert "404" in spa["responses"] and "409" in spa["responses"]
    assert "ErrorBody" in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["SpaRequest"]["properties"]["routine"]["examples"]
