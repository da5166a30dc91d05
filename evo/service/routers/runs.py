"""``/api/runs``: submit, list, get, delete, and the actions stop, cancel, resume."""

from __future__ import annotations

import secrets
import shutil
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from evo.config import ConfigError, RunConfig, apply_overrides, parse_config
from evo.service.db import (
    ACTIVE,
    CANCELLED,
    ENDED,
    FAILED,
    QUEUED,
    RUNNING,
    STOPPED,
    STOPPING,
    SUCCEEDED,
    Database,
    Event,
    Run,
    Trial,
    json_safe,
)
from evo.service.routers import Limit, Offset, bearer_scheme, database, run_or_404, run_page
from evo.service.schemas import (
    CONFLICT,
    ERRORS,
    INVALID,
    NOT_FOUND,
    Overrides,
    ResumeRequest,
    RunDetail,
    RunList,
    RunRef,
    Status,
    SubmitRequest,
    as_status,
    detail,
)
from evo.service.validation import check_buildable, confine_data_paths, refuse_user_code

router = APIRouter(prefix="/api/runs", tags=["runs"], dependencies=[Depends(bearer_scheme)], responses=ERRORS)
Db = Annotated[Database, Depends(database)]


def resolve_config(config: str | dict[str, Any], overrides: Overrides | None, data_dir: Path) -> RunConfig:
    """The submitted config (TOML text or a JSON object) with its overrides, validated and built as `evo run` does (data files from ``data_dir`` only)."""
    if isinstance(config, str):
        try:
            data = tomllib.loads(config)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config error: the config is not valid TOML: {exc}") from None
    else:
        data = dict(config)
    extra = overrides.model_dump(exclude_none=True) if overrides is not None else {}
    resolved = parse_config(confine_data_paths(apply_overrides(data, **extra), data_dir))
    refuse_user_code(resolved)  # before building: a function task's module would be imported by the build
    check_buildable(resolved, data_dir)
    return resolved


def _wake(request: Request) -> None:
    if request.app.state.scheduler is not None:
        request.app.state.scheduler.wake()


@router.post(
    "",
    status_code=201,
    response_model=RunRef,
    responses={200: {"model": RunRef, "description": "run_id already submitted"}, **INVALID, **CONFLICT},
)
def submit_run(body: SubmitRequest, request: Request, response: Response, db: Db) -> RunRef:
    """Validate a config and queue a run; the same ``run_id`` again returns the existing run."""
    config = json_safe(resolve_config(body.config, body.overrides, request.app.state.settings.data_dir).to_dict())
    run_id = body.run_id or secrets.token_hex(6)
    now = time.time()
    try:
        with db.write() as session:
            existing = session.get(Run, run_id)
            if existing is None:
                run_dir = request.app.state.settings.runs_dir / run_id
                session.add(
                    Run(id=run_id, name=config["name"], status=QUEUED, config=config, created_at=now, queued_at=now, run_dir=str(run_dir))
                )
                session.flush()
                db.append_event(session, run_id, "status", {"status": QUEUED})
    except IntegrityError:  # a concurrent submission of the same run_id won (databases without BEGIN IMMEDIATE)
        with db.read() as session:
            existing = session.get(Run, run_id)
    if existing is None:
        _wake(request)
        return RunRef(id=run_id, status=QUEUED)
    if existing.config != config:
        raise HTTPException(409, f"run id {run_id!r} already names a run with a different config; choose another run_id")
    response.status_code = 200
    return RunRef(id=existing.id, status=as_status(existing.status), message="already submitted")


