"""``python -m evo.service.worker``: executes one run of the service, reporting into its database.

The scheduler starts it in its own session (a SIGKILLed service leaves it
running) and it joins the service's Ray instance, so the run's fitness is
evaluated there. It runs the ordinary :class:`~evo.run.EvolutionRun`, in
``<home>/runs/<id>``, with a :class:`ServiceReporter` that writes each
generation's metrics row as an event, keeps a heartbeat, and reads between
generations whether a client asked to stop. The run's final status, summary
or error is the last thing it writes. A write the database refuses as busy
(another process held SQLite's lock past the busy timeout) is retried with
backoff, not taken for the run's failure.

Started without ``--run-id`` it is a *standby*: imports done and Ray joined,
it waits for a run id on stdin (the scheduler hands it the next run, which
then starts without paying a second of imports) and exits at end of input,
so a standby never outlives its service.

A run directory that has a checkpoint is resumed from it: after a stop, or
after the worker (or the machine) died; the determinism of the run loop makes
the result identical to an uninterrupted run. Generations already reported
before a crash are computed again identically and not reported twice.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import update
from sqlalchemy.orm import Session

from evo.config import ConfigError, parse_config, read_toml
from evo.files import atomic_write_text
from evo.reporters import Reporter
from evo.run_state import RunInfo, RunState
from evo.service.db import ACTIVE, FAILED, STOPPED, SUCCEEDED, Database, Run, json_safe
from evo.service.settings import standby_ready_path

#: the scheduler sets it from --worker-timeout (EVO_HEARTBEAT_SECONDS)
HEARTBEAT_SECONDS = float(os.environ.get("EVO_HEARTBEAT_SECONDS") or 5.0)


class RunCancelled(Exception):
    """The run is no longer active in the database (cancelled): end without writing anything more."""


class EveryEvaluationFailed(RuntimeError):
    """A whole generation failed: the fitness is broken, not a genome; the run fails with the first error."""


class ServiceReporter(Reporter):
    """Writes a run's events into the service's database and relays a client's stop request to the loop."""

    def __init__(self, db: Database, run_id: str, reported_generation: int) -> None:
        self.db = db
        self.run_id = run_id
        #: generations up to this one are already in the database (reported before a crash)
        self.reported_generation = reported_generation
        self._evaluations_before = 0
        self._stop = False

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """Note where the run starts; a resumed run says so in its stream."""
        self._evaluations_before = state.evaluations
        if run.resumed:
            self._event("notice", {"message": f"resumed from the checkpoint at generation {state.generation}"})

    def on_failures(self, state: RunState, generation: int, count: int, errors: list[str]) -> None:
        """Report failed evaluations; every evaluation of a generation failing ends the run as failed."""
        if generation > self.reported_generation:
            self._event("failures", {"generation": generation, "count": count, "errors": errors[:5]}, generation)
        evaluated = state.evaluations - self._evaluations_before
        if count >= evaluated > 0:
            reason = errors[0] if errors else "non-finite fitness"
            raise EveryEvaluationFailed(f"every evaluation of generation {generation} failed ({count} of {evaluated}): {reason}")

    def on_generation(self, state: RunState, row: dict[str, Any]) -> None:
        """One event per generation (never twice for the same generation); read the stop flag on the way."""
        self._evaluations_before = state.evaluations
        generation = row["generation"]

        def write(session: Session) -> Any:
            values: dict[str, Any] = {"heartbeat_at": time.time()}
            if generation > self.reported_generation:
                if self.db.append_event(session, self.run_id, "generation", row, generation, only_if=ACTIVE) is None:
                    raise RunCancelled
                values.update(generation=generation, latest_metrics=json_safe(row))
            statement = update(Run).where(Run.id == self.run_id, Run.status.in_(ACTIVE)).values(**values).returning(Run.requested)
            return session.execute(statement).first()

        requested = self.db.write_retrying(write, f"generation {generation}")
        if requested is None:
            raise RunCancelled
        self.reported_generation = max(self.reported_generation, generation)
        self._stop = requested[0] == "stop"

    def should_stop(self, state: RunState) -> bool:
        """True once a client asked to stop (read with the generation's event)."""
        return self._stop

    def _event(self, kind: str, data: dict[str, Any], generation: int | None = None) -> None:
        def write(session: Session) -> int | None:
            return self.db.append_event(session, self.run_id, kind, data, generation, only_if=ACTIVE)

        if self.db.write_retrying(write, f"a {kind} event") is None:
            raise RunCancelled


def _heartbeat(db: Database, run_id: str, done: threading.Event) -> None:
    while not done.wait(HEARTBEAT_SECONDS):
        try:
            with db.write() as session:
                session.execute(update(Run).where(Run.id == run_id, Run.status.in_(ACTIVE)).values(heartbeat_at=time.time()))
        except Exception:  # noqa: BLE001 - a missed heartbeat is not worth ending the run for
            pass


