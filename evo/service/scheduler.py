"""The queue and the worker processes: at most ``max_concurrent`` runs at once, first in, first out.

A thread of the service. It starts (or adopts) the Ray instance, recovers the
runs a previous service left running, then, on every tick or wake-up:

* reaps workers that exited: one that ended without recording its run's end
  crashed, and the run is marked ``failed`` with the exit status and the tail
  of its log (the service itself keeps serving);
* starts the oldest queued runs while fewer than ``max_concurrent`` are
  running, each in a worker process (``evo.service.worker``) in its own session;
* keeps one standby worker ready (imports done, Ray joined) for the next run;
* fails hung runs: a run whose worker wrote no heartbeat for ``--worker-timeout``
  seconds (a deadlock, a stopped process, a Ray call that never returns) has its
  worker's process group killed and is marked ``failed`` with that reason. It
  is not resumed automatically, since what hung it would likely hang it again;
  a client resumes it from its last checkpoint (``evo resume ID``).

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
from evo.service.processes import command_line, has_option, kill_group, process_alive, python_env, spawn_python, terminate_group
from evo.service.ray_head import RayHead, adopt_or_start, cluster_auth_env
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


def worker_pid_path(home: Path, run_id: str) -> Path:
    """Where a worker records its pid once it has a run (a standby's command line does not name the run)."""
    return Path(home) / "logs" / f"{run_id}.pid"


def worker_is_ours(pid: int | None, home: Path, run_id: str) -> bool:
    """``pid`` is alive and is this home's worker executing ``run_id`` (a reused pid is not), before we re-attach or kill it.

    Its command line must name the worker module and ``--home home``, and the
    run: ``--run-id run_id``, or, for a standby handed the run on stdin, the
    pid the worker recorded in ``logs/<run_id>.pid``. Where /proc is missing
    (macOS) the pid being alive is all we can check.
    """
    if not pid or not process_alive(pid):
        return False
    argv = command_line(pid)
    if argv is None:
        return True
    if WORKER_MODULE not in argv or not has_option(argv, "--home", str(home)):
        return False
    if "--run-id" in argv:
        return has_option(argv, "--run-id", run_id)
    try:
        return worker_pid_path(home, run_id).read_text().strip() == str(pid)
    except OSError:
        return False


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
        if pid and worker_is_ours(pid, self.settings.home, run_id):
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
                self._fail_hung()
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
            auth = cluster_auth_env()
            self.worker_env = python_env(auth)
            mode = self.worker_env.get("RAY_AUTH_MODE", "disabled")
            log.info("joining the Ray cluster at %s (auth mode %s%s)", self.ray_address, mode, " from a token found" if auth else "")
        self.worker_env["EVO_SERVICE_DB"] = settings.database_url
        self.worker_env["EVO_HEARTBEAT_SECONDS"] = str(settings.heartbeat_seconds)
        self._recover()

    def _recover(self) -> None:
        with self.db.read() as session:
            active = list(session.scalars(select(Run).where(Run.status.in_(ACTIVE), Run.kind == "run").order_by(Run.queued_at)))
        for run in active:
            if run.worker_pid is not None and worker_is_ours(run.worker_pid, self.settings.home, run.id):
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
        for index, (run_id, handle) in enumerate(finished):
            try:
                self._record_exit(run_id, handle)
            except Exception:
                with self._lock:  # the database refused (busy): look at these again at the next tick
                    self._workers.update({r: h for r, h in finished[index:] if r not in self._workers})
                raise

    def _record_exit(self, run_id: str, handle: WorkerHandle) -> None:
        """Mark the run of a worker that exited without recording an end as failed, with its exit status and log tail."""
        with self.db.write() as session:
            run = session.get(Run, run_id)
            if run is None or run.status not in ACTIVE or run.worker_pid not in (None, handle.pid):
                return  # it recorded its end, was cancelled, or another attempt owns it now
            tail = log_tail(self.settings.logs_dir / f"{run_id}.log")
            message = f"the run's worker process exited with status {handle.exit_status()} without recording an end"
            message += f"; its log ends: {tail}" if tail else ""
            self.db.transition(session, run_id, FAILED, ACTIVE, message, error=message, finished_at=time.time())

    def _fail_hung(self) -> None:
        """Kill the worker of every run whose heartbeat is older than the timeout, and mark the run failed."""
        timeout = self.settings.worker_timeout
        limit = time.time() - timeout
        with self._lock:
            watched = dict(self._workers)
        if not watched:
            return
        with self.db.read() as session:
            statement = select(Run.id, Run.heartbeat_at).where(Run.id.in_(list(watched)), Run.status.in_(ACTIVE), Run.heartbeat_at < limit)
            stale = list(session.execute(statement))
        for run_id, heartbeat_at in stale:
            handle = watched[run_id]
            if worker_is_ours(handle.pid, self.settings.home, run_id):
                kill_group(handle.pid)
            silent = time.time() - (heartbeat_at or 0.0)
            message = (
                f"the run's worker sent no heartbeat for {silent:.0f} s (--worker-timeout {timeout:g} s): it hung and was killed; "
                "resume the run to continue from its last checkpoint"
            )
            with self.db.write() as session:
                moved = self.db.transition(session, run_id, FAILED, ACTIVE, message, error=message, finished_at=time.time(), requested=None)
            with self._lock:
                if self._workers.get(run_id) is handle:
                    del self._workers[run_id]
            if moved:
                log.warning("run %s: %s", run_id, message)

    def _queue_length(self) -> int:
        with self.db.read() as session:
            return session.scalar(select(func.count()).select_from(Run).where(Run.status == QUEUED, Run.kind == "run")) or 0

    def _start_queued(self) -> None:
        while not self._stopping.is_set():
            with self.db.write() as session:
                if self.db.count_active(session) >= self.settings.max_concurrent:
                    return
                run = session.scalars(
                    select(Run).where(Run.status == QUEUED, Run.kind == "run").order_by(Run.queued_at, Run.id).limit(1)
                ).first()
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
            # The heartbeat clock starts at the launch: a recovered run's last heartbeat is from before the restart.
            values = {"worker_pid": process.pid, "attempts": Run.attempts + (1 if count_attempt else 0), "heartbeat_at": time.time()}
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
