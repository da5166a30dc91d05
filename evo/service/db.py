"""The service's memory: tables ``runs`` and ``events`` (SQLAlchemy 2; SQLite in WAL mode by default).

Every change of a run's status and every event goes through this module, in
one transaction with the run's row locked, so that

* a status changes only from the statuses a transition allows (a stop racing a
  worker's end, a cancel racing the scheduler's start: exactly one wins);
* each run's events carry ``seq`` = 1, 2, 3, ... with no gap and no repeat, in
  commit order: the number a stream uses as the SSE id (``Last-Event-ID``).

Several processes write (the service and each worker), so SQLite write
transactions start with ``BEGIN IMMEDIATE``: the writer waits for the lock
(``busy_timeout``) instead of failing when another process committed first.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

import numpy as np
from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, create_engine, event, func, select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

# Final: each constant keeps its literal type, so the API's Status literal accepts it.
QUEUED: Final = "queued"
RUNNING: Final = "running"
STOPPING: Final = "stopping"
STOPPED: Final = "stopped"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
STATUSES = (QUEUED, RUNNING, STOPPING, STOPPED, SUCCEEDED, FAILED, CANCELLED)
log = logging.getLogger("evo.service")
T = TypeVar("T")
#: how long a SQLite writer waits for another's lock before "database is locked" (EVO_DB_BUSY_TIMEOUT, seconds)
BUSY_TIMEOUT_SECONDS = float(os.environ.get("EVO_DB_BUSY_TIMEOUT") or 60)
#: how long a worker keeps retrying a write the database refused as busy before the run fails
WRITE_RETRY_SECONDS = 900.0


def is_busy(exc: BaseException) -> bool:
    """True for SQLite's transient refusal of a write: another process held the lock past the busy timeout."""
    return isinstance(exc, OperationalError) and any(text in str(exc.orig) for text in ("database is locked", "database is busy"))


#: a worker process is (or should be) executing the run
ACTIVE = (RUNNING, STOPPING)
#: nothing happens to the run until someone resumes it
ENDED = (STOPPED, SUCCEEDED, FAILED, CANCELLED)


class Base(DeclarativeBase):
    pass


class Run(Base):
    """One submitted run: its config, where it stands, and who executes it."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: the validated, resolved config (RunConfig.to_dict())
    config: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    #: position in the first-in, first-out queue
    queued_at: Mapped[float | None] = mapped_column(Float, index=True)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    latest_metrics: Mapped[dict | None] = mapped_column(JSON)
    summary: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    #: "stop" or "cancel": what a client asked of a running run (the worker reads it between generations)
    requested: Mapped[str | None] = mapped_column(String(16))
    run_dir: Mapped[str] = mapped_column(Text)
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    #: "run" (a worker executes it) or "study" (ask/tell: the service keeps the strategy, clients bring the fitness)
    kind: Mapped[str] = mapped_column(String(16), default="run", server_default="run", index=True)


class Event(Base):
    """One thing that happened to a run: a generation's metrics row, a status change, the summary, a notice."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("run_id", "seq"), Index("ix_events_run_kind_generation", "run_id", "kind", "generation"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


