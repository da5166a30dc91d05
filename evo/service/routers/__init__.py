"""One router per resource: ``runs`` (submit, list, get, act), ``events`` (metrics, stream), ``files``."""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session

from evo.service.db import Database, Run

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
