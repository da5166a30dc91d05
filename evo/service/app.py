"""The FastAPI application: bearer-token auth, a 1 MiB body limit, one JSON error shape, and the routers.

Auth and the body limit are plain ASGI middleware, so they answer before
anything reads the request: an unauthenticated or oversized request never
reaches a route, a parser or the database. Every error, from ours to
FastAPI's own validation errors, is ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from evo.config import ConfigError
from evo.service.db import Database, is_busy
from evo.service.settings import MAX_BODY_BYTES, ServiceSettings
from evo.service.streams import EventHub

log = logging.getLogger("evo.service")


class SchedulerHandle(Protocol):
    """What the application needs of the scheduler."""

    def start(self) -> None: ...
    def shutdown(self) -> None: ...
    def wake(self) -> None: ...
    def kill_worker(self, run_id: str, pid: int | None) -> None: ...


async def _send_error(scope: Scope, receive: Receive, send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    await JSONResponse({"error": message}, status_code=status, headers=headers)(scope, receive, send)


class BearerAuth:
    """Every ``/api`` request needs ``Authorization: Bearer <token>``: 401 without one, 403 with a wrong one."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401 or 403 for an ``/api`` request without the right token; pass the rest on."""
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/api" or path.startswith("/api/")):
            header = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, credentials = header.partition(b" ")
            if scheme.lower() != b"bearer" or not credentials.strip():
                message = (
                    "missing bearer token: send 'Authorization: Bearer <token>' (the token is in the service's home folder, <home>/token)"
                )
                return await _send_error(scope, receive, send, 401, message, {"WWW-Authenticate": "Bearer"})
            if not hmac.compare_digest(credentials.strip(), self.token):
                return await _send_error(scope, receive, send, 403, "wrong bearer token")
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by the Content-Length header or by counting a chunked body.

    The body is read here, counted as it arrives, before the application sees
    it: an error raised from inside the application's receive would reach
    FastAPI's body parser, which turns any error into 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read and count the body; 413 once it is over the limit, else pass the request on with the body replayed."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"request body over {self.max_bytes} bytes (1 MiB)"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _send_error(scope, receive, send, 413, message)
        chunks: list[bytes] = []
        received = 0
        while True:
            item = await receive()
            if item["type"] != "http.request":  # the client went away: let the application see it
                return await self.app(scope, _replay([item], receive), send)
            body = item.get("body", b"")
            received += len(body)
            if received > self.max_bytes:
                return await _send_error(scope, receive, send, 413, message)
            chunks.append(body)
            if not item.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(items: list[Message], receive: Receive) -> Receive:
    """A receive that hands out ``items`` first, then whatever ``receive`` gets (a disconnect, for a stream)."""
    pending = list(items)

    async def replaying() -> Message:
        return pending.pop(0) if pending else await receive()

    return replaying


def _describe_validation_error(item: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in item["loc"])
    if item["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    if item["type"] == "missing":
        return f"{where}: required field is missing"
    return f"{where}: {item['msg']}"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        malformed = [e for e in errors if e["type"] == "json_invalid"]
        if malformed:
            reason = malformed[0].get("ctx", {}).get("error", "")
            return JSONResponse({"error": f"malformed JSON body: {reason}".rstrip(": ")}, status_code=400)
        return JSONResponse({"error": "; ".join(_describe_validation_error(e) for e in errors)}, status_code=422)

    @app.exception_handler(ConfigError)
    async def bad_config(_request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def database_error(request: Request, exc: OperationalError) -> JSONResponse:
        if is_busy(exc):  # another process held the lock past the busy timeout: transient
            log.warning("database busy answering %s %s", request.method, request.url.path)
            return JSONResponse({"error": "database busy, retry"}, status_code=503, headers={"Retry-After": "5"})
        log.error("database error answering %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal error"}, status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The detail (server paths, SQL text) goes to the service's log, never to the client.
        log.error("internal error answering %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal error"}, status_code=500)


def create_app(settings: ServiceSettings, db: Database, token: str, scheduler: SchedulerHandle | None = None) -> FastAPI:
    """The service's ASGI application over ``db``; ``scheduler`` runs what is submitted (None: runs only queue)."""
    from evo.service.routers import bearer_scheme, events, files, runs, studies
    from evo.service.studies import Studies

    hub = EventHub(db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # The scheduler lives and ends with the application: uvicorn re-raises SIGTERM once the lifespan is over.
        if scheduler is not None:
            scheduler.start()
        poller = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            poller.cancel()
            if scheduler is not None:
                log.info("shutting down: running runs continue from their checkpoints at the next start")
                await asyncio.to_thread(scheduler.shutdown)

    app = FastAPI(
        title="evo",
        summary="Neuroevolution runs as a service: submit, watch, stop, resume and fetch them.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.scheduler = scheduler
    app.state.hub = hub
    app.state.studies = Studies(db, settings.home)
    _install_error_handlers(app)
    for module in (runs, events, files, studies):
        app.include_router(module.router)
    from evo.service import dashboard

    app.include_router(dashboard.api, dependencies=[Depends(bearer_scheme)])
    app.include_router(dashboard.router)
    app.mount("/static", dashboard.static_files, name="static")

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(BearerAuth, token=token)  # added last: runs first
    return app