def _evolution_run(run: Run, ray_address: str | None, reporter: ServiceReporter):
    """The EvolutionRun for this attempt: resumed from the run directory's checkpoint if it has one, else from scratch."""
    from evo.run import EvolutionRun

    config = dict(run.config)
    evaluator = {**config.get("evaluator", {}), "type": "ray"}  # the service's runs evaluate on its Ray instance
    if ray_address:
        evaluator["address"] = ray_address
    config["evaluator"] = evaluator
    run_dir = Path(run.run_dir)
    if (run_dir / "checkpoint" / "state.json").is_file():
        # The Ray address may have changed since (a restarted service), and resume may have changed the workers.
        on_disk = read_toml(run_dir / "config.toml")
        on_disk["evaluator"] = evaluator
        atomic_write_text(run_dir / "config.toml", tomli_w.dumps(on_disk))
        return EvolutionRun.resume(run_dir, generations=int(config["generations"]), progress=False, reporters=[reporter])
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an attempt that ended before its first checkpoint: start again
    return EvolutionRun(parse_config(config), run_dir=run_dir, progress=False, reporters=[reporter])


def execute(db: Database, run_id: str, ray_address: str | None) -> int:
    """Run ``run_id`` to its end and record the end; returns the process exit status."""

    def claim(session: Session) -> Run | None:
        run = session.get(Run, run_id)
        if run is not None and run.status in ACTIVE:
            run.worker_pid, run.heartbeat_at = os.getpid(), time.time()
        return run

    run = db.write_retrying(claim, "the worker's pid")
    if run is None or run.status not in ACTIVE:
        return 0
    done = threading.Event()
    threading.Thread(target=_heartbeat, args=(db, run_id, done), daemon=True).start()
    reporter = ServiceReporter(db, run_id, run.generation)
    try:
        result = _evolution_run(run, ray_address, reporter).run()
    except RunCancelled:
        return 0
    except Exception as exc:  # noqa: BLE001 - any error of the run is the run's failure, with its message
        message = str(exc) if isinstance(exc, (ConfigError, EveryEvaluationFailed)) else f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        db.write_retrying(
            lambda session: db.transition(session, run_id, FAILED, ACTIVE, message, error=message, finished_at=time.time(), requested=None),
            "the run's failure",
        )
        return 1
    finally:
        done.set()
    summary = json_safe(result.summary)
    final = STOPPED if summary.get("stopped_by") == "stopped" else SUCCEEDED

    def finish(session: Session) -> None:
        if db.append_event(session, run_id, "summary", summary, only_if=ACTIVE) is not None:
            db.transition(session, run_id, final, ACTIVE, None, summary=summary, finished_at=time.time(), requested=None)

    db.write_retrying(finish, "the run's end")
    return 0


def _redirect_output(log_path: Path) -> None:
    """Send this process's stdout and stderr to ``log_path`` (a standby learns its run's log only now)."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _warm_ray_workers() -> None:
    """Start this driver's Ray worker processes and import the run's modules there, before a run arrives.

    Ray gives each driver its own worker processes; starting them is most of the
    time from a run's start to its first generation. Each warm-up task holds its
    worker briefly so that they land in separate processes.
    """
    import ray

    @ray.remote(num_cpus=1)
    def warm() -> None:
        import evo.build  # noqa: F401 - what a chunk's payload unpickles into
        import evo.evaluators  # noqa: F401

        time.sleep(0.2)

    count = max(1, min(int(ray.cluster_resources().get("CPU", 1)), 4))
    ray.get([warm.remote() for _ in range(count)])


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``--run-id ID`` runs it; without, wait on stdin for the run id (standby)."""
    parser = argparse.ArgumentParser(prog="evo.service.worker")
    parser.add_argument("--home", required=True, help="the service's home folder")
    parser.add_argument("--ray-address", help="the Ray instance to evaluate on")
    parser.add_argument("--run-id", help="the run to execute (omit: read it from stdin)")
    args = parser.parse_args(argv)
    db = Database(os.environ["EVO_SERVICE_DB"])  # not on the command line: a database URL may hold a password
    import evo.plots  # noqa: F401 - the imports a run needs, paid before the run is handed over
    import evo.run  # noqa: F401

    if args.ray_address:
        import ray

        ray.init(address=args.ray_address, logging_level=logging.ERROR)
        if args.run_id is None:
            _warm_ray_workers()
    run_id = args.run_id
    if run_id is None:
        standby_ready_path(Path(args.home), os.getpid()).touch()  # the scheduler hands over runs only to a ready standby
        run_id = sys.stdin.readline().strip()
        if not run_id:
            return 0  # the service went away before handing over a run
        _redirect_output(Path(args.home) / "logs" / f"{run_id}.log")
    # The service checks this before re-attaching to or killing this process (a standby's command line lacks the run id).
    atomic_write_text(Path(args.home) / "logs" / f"{run_id}.pid", f"{os.getpid()}\n")
    print(f"worker {os.getpid()}: run {run_id}", flush=True)
    return execute(db, run_id, args.ray_address)


if __name__ == "__main__":
    sys.exit(main())