class Trial(Base):
    """One genome of an ask/tell study's current generation: open, asked by a client, or told its fitness."""

    __tablename__ = "trials"
    __table_args__ = (Index("ix_trials_study_generation", "study_id", "generation", "status"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    study_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    generation: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)
    genome: Mapped[list] = mapped_column(JSON)
    #: "open", "asked" or "told"
    status: Mapped[str] = mapped_column(String(8))
    client_id: Mapped[str | None] = mapped_column(String(100))
    asked_at: Mapped[float | None] = mapped_column(Float)
    #: how many times it was handed out (more than once: a client took too long and it went to another)
    issued: Mapped[int] = mapped_column(Integer, default=0)
    fitness: Mapped[float | None] = mapped_column(Float)


def json_safe(obj: Any) -> Any:
    """Plain JSON values: NaN and infinities become None, NumPy scalars and arrays plain numbers and lists."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray)):  # NumPy scalars and arrays
        return json_safe(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


class Database:
    """Engines and sessions for one database URL; every write of the service goes through its methods."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            # Writers serialise on BEGIN IMMEDIATE; readers use a second engine with plain (deferred)
            # transactions so that, in WAL mode, they never wait for a writer.
            self.engine = self._sqlite_engine(url, immediate=True)
            self.read_engine = self._sqlite_engine(url, immediate=False)
        else:
            self.engine = self.read_engine = create_engine(url, pool_pre_ping=True)
        self._write_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @staticmethod
    def _sqlite_engine(url: str, immediate: bool) -> Engine:
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process kill
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def create_tables(self) -> None:
        """Create the tables that do not exist yet."""
        Base.metadata.create_all(self.engine)
        # A database made before studies existed lacks runs.kind: add it (every row in it is a run).
        from sqlalchemy import inspect

        if "kind" not in {c["name"] for c in inspect(self.engine).get_columns("runs")}:
            with self.engine.begin() as connection:
                connection.exec_driver_sql("ALTER TABLE runs ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'run'")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction, committed on success and rolled back on error."""
        with self._write_sessions() as session, session.begin():
            yield session

    def write_retrying(self, work: Callable[[Session], T], what: str, give_up_after: float = WRITE_RETRY_SECONDS) -> T:
        """``work(session)`` in a write transaction, run again (backing off) while the database is busy, up to ``give_up_after`` seconds."""
        delay, deadline = 0.5, time.monotonic() + give_up_after
        while True:
            try:
                with self.write() as session:
                    return work(session)
            except OperationalError as exc:
                if not is_busy(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning("database busy writing %s; retrying in %.1f s", what, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session."""
        with self._read_sessions() as session:
            yield session

    # ------------------------------------------------------------ events
    @staticmethod
    def append_event(
        session: Session,
        run_id: str,
        kind: str,
        data: dict[str, Any],
        generation: int | None = None,
        only_if: tuple[str, ...] | None = None,
    ) -> int | None:
        """Add the run's next event; returns its ``seq``, or None when ``only_if`` is given and the run's status is not in it.

        The counter's UPDATE locks the run's row until commit, so events commit in ``seq`` order.
        """
        statement = update(Run).where(Run.id == run_id)
        if only_if is not None:
            statement = statement.where(Run.status.in_(only_if))
        seq = session.execute(statement.values(last_event_seq=Run.last_event_seq + 1).returning(Run.last_event_seq)).scalar_one_or_none()
        if seq is None:
            return None
        session.add(Event(run_id=run_id, seq=seq, kind=kind, generation=generation, data=json_safe(data), created_at=time.time()))
        return seq

    def transition(
        self, session: Session, run_id: str, to: str, allowed_from: tuple[str, ...], message: str | None = None, **fields: Any
    ) -> bool:
        """Move a run to status ``to`` if its status is in ``allowed_from``; set ``fields`` and add a status event. True if it moved."""
        values = {"status": to, **fields}
        moved = rows_changed(session.execute(update(Run).where(Run.id == run_id, Run.status.in_(allowed_from)).values(**values)))
        if not moved:
            return False
        data: dict[str, Any] = {"status": to}
        if message:
            data["message"] = message
        self.append_event(session, run_id, "status", data)
        return True

    def events_after(self, run_id: str, after_seq: int, limit: int = 1000) -> list[Event]:
        """The run's events with ``seq`` > ``after_seq``, oldest first."""
        with self.read() as session:
            statement = select(Event).where(Event.run_id == run_id, Event.seq > after_seq).order_by(Event.seq).limit(limit)
            return list(session.scalars(statement))

    def stream_positions(self, run_ids: list[str]) -> dict[str, tuple[str, int]]:
        """(status, last event seq) of each existing run among ``run_ids``."""
        with self.read() as session:
            rows = session.execute(select(Run.id, Run.status, Run.last_event_seq).where(Run.id.in_(run_ids)))
            return {run_id: (status, seq) for run_id, status, seq in rows}

    def count_active(self, session: Session) -> int:
        """Runs a worker is executing (or should be)."""
        return session.scalar(select(func.count()).select_from(Run).where(Run.status.in_(ACTIVE), Run.kind == "run")) or 0


def encode_event(ev: Event) -> dict[str, Any]:
    """An event as the SSE stream sends it: its number, kind, JSON data, and the whole message as sent (encoded once for every watcher)."""
    data = json.dumps(ev.data, allow_nan=False)  # one line: json.dumps never writes a newline without indent
    return {"id": ev.seq, "event": ev.kind, "data": data, "wire": f"id: {ev.seq}\nevent: {ev.kind}\ndata: {data}\n\n".encode()}


def rows_changed(result: Any) -> int:
    """Rows an UPDATE or DELETE changed (its result is a CursorResult; Session.execute is typed more loosely)."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"expected the CursorResult of an UPDATE or DELETE, got {type(result).__name__}")
    return int(result.rowcount)
