"""The one place where errors become HTTP responses, all in one body shape:

{"error": {"code": "room_not_found", "message": "no room named 'kitchen' ...", "detail": ...}}
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ambiance.errors import (
    AmbianceError,
    ConfigError,
    Conflict,
    DeviceError,
    DeviceUnavailable,
    InvalidInput,
    NotFound,
    StorageError,
)

log = logging.getLogger(__name__)

# Most specific first.
STATUS: list[tuple[type[AmbianceError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (ConfigError, 422),
    (StorageError, 503),  # the service's disk: worth trying again once it is fixed
    (DeviceUnavailable, 503),
    (DeviceError, 502),
]


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def _status_of(exc: AmbianceError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


async def _ambiance_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AmbianceError)
    return JSONResponse(
        error_body(exc.code, exc.message, jsonable_encoder(exc.detail)), _status_of(exc)
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "field": ".".join(str(p) for p in error["loc"]),
            "message": str(error["msg"]).removeprefix("Value error, "),
        }
        for error in exc.errors()
    ]
    message = "; ".join(f"{p['field']}: {p['message']}" for p in problems) or "invalid request"
    return JSONResponse(error_body("invalid_request", message, problems), 422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return JSONResponse(error_body(code, message), exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method of the path, not just the first route's (Starlette names one route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= set(route_methods)
    return sorted(methods)


class CatchAll:
    """The last net: an exception no handler took becomes a 500 in the error shape.

    Its traceback is logged once, here, with a request id that the answer names too (in
    `detail` and the `X-Request-ID` header), so a user's report finds the log line. It is
    not raised on: Starlette's own net would answer plain text, and uvicorn would log the
    traceback a second time. An answer already under way (an event stream) cannot be
    replaced; it is cut short, and the log says why.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            request_id = uuid.uuid4().hex[:16]
            log.exception(
                "unexpected error answering %s %s (request %s)",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
            if started:
                return
            body = error_body(
                "internal_error",
                f"something went wrong in the service; its log names request {request_id}",
                {"request_id": request_id},
            )
            response = JSONResponse(body, 500, headers={"X-Request-ID": request_id})
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(CatchAll)  # the innermost middleware: the others still wrap its 500
    app.add_exception_handler(AmbianceError, _ambiance_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