@router.get("", response_model=RunList)
def list_runs(
    db: Db,
    status: Status | None = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunList:
    """Runs, newest first, filtered by status and name."""
    conditions = [c for c in (Run.status == status if status else None, Run.name == name if name else None) if c is not None]
    return run_page(db, conditions, limit, offset)


@router.get("/{run_id}", response_model=RunDetail, responses=NOT_FOUND)
def get_run(run_id: str, db: Db) -> RunDetail:
    """Status, config, timestamps, latest metrics row, summary when finished, error when failed."""
    with db.read() as session:
        return detail(run_or_404(session, run_id))


@router.delete("/{run_id}", status_code=204, responses={**NOT_FOUND, **CONFLICT})
def delete_run(run_id: str, request: Request, db: Db) -> Response:
    """Forget a run that is not running, with its events and run directory."""
    with db.write() as session:
        run = run_or_404(session, run_id)
        if run.status in ACTIVE:
            raise HTTPException(409, f"run {run_id!r} is {run.status}: stop or cancel it before deleting it")
        run_dir = Path(run.run_dir)
        session.execute(delete(Trial).where(Trial.study_id == run_id))
        session.execute(delete(Event).where(Event.run_id == run_id))
        session.delete(run)
    request.app.state.studies.forget(run_id)
    shutil.rmtree(run_dir, ignore_errors=True)
    for suffix in (".log", ".pid"):
        (request.app.state.settings.logs_dir / f"{run_id}{suffix}").unlink(missing_ok=True)
    return Response(status_code=204)


@router.post("/{run_id}/stop", response_model=RunRef, responses={**NOT_FOUND, **CONFLICT})
def stop_run(run_id: str, db: Db) -> RunRef:
    """Finish the current generation, checkpoint, end as ``stopped`` (resumable)."""
    with db.write() as session:
        run = run_or_404(session, run_id)
        if run.kind == "study" and run.status == RUNNING:  # its checkpoint is always current: it stops at once
            db.transition(
                session, run_id, STOPPED, (RUNNING,), "stopped: asks and tells are refused until it is resumed", finished_at=time.time()
            )
            return RunRef(id=run_id, status=STOPPED)
        if run.status == RUNNING:
            db.transition(session, run_id, STOPPING, (RUNNING,), "stop requested: ending after the current generation", requested="stop")
            return RunRef(id=run_id, status=STOPPING)
        if run.status == QUEUED:
            db.transition(session, run_id, STOPPED, (QUEUED,), "stopped while queued", finished_at=time.time())
            return RunRef(id=run_id, status=STOPPED)
        if run.status == STOPPING:
            return RunRef(id=run_id, status=STOPPING, message="already stopping")
        raise HTTPException(409, f"run {run_id!r} has already ended ({run.status}): there is nothing to stop")


@router.post("/{run_id}/cancel", response_model=RunRef, responses={**NOT_FOUND, **CONFLICT})
def cancel_run(run_id: str, request: Request, db: Db) -> RunRef:
    """End the run now: its worker is killed, status ``cancelled``."""
    with db.write() as session:
        run = run_or_404(session, run_id)
        if run.status in ENDED:
            raise HTTPException(409, f"run {run_id!r} has already ended ({run.status}): there is nothing to cancel")
        pid = run.worker_pid if run.status in ACTIVE else None
        db.transition(session, run_id, CANCELLED, (QUEUED, RUNNING, STOPPING), "cancelled", requested="cancel", finished_at=time.time())
    if request.app.state.scheduler is not None:
        request.app.state.scheduler.kill_worker(run_id, pid)
    return RunRef(id=run_id, status=CANCELLED)


@router.post("/{run_id}/resume", response_model=RunRef, responses={**NOT_FOUND, **CONFLICT, **INVALID})
def resume_run(run_id: str, request: Request, db: Db, body: ResumeRequest | None = None) -> RunRef:
    """Queue the run again to continue from its checkpoint (optionally to ``generations`` in all, on ``workers``)."""
    body = body or ResumeRequest()
    with db.write() as session:
        run = run_or_404(session, run_id)
        if run.status not in ENDED:
            raise HTTPException(409, f"run {run_id!r} is {run.status}: only a stopped, failed, cancelled or finished run can be resumed")
        if run.kind == "study":
            return _resume_study(request, db, session, run, body)
        has_checkpoint = (Path(run.run_dir) / "checkpoint" / "state.json").is_file()
        if not has_checkpoint and run.attempts > 0:
            every = run.config.get("checkpoint_every")
            raise HTTPException(
                409,
                f"run {run_id!r} has no checkpoint to resume from: it ended ({run.status}) at generation {run.generation}, "
                f"before its first checkpoint (checkpoint_every = {every})",
            )
        config = dict(run.config)
        if body.generations is not None:
            config["generations"] = body.generations
        if body.workers is not None:
            config["evaluator"] = {**config.get("evaluator", {}), "type": "ray", "workers": body.workers}
        if run.status == SUCCEEDED and (body.generations is None or body.generations <= run.generation):
            raise HTTPException(
                409, f"run {run_id!r} already finished at generation {run.generation}; give generations > {run.generation} to continue it"
            )
        if body.generations is not None and body.generations <= run.generation:
            # Its generations up to run.generation are reported already: a shorter run would contradict them.
            raise HTTPException(
                409,
                f"run {run_id!r} is already at generation {run.generation}; give generations > {run.generation} to continue it "
                f"(it was asked for {body.generations})",
            )
        config = json_safe(parse_config(config).to_dict())
        db.transition(
            session,
            run_id,
            QUEUED,
            (STOPPED, FAILED, CANCELLED, SUCCEEDED),
            "resume requested" if has_checkpoint else "queued again (it had not started)",
            config=config,
            queued_at=time.time(),
            finished_at=None,
            requested=None,
            error=None,
            summary=None,
        )
    _wake(request)
    return RunRef(id=run_id, status=QUEUED)


def _resume_study(request: Request, db: Database, session, run: Run, body: ResumeRequest) -> RunRef:
    """A study takes asks again (to ``generations`` in all, if given); its outstanding trials are handed out afresh."""
    config = dict(run.config)
    if body.generations is not None:
        config["generations"] = body.generations
    if (
        run.status == SUCCEEDED
        and config["generations"] <= run.generation
        and run.summary
        and run.summary.get("stopped_by") == "generations"
    ):
        raise HTTPException(409, f"study {run.id!r} already finished at generation {run.generation}; give generations > {run.generation}")
    db.transition(session, run.id, RUNNING, ENDED, "resumed: clients may ask", config=config, finished_at=None, summary=None, error=None)
    # Outstanding trials go back to open (their clients may be long gone); the engine reloads from the checkpoint.
    session.execute(update(Trial).where(Trial.study_id == run.id, Trial.status == "asked").values(status="open", client_id=None))
    request.app.state.studies.forget(run.id)
    return RunRef(id=run.id, status=RUNNING)
