"""``/api/runs/{id}/metrics`` (rows so far) and ``/api/runs/{id}/stream`` (Server-Sent Events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse

from evo.service.db import Database, Event
from evo.service.routers import bearer_scheme, database, run_or_404
from evo.service.schemas import ERRORS, NOT_FOUND, MetricsPage

router = APIRouter(prefix="/api/runs", tags=["events"], dependencies=[Depends(bearer_scheme)], responses=ERRORS)
Db = Annotated[Database, Depends(database)]


async def _as_sse(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for item in events:
        yield item["wire"]  # already an SSE message, as bytes (sse-starlette sends bytes as they are): watchers share one encoding


@router.get("/{run_id}/metrics", response_model=MetricsPage, responses=NOT_FOUND)
def get_metrics(
    run_id: str, db: Db, since: Annotated[int, Query(ge=0, le=2**62, description="rows after this generation")] = 0
) -> MetricsPage:
    """The run's metrics rows (one per generation) after generation ``since``."""
    with db.read() as session:
        run_or_404(session, run_id)
        statement = (
            select(Event.data)
            .where(Event.run_id == run_id, Event.kind == "generation", Event.generation > since)
            .order_by(Event.generation)
        )
        return MetricsPage(run_id=run_id, rows=list(session.scalars(statement)))


@router.get(
    "/{run_id}/stream",
    responses={
        **NOT_FOUND,
        200: {"content": {"text/event-stream": {}}, "description": "events: status, generation, failures, summary, notice"},
    },
    response_class=EventSourceResponse,
)
async def stream_events(
    run_id: str,
    request: Request,
    db: Db,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=2**62)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="same as Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Every event of the run after ``Last-Event-ID``, live, until the run has ended (SSE ids are the events' numbers)."""
    with db.read() as session:
        run_or_404(session, run_id)
    start = max(v for v in (last_event_id, after, 0) if v is not None)
    return EventSourceResponse(
        _as_sse(request.app.state.hub.stream(run_id, start)), ping=15, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
