"""Access control and HTTP hardening: the token check, security headers, the body limit.

- The token: a FastAPI dependency (so OpenAPI shows the bearer scheme), put on every
  router but health's by app.py through `guard()` when a token is required (auth.required,
  and the host for "auto"). `Authorization: Bearer <token>` everywhere; the
  `access_token` query only on `/api/v1/events`, since EventSource cannot send headers.
  Open: `/api/v1/health`, the page shell (`/`, its files, `/icons/*`), `/docs`,
  `/redoc` and `/openapi.json` (they describe the API and hold no data).
- Security headers on every response; the page's CSP allows no inline script or style,
  and `/docs` (Swagger UI, served from this server by api/docs.py) has the same one.
  `/redoc` also allows inline style and blob: workers, which ReDoc makes as it renders.
- A request body larger than `auth.max_body_bytes` is answered 413, whether it says its
  Content-Length or arrives chunked (read as it comes, up to the limit).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ambiance.infra.auth import AuthSettings, token_required
from ambiance.infra.store import Tokens

from .errors import error_body
from .schemas import ErrorBody

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
DRAIN_BYTES = 1024 * 1024  # how much of a too-large body is read and dropped before the 413
# /docs (Swagger UI) runs under the page's CSP: its scripts and styles are files from this
# server (api/docs.py). ReDoc makes its styles as it renders (styled-components' <style>
# elements) and its search index in a worker it builds from a blob: URL, so /redoc also
# allows inline style and blob: workers, and still no inline or outside script. (ReDoc's
# credit shows Redocly's logo from their CDN: img-src keeps it out, and it hides itself.)
REDOC_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'").replace(
    "connect-src", "worker-src blob:; connect-src"
)
HOW_TO_GET_ONE = (
    "a valid API token is needed: send 'Authorization: Bearer <token>'. The token is "
    "printed once by 'ambiance serve' when it is first made; 'ambiance token --reset' "
    "makes a new one (the old one stops working)"
)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="The API token (`ambiance serve` prints it once; `ambiance token --reset`).",
)
query_token = APIKeyQuery(
    name="access_token",
    auto_error=False,
    scheme_name="access_token",
    description="The token in the query: only for /events (EventSource sends no headers).",
)


class Unauthorized(Exception):
    pass


class Access:
    """What the token check needs: whether a token is required, and where its hash is."""

    def __init__(self, auth: AuthSettings, host: str, store: Tokens) -> None:
        self.required = token_required(auth, host)
        self.store = store

    def check(self, token: str | None) -> None:
        if self.required and not self.store.verify(token):
            raise Unauthorized


def _access(request: Request) -> Access:
    return _access_of(request.app)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> None:
    _access(request).check(credentials.credentials if credentials else None)


async def require_token_or_query(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    access_token: Annotated[str | None, Security(query_token)],
) -> None:
    _access(request).check(credentials.credentials if credentials else access_token)


def guard(app: FastAPI, *, query: bool = False) -> dict[str, Any]:
    """`include_router` arguments that put a router behind the token, when one is required.

    Only then: the OpenAPI document says what this server asks for (the bearer scheme,
    and a 401 answer), and an open server's schema has no security to meet.
    """
    if not _access_of(app).required:
        return {}
    dependency = require_token_or_query if query else require_token
    return {
        "dependencies": [Depends(dependency)],
        "responses": {401: {"model": ErrorBody, "description": "No token, or a wrong one."}},
    }


def _access_of(app: FastAPI) -> Access:
    access: Access = app.state.access
    return access


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        error_body("unauthorized", HOW_TO_GET_ONE), 401, headers={"WWW-Authenticate": "Bearer"}
    )


class SecurityHeaders:
    """Adds the security headers to every response (ReDoc's page gets its wider CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = REDOC_CSP if path == "/redoc" else CSP
        extra = [*HEADERS, (b"content-security-policy", csp.encode())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Answers 413 for a body over `limit` bytes: by its Content-Length, or as it arrives.

    A body is read up to the limit before the app sees it, then handed on; a request
    without one (GET, the event stream) passes straight through.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if length is None and not chunked:
            await self.app(scope, receive, send)
            return
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = 0
            if declared > self.limit:
                await self._too_large(receive, send, done=declared > self.limit + DRAIN_BYTES)
                return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # a disconnect: the app hears of it
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._too_large(receive, send, done=not message.get("more_body", False))
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, receive: Receive, send: Send, *, done: bool) -> None:
        # Read (and drop) a modest rest of the body first, so that a client still sending
        # it gets the 413 rather than a reset connection; a huge one is cut off.
        dropped = 0
        while not done and dropped <= DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            dropped += len(message.get("body", b""))
            done = not message.get("more_body", False)
        body = json.dumps(
            error_body(
                "request_too_large",
                f"the request body is larger than the limit of {self.limit} bytes "
                "(auth.max_body_bytes)",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RedactAccessToken(logging.Filter):
    """Keeps `access_token=...` out of uvicorn's access log (the event stream's URL)."""

    PATTERN = re.compile(r"(access_token=)[^&\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.PATTERN.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "access_token=" in record.msg:
            record.msg = self.PATTERN.sub(r"\1[redacted]", record.msg)
        return True


_REDACT = RedactAccessToken()


def install(app: FastAPI, auth: AuthSettings, host: str, store: Tokens) -> None:
    """The token check's state and error, CORS, the body limit and the headers."""
    access = Access(auth, host, store)
    app.state.access = access
    if access.required:
        created = store.ensure()
        if created is not None:
            # Made here, shown nowhere: say how to get one, never the token itself.
            log.warning("an API token was made; run 'ambiance token --reset' to see a new one")
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_middleware(BodyLimit, limit=auth.max_body_bytes)
    if auth.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=auth.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(SecurityHeaders)  # added last: outermost, so every answer has them
    access_log = logging.getLogger("uvicorn.access")
    if _REDACT not in access_log.filters:
        access_log.addFilter(_REDACT)
