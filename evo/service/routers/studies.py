"""``/api/studies``: ask/tell over HTTP for fitness the service cannot compute (see :mod:`evo.service.studies`)."""

from __future__ import annotations

import math
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy.exc import IntegrityError

from evo.config import ConfigError
from evo.service.db import RUNNING, Database, Run, json_safe
from evo.service.routers import Limit, Offset, bearer_scheme, database, run_page
from evo.service.schemas import (
    CONFLICT,
    ERRORS,
    INVALID,
    STUDY_NOT_FOUND,
    AskAnswer,
    AskRequest,
    RunDetail,
    RunList,
    RunRef,
    StudyRequest,
    TellAnswer,
    TellRequest,
    as_status,
    detail,
)
from evo.service.studies import Studies, study_config

router = APIRouter(prefix="/api/studies", tags=["studies"], dependencies=[Depends(bearer_scheme)], responses=ERRORS)
Db = Annotated[Database, Depends(database)]


def studies(request: Request) -> Studies:
    """The service's studies (a FastAPI dependency)."""
    return request.app.state.studies


Sts = Annotated[Studies, Depends(studies)]


def _spec(body: StudyRequest) -> dict[str, Any]:
    """The study's resolved spec, or a ConfigError naming the field."""
    spec = body.model_dump(exclude={"study_id"})
    by_network = body.inputs is not None or body.outputs is not None or body.network is not None
    if by_network == (body.dimension is not None):
        raise ConfigError("config error: a study needs either inputs and outputs (with an optional network) or a dimension and bounds")
    if by_network and (body.inputs is None or body.outputs is None):
        raise ConfigError("config error: inputs and outputs: both are required for a network study")
    if body.dimension is not None:
        if body.bounds is None or not (math.isfinite(body.bounds[0]) and math.isfinite(body.bounds[1]) and body.bounds[0] < body.bounds[1]):
            raise ConfigError(f"config error: bounds = {body.bounds}: a vector study needs finite [low, high] with low < high")
        spec["bounds"] = list(body.bounds)
    config = study_config({**spec, "network": spec["network"] if by_network else None})
    # Resolved: every strategy and network default written out, so the spec says what runs.
    spec["strategy"] = {"type": config.strategy.type, "population": config.strategy.population, **config.strategy_params()}
    spec["network"] = config.network.model_dump() if by_network else None
    spec["task"] = {"type": "asktell"}
    return json_safe(spec)


@router.post("", status_code=201, response_model=RunRef, responses={200: {"model": RunRef}, **INVALID, **CONFLICT})
def create_study(body: StudyRequest, response: Response, db: Db, sts: Sts) -> RunRef:
    """Create a study (running at once: clients may ask); the same ``study_id`` again returns the existing one."""
    spec = _spec(body)
    study_id = body.study_id or secrets.token_hex(6)
    now = time.time()
    try:
        with db.write() as session:
            existing = session.get(Run, study_id)
            if existing is None:
                folder = sts.folder(study_id)
                sts.write_spec(study_id, spec)
                session.add(
                    Run(
                        id=study_id,
                        name=spec["name"],
                        status=RUNNING,
                        kind="study",
                        config=spec,
                        created_at=now,
                        started_at=now,
                        run_dir=str(folder),
                    )
                )
                session.flush()
                db.append_event(session, study_id, "status", {"status": RUNNING, "message": "study created: clients may ask"})
    except IntegrityError:
        with db.read() as session:
            existing = session.get(Run, study_id)
    if existing is None:
        return RunRef(id=study_id, status=RUNNING)
    if existing.kind != "study" or existing.config != spec:
        raise HTTPException(409, f"id {study_id!r} already names a {existing.kind} with a different spec; choose another study_id")
    response.status_code = 200
    return RunRef(id=existing.id, status=as_status(existing.status), message="already created")


@router.get("", response_model=RunList)
def list_studies(db: Db, limit: Limit = 50, offset: Offset = 0) -> RunList:
    """Studies only, newest first (they also show among ``/api/runs``)."""
    return run_page(db, [Run.kind == "study"], limit, offset)


@router.get("/{study_id}", response_model=RunDetail, responses=STUDY_NOT_FOUND)
def get_study(study_id: str, db: Db) -> RunDetail:
    """The study as a run: status, spec (as ``config``), generation, latest metrics row, summary (with the best genome) at the end."""
    with db.read() as session:
        run = session.get(Run, study_id)
        if run is None or run.kind != "study":
            raise HTTPException(404, f"no study with id {study_id!r}")
        return detail(run)


@router.post("/{study_id}/ask", response_model=AskAnswer, responses={**STUDY_NOT_FOUND, **INVALID})
def ask(study_id: str, body: AskRequest, sts: Sts) -> dict[str, Any]:
    """Up to ``count`` trials: the client's outstanding ones first, then ones whose client timed out, then new ones."""
    return sts.ask(study_id, body.client_id, body.count)


@router.post("/{study_id}/tell", response_model=TellAnswer, responses={**STUDY_NOT_FOUND, **INVALID, **CONFLICT})
def tell(study_id: str, body: TellRequest, sts: Sts) -> dict[str, Any]:
    """Fitness of trials; the generation advances once all its trials are told (the first answer for a trial counts)."""
    return sts.tell(study_id, [(r.id, r.fitness if r.fitness is None or math.isfinite(r.fitness) else None) for r in body.results])
