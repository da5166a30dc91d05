"""Ask/tell studies: the strategy lives in the service, the fitness comes from clients anywhere.

A study is a row of ``runs`` with ``kind = "study"`` (so the list, the event
stream, the metrics, the files and the dashboard show it like a run) and its
current generation's genomes are rows of ``trials``. The strategy is built as
`evo run` builds it (same seed streams, same starting genome), so one client
telling the fitness `evo run` would compute gets the same numbers.

* ``ask(client_id, count)``: the client's own outstanding trials first (a
  client that lost its answer gets the same trials back), then trials asked
  longer than ``trial_timeout`` ago (a client that died: handed to another),
  then open ones. A new generation's trials are drawn when the last one ends.
* ``tell``: fitness of trial ids; the first answer counts, late or duplicate
  answers are ignored. When every trial of the generation is told, the
  strategy is told, a metrics row and an event are written, and the
  checkpoint (``<home>/studies/<id>/checkpoint``, the format of runs) is saved
  *before* the database moves on: after a crash anywhere the checkpoint is the
  truth, and a database one generation behind is brought up to it.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import HTTPException
from sqlalchemy import delete, select, update

from evo.config import ConfigError, parse_config
from evo.files import atomic_write_json, atomic_write_text, save_genome
from evo.run_state import RunState, load_checkpoint, save_checkpoint
from evo.seeding import STREAM_STRATEGY, generation_seed, individual_seeds, stream_seed
from evo.service.db import RUNNING, SUCCEEDED, Database, Run, Trial, json_safe
from evo.strategies import TOPOLOGY_STRATEGIES, Strategy, make_strategy
from evo.tasks.base import Shape

#: network sections a study can use: built from the input and output counts alone
STUDY_NETWORKS = ("mlp", "cnn", "neat")
#: a placeholder task section: the run config's parser needs one; a study's fitness is the clients'
_NO_TASK = {"type": "xor"}


def study_config(spec: dict[str, Any]):
    """The RunConfig a study's strategy (and network) is built from; ConfigError for a bad section."""
    data: dict[str, Any] = {
        "name": spec["name"],
        "seed": spec["seed"],
        "generations": spec["generations"],
        "init_scale": spec["init_scale"],
        "strategy": spec["strategy"],
        "task": _NO_TASK,
    }
    if spec.get("target_fitness") is not None:
        data["target_fitness"] = spec["target_fitness"]
    if spec.get("network") is not None:
        data["network"] = spec["network"]
    config = parse_config(data)
    if spec.get("network") is not None and config.network.type not in STUDY_NETWORKS:
        raise ConfigError(f"config error: network.type = {config.network.type!r}: a study allows {list(STUDY_NETWORKS)}")
    if spec.get("dimension") is not None and config.strategy.type in TOPOLOGY_STRATEGIES:
        raise ConfigError(
            f"config error: strategy.type = {config.strategy.type!r} evolves a network's structure; give inputs and outputs, not a dimension"
        )
    return config


class Engine:
    """A study's strategy and network in memory, rebuilt from the spec and the checkpoint."""

    def __init__(self, spec: dict[str, Any], checkpoint_dir: Path) -> None:
        from evo.build import build_network, build_strategy

        config = study_config(spec)
        self.spec = spec
        self.network: Any = None
        self.bounds: tuple[float, float] | None = None
        if spec.get("dimension") is not None:
            low, high = spec["bounds"]
            self.bounds = (float(low), float(high))
            params = config.strategy_params()
            init = np.full(int(spec["dimension"]), (low + high) / 2.0)
            self.strategy: Strategy = make_strategy(
                config.strategy.type,
                n_params=int(spec["dimension"]),
                population=config.strategy.population,
                seed=stream_seed(config.seed, STREAM_STRATEGY),
                init=init,
                **params,
            )
            self.description: dict[str, Any] | None = None
        else:
            shape = Shape(n_inputs=spec["inputs"], n_outputs=spec["outputs"], output_activation=spec.get("output_activation") or "identity")
            self.network = build_network(config, shape)
            self.strategy = build_strategy(config, self.network)
            self.description = self.network.describe()
        self.state = RunState()
        if (checkpoint_dir / "state.json").is_file():
            self.state, strategy_state = load_checkpoint(checkpoint_dir)
            self.strategy.load_state_dict(strategy_state)
        self.pending: np.ndarray | None = None

    def draw(self) -> np.ndarray:
        """The next generation's genomes (the same again after a restore, as the strategy promises)."""
        if self.pending is None:
            self.pending = self.strategy.ask()
        return self.pending

    def shown(self, genome: np.ndarray) -> np.ndarray:
        """The genome as a client sees it: clipped into the bounds of a vector study."""
        return np.clip(genome, *self.bounds) if self.bounds is not None else genome


