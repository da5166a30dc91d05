"""One router per resource: ``runs`` (submit, list, get, act), ``events`` (metrics, stream), ``files``."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Query, Request
from fastapi.security import HTTPBearer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evo.service.db import Database, Run
from evo.service.schemas import RunList, brief

#: declares the bearer scheme in the OpenAPI schema (the check itself is the BearerAuth middleware)
bearer_scheme = HTTPBearer(auto_error=False, description="the token printed by `evo serve` on first start, kept in <home>/token")


def database(request: Request) -> Database:
    """The service's database (a FastAPI dependency)."""
    return request.app.state.db


def run_or_404(session: Session, run_id: str) -> Run:
    """The run with this id, or a 404 naming it."""
    run = session.get(Run, run_id)
    if run is None:
        raise HTTPException(404, f"no run with id {run_id!r}")
    return run


#: the paging query parameters of every list
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


def run_page(db: Database, conditions: list, limit: int, offset: int) -> RunList:
    """One page of the runs that meet ``conditions``, newest first, with their total."""
    with db.read() as session:
        total = session.scalar(select(func.count()).select_from(Run).where(*conditions)) or 0
        rows = session.scalars(select(Run).where(*conditions).order_by(Run.created_at.desc(), Run.id).limit(limit).offset(offset))
        return RunList(runs=[brief(r) for r in rows], total=total, limit=limit, offset=offset)
