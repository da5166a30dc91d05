"""Request and response models of the REST API (they make the OpenAPI schema)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from evo.service.db import Run
from evo.service.settings import RUN_ID_PATTERN

Status = Literal["queued", "running", "stopping", "stopped", "succeeded", "failed", "cancelled"]


def as_status(value: str) -> Status:
    """A status read from the database, as the API's literal type; ValueError for anything else."""
    for status in get_args(Status):
        if value == status:
            return status
    raise ValueError(f"unknown run status {value!r}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Overrides(_Strict):
    """What `evo run` lets a command line change, on top of the submitted config."""

    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    generations: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    population: Annotated[int, Field(ge=2, le=1_000_000)] | None = None
    workers: Annotated[int, Field(ge=1, le=100_000)] | None = None


class SubmitRequest(_Strict):
    """A run to execute: a config (TOML text or the same as a JSON object), an optional id, optional overrides."""

    config: str | dict[str, Any] = Field(description="the run config: TOML text, or the same structure as a JSON object")
    run_id: Annotated[str, Field(pattern=RUN_ID_PATTERN)] | None = Field(
        None, description="idempotency key and the run's id: submitting it again returns the existing run"
    )
    overrides: Overrides | None = None


class ResumeRequest(_Strict):
    """Continue from the checkpoint, optionally to a new total of generations or on more workers."""

    generations: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    workers: Annotated[int, Field(ge=1, le=100_000)] | None = None


class RunRef(BaseModel):
    """A run's id and status: what a submit or an action answers."""

    id: str
    status: Status
    message: str | None = None


class RunBrief(BaseModel):
    """A run as the list shows it."""

    id: str
    name: str
    #: "run" (a worker executes it) or "study" (ask/tell)
    kind: str = "run"
    #: the strategy's type and the task (environment id, dataset, or the task type) from the config
    strategy: str | None = None
    task: str | None = None
    status: Status
    generation: int
    generations: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    best_fitness: float | None = None


class RunDetail(RunBrief):
    """Everything the service knows about a run."""

    config: dict[str, Any]
    latest_metrics: dict[str, Any] | None
    summary: dict[str, Any] | None
    error: str | None
    requested: str | None
    attempts: int
    worker_pid: int | None
    heartbeat_at: dt.datetime | None
    last_event_id: int


class RunList(BaseModel):
    """One page of runs, newest first."""

    runs: list[RunBrief]
    total: int
    limit: int
    offset: int


class MetricsPage(BaseModel):
    """Metrics rows (one per generation), in generation order."""

    run_id: str
    rows: list[dict[str, Any]]


class FileEntry(BaseModel):
    """One file of a run directory."""

    path: str
    size: int
    modified: dt.datetime


class FileList(BaseModel):
    run_id: str
    files: list[FileEntry]


class ErrorBody(BaseModel):
    """Every error: one message naming what is wrong."""

    error: str


def _when(timestamp: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC) if timestamp is not None else None


def brief(run: Run) -> RunBrief:
    """The list view of a run."""
    return RunBrief(**_brief_fields(run))


def _task_label(task: dict[str, Any]) -> str | None:
    label = task.get("env_id") or task.get("path") or task.get("type")
    return str(label) if label is not None else None


def _brief_fields(run: Run) -> dict[str, Any]:
    best = (run.latest_metrics or {}).get("best_so_far")
    return {
        "id": run.id,
        "name": run.name,
        "kind": run.kind or "run",
        "strategy": (run.config.get("strategy") or {}).get("type"),
        "task": _task_label(run.config.get("task") or {}),
        "status": run.status,
        "generation": run.generation,
        "generations": int(run.config.get("generations", 0)),
        "created_at": _when(run.created_at),
        "started_at": _when(run.started_at),
        "finished_at": _when(run.finished_at),
        "best_fitness": best,
    }


def detail(run: Run) -> RunDetail:
    """The full view of a run."""
    return RunDetail(
        **_brief_fields(run),
        config=run.config,
        latest_metrics=run.latest_metrics,
        summary=run.summary,
        error=run.error,
        requested=run.requested,
        attempts=run.attempts,
        worker_pid=run.worker_pid,
        heartbeat_at=_when(run.heartbeat_at),
        last_event_id=run.last_event_seq,
    )


#: the error responses every /api route may give, for the OpenAPI schema
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no bearer token"},
    403: {"model": ErrorBody, "description": "wrong bearer token"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no run with this id"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "not possible in the run's status"}}
INVALID: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "malformed JSON"},
    413: {"model": ErrorBody, "description": "body over 1 MiB"},
    422: {"model": ErrorBody, "description": "invalid body or config"},
}


# --------------------------------------------------------------------------- ask/tell studies
class StudyRequest(_Strict):
    """A study: a strategy, and either a network with the task's input and output counts or a dimension with bounds."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] = "study"
    study_id: Annotated[str, Field(pattern=RUN_ID_PATTERN)] | None = Field(
        None, description="idempotency key and the study's id: creating it again returns the existing study"
    )
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    generations: Annotated[int, Field(ge=1, le=10_000_000)] = 100
    target_fitness: float | None = Field(None, description="the study ends once a generation's best reaches this")
    strategy: dict[str, Any] = Field(description="the [strategy] section of a run config (type, population, its parameters)")
    network: dict[str, Any] | None = Field(
        None, description="the [network] section of a run config (mlp, cnn or neat); needs inputs, outputs"
    )
    inputs: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    outputs: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    output_activation: Annotated[str, Field(max_length=32)] | None = None
    dimension: Annotated[int, Field(ge=1, le=10_000_000)] | None = Field(None, description="a plain vector genome of this length")
    bounds: tuple[float, float] | None = Field(
        None, description="[low, high] of every gene of a vector genome (genomes are clipped into it)"
    )
    init_scale: Annotated[float, Field(ge=0.0, le=1e6)] = 1.0
    trial_timeout: Annotated[float, Field(gt=0.0, le=7 * 86400.0)] = Field(
        60.0, description="seconds after which a trial asked and not told goes to another client"
    )


class AskRequest(_Strict):
    """Trials for one client."""

    client_id: Annotated[str, Field(min_length=1, max_length=100)]
    count: Annotated[int, Field(ge=1, le=1_000_000)] = 1


class TrialOut(BaseModel):
    """One genome to evaluate, with what builds its network and the seeds `evo run` would give its fitness."""

    id: str
    generation: int
    index: int
    genome: list[float]
    network: dict[str, Any] | None
    seed: int
    generation_seed: int


class AskAnswer(BaseModel):
    """The trials handed out; none with ``retry_after`` while others hold the generation's last ones, none with ``done`` at the end."""

    study_id: str
    status: Status
    generation: int
    trials: list[TrialOut]
    done: bool
    retry_after: float | None


class TrialResult(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=100)]
    fitness: float | None = Field(description="the trial's fitness (higher is better); null or NaN: the evaluation failed")


class TellRequest(_Strict):
    """Fitness of asked trials."""

    results: Annotated[list[TrialResult], Field(min_length=1, max_length=1_000_000)]


class TellAnswer(BaseModel):
    accepted: int
    ignored: list[str]
    generation: int
    status: Status


STUDY_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no study with this id"}}