class Studies:
    """Every study's engine and lock; the routes call :meth:`ask` and :meth:`tell`."""

    def __init__(self, db: Database, home: Path) -> None:
        self.db = db
        self.home = home
        self._engines: dict[str, Engine] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def folder(self, study_id: str) -> Path:
        """The study's directory: config, checkpoint, metrics, best genome, plot, summary."""
        return self.home / "studies" / study_id

    def lock(self, study_id: str) -> threading.Lock:
        """The lock that serialises a study's asks and tells."""
        with self._guard:
            return self._locks.setdefault(study_id, threading.Lock())

    def forget(self, study_id: str) -> None:
        """Drop the engine (the study was deleted, or its spec changed)."""
        self._engines.pop(study_id, None)

    def _row(self, study_id: str) -> Run:
        with self.db.read() as session:
            run = session.get(Run, study_id)
        if run is None or run.kind != "study":
            raise HTTPException(404, f"no study with id {study_id!r}")
        return run

    def engine(self, run: Run) -> Engine:
        """The study's engine, loaded (and the database caught up with its checkpoint) on first use."""
        engine = self._engines.get(run.id)
        if engine is None or engine.spec != run.config:
            engine = Engine(run.config, self.folder(run.id) / "checkpoint")
            self._engines[run.id] = engine
            if engine.state.generation > run.generation:  # the last commit was lost after its checkpoint: redo it
                self._commit_generation(run.id, engine, engine.state.rows[-1], engine.state.stopped_by)
        return engine

    # -------------------------------------------------------------------- ask
    def ask(self, study_id: str, client_id: str, count: int) -> dict[str, Any]:
        """Up to ``count`` trials for ``client_id``: its own outstanding ones, then expired ones, then open ones."""
        with self.lock(study_id):
            run = self._row(study_id)
            if run.status != RUNNING:
                return self._answer(run, [], None, done=True)
            engine = self.engine(run)
            generation = run.generation + 1
            now = time.time()
            timeout = float(run.config["trial_timeout"])
            with self.db.write() as session:
                trials = list(session.scalars(select(Trial).where(Trial.study_id == study_id, Trial.generation == generation)))
                if not trials:
                    trials = self._new_generation(session, study_id, engine, generation, run.config["seed"])
                mine = [t for t in trials if t.status == "asked" and t.client_id == client_id]
                expired = [t for t in trials if t.status == "asked" and t.client_id != client_id and (t.asked_at or 0) + timeout <= now]
                fresh = [t for t in trials if t.status == "open"]
                chosen = (sorted(mine, key=lambda t: t.index) + sorted(expired, key=lambda t: t.asked_at or 0) + fresh)[:count]
                for trial in chosen:
                    if trial.client_id != client_id or trial.status != "asked":
                        trial.issued += 1
                    trial.status, trial.client_id, trial.asked_at = "asked", client_id, now
                answer = [self._trial(engine, t, run.config["seed"]) for t in chosen]
                waiting = [t.asked_at for t in trials if t.status == "asked" and t not in chosen]
            retry = min((a + timeout - now for a in waiting if a is not None), default=0.5)
            return self._answer(run, answer, max(0.05, min(retry, 1.0)), done=False)

    def _new_generation(self, session, study_id: str, engine: Engine, generation: int, seed: int) -> list[Trial]:
        genomes = engine.draw()
        trials = [
            Trial(
                id=f"{study_id}.g{generation}.{i}",
                study_id=study_id,
                generation=generation,
                index=i,
                genome=[float(v) for v in engine.shown(g)],
                status="open",
                issued=0,
            )
            for i, g in enumerate(genomes)
        ]
        session.add_all(trials)
        session.flush()
        return trials

    @staticmethod
    def _trial(engine: Engine, trial: Trial, seed: int) -> dict[str, Any]:
        return {
            "id": trial.id,
            "generation": trial.generation,
            "index": trial.index,
            "genome": trial.genome,
            "network": engine.description,
            # What `evo run`'s evaluators give the task for this individual: a client's stochastic fitness can use them.
            "seed": int(individual_seeds(seed, trial.generation, trial.index + 1)[trial.index]),
            "generation_seed": generation_seed(seed, trial.generation),
        }

    @staticmethod
    def _answer(run: Run, trials: list[dict[str, Any]], retry_after: float | None, done: bool) -> dict[str, Any]:
        return {
            "study_id": run.id,
            "status": run.status,
            "generation": run.generation,
            "trials": trials,
            "done": done,
            "retry_after": None if done or trials else retry_after,
        }

    # ------------------------------------------------------------------- tell
    def tell(self, study_id: str, results: list[tuple[str, float | None]]) -> dict[str, Any]:
        """Record each trial's fitness (None: the evaluation failed); advance the generation when all are told."""
        with self.lock(study_id):
            run = self._row(study_id)
            if run.status != RUNNING:
                raise HTTPException(409, f"study {study_id!r} is {run.status}: it takes no fitness (resume it first)")
            engine = self.engine(run)
            generation = run.generation + 1
            accepted, ignored = 0, []
            with self.db.write() as session:
                for trial_id, fitness in results:
                    trial = session.get(Trial, trial_id)
                    if trial is None or trial.study_id != study_id or trial.generation != generation:
                        ignored.append(f"{trial_id}: not a trial of generation {generation} of this study")
                    elif trial.status == "told":
                        ignored.append(f"{trial_id}: already told")
                    else:
                        trial.status, trial.fitness = "told", fitness
                        accepted += 1
                trials = sorted(
                    session.scalars(select(Trial).where(Trial.study_id == study_id, Trial.generation == generation)), key=lambda t: t.index
                )
            if trials and all(t.status == "told" for t in trials):
                told = np.array([math.nan if t.fitness is None else t.fitness for t in trials], dtype=np.float64)
                self._advance(run, engine, told)
                run = self._row(study_id)
            return {"accepted": accepted, "ignored": ignored, "generation": run.generation, "status": run.status}

    def _advance(self, run: Run, engine: Engine, fitness: np.ndarray) -> None:
        """Tell the strategy, checkpoint, then commit the generation (and the end, when a stopping rule holds)."""
        genomes = engine.draw()
        engine.strategy.tell(genomes, fitness)
        engine.pending = None
        state = engine.state
        state.generation += 1
        finite = fitness[np.isfinite(fitness)]
        gen_best = float(finite.max()) if finite.size else -math.inf
        if gen_best > state.best_seen_fitness:
            state.best_seen_fitness = gen_best
            state.best_seen = np.array(engine.shown(genomes[int(np.argmax(fitness))]), dtype=np.float64)
        state.evaluations += len(fitness)
        failures = int(len(fitness) - finite.size)
        state.failures += failures
        state.wall_seconds = time.time() - run.created_at
        row = {
            "generation": state.generation,
            "evaluations": state.evaluations,
            "best": gen_best if finite.size else None,
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std()) if finite.size else None,
            "best_so_far": state.best_seen_fitness if math.isfinite(state.best_seen_fitness) else None,
            "failures": failures,
            "wall_seconds": state.wall_seconds,
        }
        state.rows.append(row)
        target = run.config.get("target_fitness")
        state.stopped_by = None
        if target is not None and gen_best >= target:
            state.stopped_by = "target_fitness"
        elif state.generation >= int(run.config["generations"]):
            state.stopped_by = "generations"
        (self.folder(run.id) / "checkpoint").mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.folder(run.id) / "checkpoint", state, engine.strategy.state_dict())
        self._commit_generation(run.id, engine, row, state.stopped_by)

    def _commit_generation(self, study_id: str, engine: Engine, row: dict[str, Any], stopped_by: str | None) -> None:
        state = engine.state
        summary = self._finish(study_id, engine) if stopped_by else None
        with self.db.write() as session:
            session.execute(update(Run).where(Run.id == study_id).values(generation=state.generation, latest_metrics=json_safe(row)))
            session.execute(delete(Trial).where(Trial.study_id == study_id, Trial.generation <= state.generation))
            self.db.append_event(session, study_id, "generation", row, generation=state.generation)
            if summary is not None:
                self.db.append_event(session, study_id, "summary", summary)
                self.db.transition(session, study_id, SUCCEEDED, (RUNNING,), None, summary=json_safe(summary), finished_at=time.time())

    def _finish(self, study_id: str, engine: Engine) -> dict[str, Any]:
        """Write the study's results (metrics, best genome, plot, summary) and return the summary."""
        from evo.plots import plot_fitness_curve
        from evo.run import METRIC_CELLS

        folder, state, spec = self.folder(study_id), engine.state, engine.spec
        # Written whole at the end (the rows are in the checkpoint meanwhile), in the format of a run's metrics.csv.
        lines = [",".join(METRIC_CELLS)] + [",".join(METRIC_CELLS[k](r.get(k)) for k in METRIC_CELLS) for r in state.rows]
        atomic_write_text(folder / "metrics.csv", "\n".join(lines) + "\n")
        strategy_genome, _ = engine.strategy.best()
        best = state.best_seen if state.best_seen is not None else engine.shown(strategy_genome)
        save_genome(folder / "best_genome", best, {"network": engine.description, "source": "best_individual"})
        if state.rows:
            plot_fitness_curve(state.rows, folder / "fitness.png", f"{spec['name']}: {spec['strategy']['type']} (ask/tell)")
        summary = {
            "name": spec["name"],
            "seed": spec["seed"],
            "generations": state.generation,
            "evaluations": state.evaluations,
            "wall_seconds": state.wall_seconds,
            "best_fitness": state.best_seen_fitness,
            "failures": state.failures,
            "stopped_by": state.stopped_by,
            "best_genome_source": "best_individual",
            "best_genome": [float(v) for v in best],
            "strategy_genome": [float(v) for v in engine.shown(strategy_genome)],
            "n_params": int(engine.strategy.n_params),
            "strategy": spec["strategy"],
            "network": engine.description,
        }
        atomic_write_json(folder / "summary.json", json_safe(summary))
        return summary

    def write_spec(self, study_id: str, spec: dict[str, Any]) -> None:
        """The study's folder and its spec (what created it), before its first trial."""
        folder = self.folder(study_id)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "study.json", spec)
