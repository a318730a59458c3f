"""The rooms' commands over REST, made from the command table (ambiance/core/commands.py).

Each of a command's `Rest` routes is one operation answering the room's view once it has
settled; the commands without arguments share one more, `POST /rooms/{room}/session/{action}`.
The routes are made when the app is, from the table as it is then.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Body, Path

from ambiance.core import commands
from ambiance.core.commands import SESSION_PATH, Command, Rest
from ambiance.core.room import Room
from ambiance.service import Ambiance

from ..deps import CoreDep, RoomDep
from ..schemas import ERRORS, RoomView
from .rooms import _settled

Endpoint = Callable[..., Awaitable[RoomView]]


def command_router() -> APIRouter:
    """A router with every command's routes (under /rooms, as the rooms' own)."""
    # 422 for every route: a room name of the wrong shape, beside a body's values.
    router = APIRouter(
        prefix="/rooms", tags=["rooms"], responses={404: ERRORS[404], 422: ERRORS[422]}
    )
    shared: list[Command[Any]] = []
    for command in commands.table():
        for rest in command.rest:
            if rest.path == SESSION_PATH:
                shared.append(command)
            else:
                name = rest.operation or command.name
                _add(router, rest, name, rest.summary, _endpoint(command, rest), _errors(command))
    # Last: `{action}` would take the named session routes (goto, extend) for itself.
    if shared:
        summary = f"Session commands: {', '.join(c.name for c in shared)}"
        endpoint = _session_endpoint(shared)
        _add(router, commands.SESSION, "command", summary, endpoint, _session_errors(shared))
    return router


def _add(
    router: APIRouter, rest: Rest, name: str, summary: str, endpoint: Endpoint, errors: list[int]
) -> None:
    router.add_api_route(
        "/{room}" + rest.path,
        endpoint,
        methods=[rest.method],
        name=name,  # the operation's id is made from it
        response_model=RoomView,
        status_code=rest.status,
        summary=summary,
        description=rest.description,
        responses={status: ERRORS[status] for status in errors},
    )


def _errors(command: Command[Any]) -> list[int]:
    """The errors the route documents (beside the router's 404)."""
    found = [400, 422] if command.args.model_fields else []  # a body to read and check
    if command.conflicts:
        found.append(409)
    return sorted(found)


def _session_errors(shared: list[Command[Any]]) -> list[int]:
    return sorted({422} | ({409} if any(c.conflicts for c in shared) else set()))


def _signature(**parameters: Any) -> inspect.Signature:
    """`core` and `room` from the dependencies, then the given ones (name: annotation, or
    name: (annotation, default))."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("core", keyword, annotation=CoreDep),
        inspect.Parameter("room", keyword, annotation=RoomDep),
    ]
    for name, spec in parameters.items():
        annotation, default = spec if isinstance(spec, tuple) else (spec, inspect.Parameter.empty)
        params.append(inspect.Parameter(name, keyword, annotation=annotation, default=default))
    return inspect.Signature(params, return_annotation=RoomView)


def _endpoint(command: Command[Any], rest: Rest) -> Endpoint:
    async def endpoint(core: Ambiance, room: Room, body: Any = None) -> RoomView:
        command.run(room, command.args() if body is None else body)
        return await _settled(core, room)

    model: Any = command.args
    if not model.model_fields:
        parameters: dict[str, Any] = {}
    elif rest.optional_body:
        parameters = {"body": (Annotated[model | None, Body()], None)}
    else:
        parameters = {"body": Annotated[model, Body()]}
    # FastAPI reads the parameters from the signature: the body's model is the command's.
    cast(Any, endpoint).__signature__ = _signature(**parameters)
    return endpoint


def _session_endpoint(shared: list[Command[Any]]) -> Endpoint:
    by_name = {command.name: command for command in shared}

    async def endpoint(core: Ambiance, room: Room, action: str) -> RoomView:
        command = by_name[action]  # the path's Literal has only these
        command.run(room, command.args())
        return await _settled(core, room)

    annotation: Any = Annotated[cast(Any, Literal)[tuple(by_name)], Path(examples=["next"])]
    cast(Any, endpoint).__signature__ = _signature(action=annotation)
    return endpoint
