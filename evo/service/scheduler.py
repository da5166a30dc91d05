"""The queue and the worker processes: at most ``max_concurrent`` runs at once, first in, first out.

A thread of the service. It starts (or adopts) the Ray instance, recovers the
runs a previous service left running, then, on every tick or wake-up:

* reaps workers that exited: one that ended without recording its run's end
  crashed, and the run is marked ``failed`` with the exit status and the tail
  of its log (the service itself keeps serving);
* starts the oldest queued runs while fewer than ``max_concurrent`` are
  running, each in a worker process (``evo.service.worker``) in its own session;
* keeps one standby worker ready (imports done, Ray joined) for the next run.

Why supervised driver processes rather than Ray Jobs or an actor per run: a
process per run isolates runs from each other and from the service (a run
that exhausts memory or segfaults fails alone), survives a SIGKILLed service
(so a restart re-attaches to it by pid), is killed for ``cancel`` with one
signal, and needs neither Ray's dashboard and job server (whose working
directory handling shadows packages, and whose HTTP API runs arbitrary
entrypoint commands) nor detached actors that a crashed service can no
longer name. The fitness still runs on Ray: each worker is a Ray driver.

Recovery after a restart: a run whose worker is still alive (pid recorded in
the database, command line checked) is re-attached; a run whose worker is
gone continues from its checkpoint (identical results, see evo.run); a run
that was stopping ends ``stopped``; queued runs stay queued.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update

from evo.service.db import ACTIVE, FAILED, QUEUED, RUNNING, STOPPED, STOPPING, Database, Run, rows_changed
from evo.service.processes import is_ours, kill_group, process_alive, python_env, spawn_python, terminate_group
from evo.service.ray_head import RayHead, adopt_or_start
from evo.service.settings import ServiceSettings, standby_ready_path

log = logging.getLogger("evo.service")
WORKER_MODULE = "evo.service.worker"
#: a new standby worker starts only after this long without a run starting, and with nothing queued
STANDBY_QUIET_SECONDS = 2.0


@dataclass
class WorkerHandle:
    """A worker process executing a run: our child (``process``) or one re-attached after a restart (pid only)."""

    pid: int
    process: subprocess.Popen | None = None

    def exited(self) -> bool:
        """True once the process has ended."""
        if self.process is not None:
            return self.process.poll() is not None
        return not process_alive(self.pid)

    def exit_status(self) -> str:
        """The exit status, as text (unknown for a process that is not our child)."""
        return str(self.process.returncode) if self.process is not None else "unknown (re-attached after a restart)"


def log_tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log file, on one line."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


class Scheduler:
    """Starts queued runs as worker processes and watches them; see the module docstring."""

    def __init__(self, settings: ServiceSettings, db: Database, tick_seconds: float = 0.5) -> None:
        self.settings = settings
        self.db = db
        self.tick_seconds = tick_seconds
        self.ray_head: RayHead | None = None
        self.ray_address: str | None = settings.ray_address
        self.worker_env: dict[str, str] = {}
        self.ready = threading.Event()
        self.startup_error: str | None = None
        self._workers: dict[str, WorkerHandle] = {}
        self._standby: subprocess.Popen | None = None
        self._standby_failures = 0
        self._last_launch = -STANDBY_QUIET_SECONDS
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name="evo-scheduler", daemon=True)

    # ---------------------------------------------------------------- control
    def start(self) -> None:
        """Start the scheduler thread (Ray and recovery happen there, while the API already answers)."""
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue now rather than at the next tick."""
        self._wake.set()

    def kill_worker(self, run_id: str, pid: int | None) -> None:
        """End a run's worker at once (cancel); the run's status is already set."""
        with self._lock:
            handle = self._workers.get(run_id)
        pid = handle.pid if handle is not None else pid
        if pid and is_ours(pid, WORKER_MODULE):
            kill_group(pid)
        self.wake()

    def shutdown(self) -> None:
        """Stop the thread, the workers (their runs resume from checkpoint at the next start) and the Ray head we run."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self._standby is not None:
            terminate_group(self._standby.pid, grace_seconds=2)
            standby_ready_path(self.settings.home, self._standby.pid).unlink(missing_ok=True)
        with self._lock:
            handles = list(self._workers.values())
        for handle in handles:
            kill_group(handle.pid, signal.SIGTERM)
        for handle in handles:
            terminate_group(handle.pid, grace_seconds=5)
        if self.ray_head is not None:
            self.ray_head.stop()

    # ------------------------------------------------------------------ thread
    def _main(self) -> None:
        try:
            self._prepare()
        except Exception as exc:  # the API keeps answering; runs stay queued
            self.startup_error = f"{type(exc).__name__}: {exc}"
            log.exception("scheduler could not start")
            self.ready.set()
            return
        self.ready.set()
        while not self._stopping.is_set():
            try:
                self._reap()
                self._start_queued()
                self._keep_standby()
            except Exception:  # a database hiccup: try again at the next tick
                log.exception("scheduler tick failed")
            self._wake.wait(self.tick_seconds)
            self._wake.clear()

    def _prepare(self) -> None:
        settings = self.settings
        if self.ray_address is None:
            self.ray_head = adopt_or_start(
                settings.ray_dir, settings.logs_dir / "ray_head.log", settings.ray_cpus, settings.ray_object_store_mb
            )
            self.ray_address = self.ray_head.address
            self.worker_env = dict(self.ray_head.env)
        else:
            self.worker_env = python_env()
        self.worker_env["EVO_SERVICE_DB"] = settings.database_url
        self._recover()

    def _recover(self) -> None:
        with self.db.read() as session:
            active = list(session.scalars(select(Run).where(Run.status.in_(ACTIVE)).order_by(Run.queued_at)))
        for run in active:
            if run.worker_pid is not None and is_ours(run.worker_pid, WORKER_MODULE):
                with self._lock:
                    self._workers[run.id] = WorkerHandle(run.worker_pid)
                self._notice(run.id, f"service restarted: worker {run.worker_pid} still running, re-attached")
            elif run.status == STOPPING:
                with self.db.write() as session:
                    self.db.transition(
                        session, run.id, STOPPED, (STOPPING,), "service restarted: the run was stopping", finished_at=time.time()
                    )
            else:
                self._notice(run.id, "service restarted: the worker is gone; continuing from the last checkpoint")
                self._launch(run.id, count_attempt=True)

    def _notice(self, run_id: str, message: str) -> None:
        with self.db.write() as session:
            self.db.append_event(session, run_id, "notice", {"message": message})

    def _reap(self) -> None:
        with self._lock:
            finished = [(run_id, h) for run_id, h in self._workers.items() if h.exited()]
            for run_id, _ in finished:
                del self._workers[run_id]
        for run_id, handle in finished:
            with self.db.write() as session:
                run = session.get(Run, run_id)
                if run is None or run.status not in ACTIVE or run.worker_pid not in (None, handle.pid):
                    continue  # it recorded its end, was cancelled, or another attempt owns it now
                tail = log_tail(self.settings.logs_dir / f"{run_id}.log")
                message = f"the run's worker process exited with status {handle.exit_status()} without recording an end"
                message += f"; its log ends: {tail}" if tail else ""
                self.db.transition(session, run_id, FAILED, ACTIVE, message, error=message, finished_at=time.time())

    def _queue_length(self) -> int:
        with self.db.read() as session:
            return session.scalar(select(func.count()).select_from(Run).where(Run.status == QUEUED)) or 0

    def _start_queued(self) -> None:
        while not self._stopping.is_set():
            with self.db.write() as session:
                if self.db.count_active(session) >= self.settings.max_concurrent:
                    return
                run = session.scalars(select(Run).where(Run.status == QUEUED).order_by(Run.queued_at, Run.id).limit(1)).first()
                if run is None:
                    return
                self.db.transition(
                    session, run.id, RUNNING, (QUEUED,), None, started_at=time.time(), worker_pid=None, heartbeat_at=time.time()
                )
            self._launch(run.id, count_attempt=True)

    def _launch(self, run_id: str, count_attempt: bool) -> None:
        """Hand the run to the standby worker, or start a worker for it; record the pid."""
        process = None
        standby = self._standby
        ready = standby_ready_path(self.settings.home, standby.pid) if standby is not None else None
        if standby is not None and ready is not None and ready.exists() and standby.poll() is None and standby.stdin is not None:
            # Only a ready standby: one still starting would make the run wait longer than a fresh worker.
            self._standby = None
            ready.unlink(missing_ok=True)
            try:
                standby.stdin.write(f"{run_id}\n".encode())
                standby.stdin.close()
                process = standby
            except OSError:
                process = None
        if process is None:
            args = ["--home", str(self.settings.home), "--run-id", run_id]
            args += ["--ray-address", self.ray_address] if self.ray_address else []
            process = spawn_python(WORKER_MODULE, args, self.settings.logs_dir / f"{run_id}.log", self.worker_env)
        self._last_launch = time.monotonic()
        with self._lock:
            self._workers[run_id] = WorkerHandle(process.pid, process)
        with self.db.write() as session:
            values = {"worker_pid": process.pid, "attempts": Run.attempts + (1 if count_attempt else 0)}
            moved = rows_changed(session.execute(update(Run).where(Run.id == run_id, Run.status.in_(ACTIVE)).values(**values)))
        if not moved:  # cancelled while it was being started
            kill_group(process.pid)

    def _keep_standby(self) -> None:
        if not self.settings.standby_worker or self._stopping.is_set():
            return
        if self._standby is None and (time.monotonic() - self._last_launch < STANDBY_QUIET_SECONDS or self._queue_length() > 0):
            return  # in a burst of runs a standby starting up would only compete with them for the cores
        if self._standby is not None:
            if self._standby.poll() is None:
                return
            self._standby_failures += 1  # it died waiting: Ray unreachable, say; retry a few times, then run without
            standby_ready_path(self.settings.home, self._standby.pid).unlink(missing_ok=True)
            self._standby = None
        if self._standby_failures >= 3:
            return
        args = ["--home", str(self.settings.home)] + (["--ray-address", self.ray_address] if self.ray_address else [])
        log_path = self.settings.logs_dir / "standby.log"
        self._standby = spawn_python(WORKER_MODULE, args, log_path, self.worker_env, stdin=subprocess.PIPE)
