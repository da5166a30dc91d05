"""The run loop and its run directory.

Ours rather than DEAP's ``eaSimple``: everything the loop knows is one
:class:`~evo.reporters.RunState`, and everything that happens after a
generation (the metrics row, the validation row, the checkpoint, the progress
bar, the events log, a service's live stream) is a
:class:`~evo.reporters.Reporter` listening to it. A checkpoint holds the
whole state, and ``resume`` continues from it with results identical to an
uninterrupted run.

Run directory::

    config.toml        the resolved config
    metrics.csv        one row per generation
    validation.csv     one row per periodic validation (generation, val_score, figures)
    best_genome.npz    the chosen genome (``params``) + best_genome.json (architecture)
    fitness.png        fitness curve
    summary.json       headline figures, test figures included
    events.log         start, failed evaluations, end
    checkpoint/        state.json + state-<generation>.npz
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from evo.build import build_evaluator, build_network, build_strategy, build_task
from evo.config import ConfigError, RunConfig, load_config, parse_config, read_toml
from evo.files import (
    atomic_save_npz,
    atomic_write_json,
    atomic_write_text,
    open_run_dir,
    save_genome,
)
from evo.models import member_stem, model_stem, usable_network, write_model
from evo.reporters import (
    Checkpoint,
    Reporter,
    Reporters,
    RunInfo,
    RunState,
    TestTrace,
    ValidationCSV,
    finite_cell,
    load_checkpoint,
    read_metrics,
    run_dir_reporters,
    seconds_cell,
)
from evo.seeding import STREAM_TEST, stream_seed
from evo.strategies.base import MultiObjective
from evo.tasks.base import TrainsWeights
from networks.spec import CountsParameters, Decodable, GraphExportable, NetworkSpec

#: metrics.csv: each column and how its cells are written
METRIC_CELLS: dict[str, Callable[[Any], str]] = {
    "generation": str,
    "evaluations": str,
    "best": finite_cell,
    "mean": finite_cell,
    "std": finite_cell,
    "best_so_far": finite_cell,
    "failures": str,
    "wall_seconds": seconds_cell(3),
}
METRIC_COLUMNS = list(METRIC_CELLS)
_VALIDATION_STREAM = 6

__all__ = ["METRIC_COLUMNS", "EvolutionRun", "RunResult", "read_metrics", "run_evolution"]


@dataclass
class RunResult:
    """What a finished run leaves: its directory, headline figures and best genome."""

    run_dir: Path
    summary: dict[str, Any]
    best_genome: np.ndarray
    network: NetworkSpec
    metrics: list[dict[str, Any]]


class EvolutionRun:
    """One evolution run: built (and fully validated) in the constructor, executed by :meth:`run`.

    Nothing touches the disk until :meth:`run`; a bad config or a missing
    dataset raises :class:`~evo.config.ConfigError` here. ``reporters`` are
    heard after the built-in ones (metrics, validation, checkpoint, events,
    progress bar); :meth:`request_stop` ends the run cleanly from another thread.
    """

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | Path | None = None,
        progress: bool = True,
        trace_test: bool = False,
        reporters: Sequence[Reporter] = (),
    ) -> None:
        self.config = config
        self.progress = progress
        #: record the held-out figure of the current choice at every validation (for `evo compare` curves only;
        #: the trace never feeds back into selection)
        self.trace_test = trace_test
        self.test_trace: list[dict[str, Any]] = []
        self.reporters = list(reporters)
        self.task = build_task(config)
        self.network = build_network(config, self.task)
        self.strategy = build_strategy(config, self.network)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._checkpoint: tuple[RunState, dict[str, Any]] | None = None
        #: resumed without a checkpoint: the run starts again from generation 0 in its existing directory
        self._restart = False
        self._stop_requested = threading.Event()

    # ---------------------------------------------------------------- resume
    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        generations: int | None = None,
        progress: bool = True,
        reporters: Sequence[Reporter] = (),
        workers: int | None = None,
        ray_address: str | None = None,
    ) -> EvolutionRun:
        """Continue a run from its last checkpoint (optionally to more generations, on other workers or another cluster).

        A run killed before its first checkpoint starts again from generation
        0 in its own directory. Where fitness is evaluated never changes the
        results, so ``workers`` and ``ray_address`` may differ from the run's.
        """
        run_dir = Path(run_dir)
        if not (run_dir / "config.toml").is_file():
            raise ConfigError(f"config error: --resume {str(run_dir)!r}: not a run directory (no config.toml there)")
        if _run_kind(run_dir) != "evolution":
            raise ConfigError(f"config error: --resume {str(run_dir)!r}: a {_run_kind(run_dir)} directory; only evolution runs resume")
        from evo.config import apply_overrides

        data = apply_overrides(read_toml(run_dir / "config.toml"), generations=generations, workers=workers, ray_address=ray_address)
        run = cls(parse_config(data), run_dir=run_dir, progress=progress, reporters=reporters)
        if not (run_dir / "checkpoint" / "state.json").is_file():
            run._restart = True  # killed before its first checkpoint: nothing to continue, start again in place
            return run
        try:
            run._checkpoint = load_checkpoint(run_dir / "checkpoint")
        except (OSError, KeyError, ValueError) as exc:  # a half-copied or hand-edited checkpoint: say so, exit 2
            raise ConfigError(f"config error: --resume {str(run_dir)!r}: its checkpoint cannot be read ({exc})") from None
        return run

    def request_stop(self) -> None:
        """End the run after the generation under way (safe from any thread): checkpointed, resumable, ``stopped_by = "stopped"``."""
        self._stop_requested.set()

    # ------------------------------------------------------------- the loop
    def run(self) -> RunResult:
        """Evolve for the configured generations and write the run directory."""
        evaluator = build_evaluator(self.config)  # may start Ray: before any file is written
        try:
            return self._run(evaluator)
        finally:
            evaluator.close()
            self.task.close()

    def _run(self, evaluator) -> RunResult:
        cfg = self.config
        if self._checkpoint is None and self._restart:
            state, run_dir = RunState(), self.run_dir
            assert run_dir is not None
            atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg.to_dict()))
        elif self._checkpoint is None:
            state = RunState()
            run_dir = self.run_dir = open_run_dir(self.run_dir, cfg.out, cfg.name, tomli_w.dumps(cfg.to_dict()))
        else:
            state, strategy_state = self._checkpoint
            assert self.run_dir is not None  # a resumed run was given its directory
            run_dir = self.run_dir
            atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg.to_dict()))
            self.strategy.load_state_dict(strategy_state)
        info = RunInfo(run_dir, cfg, cfg.name, cfg.generations, "evolution", resumed=self._checkpoint is not None)
        reporters = Reporters(self._built_in_reporters(run_dir) + self.reporters)
        try:
            reporters.on_start(info, state)
            self._evolve(evaluator, state, reporters)
            result = self._finish(evaluator, state, run_dir)
            reporters.on_end(state, result.summary)
        finally:
            reporters.close()
        return result

    def _built_in_reporters(self, run_dir: Path) -> list[Reporter]:
        files = [ValidationCSV(run_dir / "validation.csv"), Checkpoint(run_dir / "checkpoint", self.strategy)]
        reporters = run_dir_reporters(run_dir, METRIC_CELLS, self.progress, files)
        if self.trace_test:
            test_seed = stream_seed(self.config.seed, STREAM_TEST)
            reporters.append(TestTrace(self.task, self.network, self._current_choice, test_seed, self.test_trace))
        return reporters

    def _evolve(self, evaluator, state: RunState, reporters: Reporters) -> None:
        """Generations until a stopping rule holds; the state and the reporters follow each one."""
        cfg = self.config
        val_seed = stream_seed(cfg.seed, _VALIDATION_STREAM)
        wall_offset, started = state.wall_seconds, time.perf_counter()
        state.stopped_by = None if state.generation < cfg.generations else "generations"
        while state.stopped_by is None:
            state.generation += 1
            genomes = self.strategy.ask()
            result = evaluator.evaluate(self.task, self.network, genomes, state.generation)
            self.strategy.tell(genomes, result.fitness)
            fitness = result.fitness
            state.evaluations += len(fitness)
            state.failures += result.failures
            if result.failures:
                reporters.on_failures(state, state.generation, result.failures, list(result.errors))
            finite = fitness[np.isfinite(fitness)]
            gen_best = float(finite.max()) if finite.size else -math.inf
            if gen_best > state.best_seen_fitness:
                state.best_seen_fitness = gen_best
                state.best_seen = np.array(genomes[int(np.argmax(fitness))], dtype=np.float64)
            state.wall_seconds = wall_offset + time.perf_counter() - started
            row = {
                "generation": state.generation,
                "evaluations": state.evaluations,
                "best": gen_best if finite.size else None,
                "mean": float(finite.mean()) if finite.size else None,
                "std": float(finite.std()) if finite.size else None,
                "best_so_far": state.best_seen_fitness if math.isfinite(state.best_seen_fitness) else None,
                "failures": result.failures,
                "wall_seconds": state.wall_seconds,
            }
            state.rows.append(row)
            reporters.on_generation(state, row)
            state.stopped_by = self._stop_reason(state, gen_best, reporters)
            periodic = state.generation % cfg.validate_every == 0
            if periodic:
                self._validate(state, val_seed, reporters)
            if state.generation % cfg.checkpoint_every == 0 or state.stopped_by:
                reporters.on_checkpoint(state)
            if state.stopped_by and not periodic:
                # A closing look at the final choice, kept out of the checkpoint: a resumed run goes on as if never stopped.
                self._validate(state, val_seed, reporters)
        state.wall_seconds = wall_offset + time.perf_counter() - started

    def _stop_reason(self, state: RunState, gen_best: float, reporters: Reporters) -> str | None:
        """Why the loop ends after this generation, or None to go on."""
        cfg = self.config
        if cfg.target_fitness is not None and gen_best >= cfg.target_fitness:
            return "target_fitness"
        if cfg.max_seconds is not None and state.wall_seconds >= cfg.max_seconds:
            return "max_seconds"
        if reporters.should_stop(state) or self._stop_requested.is_set():
            return "stopped"
        return "generations" if state.generation >= cfg.generations else None

    def _validate(self, state: RunState, val_seed: int, reporters: Reporters) -> None:
        """Validate the strategy's choice; keep it as the selected genome if it beats the last one."""
        genome, _ = self.strategy.best()
        figures = self.task.validate(self.network, genome, val_seed)
        score = figures.get("val_score") if figures else None
        if score is not None and score > state.selected_score:
            state.selected_score, state.selected = score, np.array(genome, dtype=np.float64)
        row = {"generation": state.generation, "val_score": score, **_numbers({k: v for k, v in figures.items() if k != "val_score"})}
        state.validations.append(row)
        reporters.on_validation(state, row)

    def _current_choice(self, state: RunState) -> np.ndarray:
        """The genome the run would report now: the selected one, else the best seen, else the strategy's."""
        if state.selected is not None:
            return state.selected
        return state.best_seen if state.best_seen is not None else self.strategy.best()[0]

    # ------------------------------------------------------------ the results
    def _finish(self, evaluator, state: RunState, run_dir: Path) -> RunResult:
        """Choose the genome, test it, write the results and the summary."""
        cfg = self.config
        chosen, source, val_figures = self._choose_best(state, stream_seed(cfg.seed, _VALIDATION_STREAM))
        test_seed = stream_seed(cfg.seed, STREAM_TEST)
        test_figures = self.task.test(self.network, chosen, test_seed)
        self._save_best(run_dir, chosen, source, state.best_seen_fitness, test_seed, test_figures)
        pareto = self._write_pareto_front(run_dir)
        if state.rows:
            from evo.plots import fitness_axis_label, plot_fitness_curve

            title = f"{cfg.name}: {cfg.strategy.type} on {self.task.name}"
            plot_fitness_curve(state.rows, run_dir / "fitness.png", title, fitness_axis_label(self.task.describe()))
        summary = {
            "name": cfg.name,
            "seed": cfg.seed,
            "generations": state.generation,
            "evaluations": state.evaluations,
            "wall_seconds": state.wall_seconds,
            "evaluations_per_second": state.evaluations / max(state.wall_seconds, 1e-9),
            "best_fitness": state.best_seen_fitness,
            "failures": state.failures,
            "stopped_by": state.stopped_by,
            "best_genome_source": source,
            "sample_forward_passes": state.evaluations * self.task.samples_per_evaluation(),
            **parameter_counts(self.network, chosen),
            "strategy": {"type": cfg.strategy.type, "population": cfg.strategy.population, **cfg.strategy_params()},
            "network": self.network.describe(),
            "task": self.task.describe(),
            "evaluator": evaluator.describe(),
            **val_figures,
            **test_figures,
        }
        if pareto:
            summary["pareto_front"] = pareto
        atomic_write_json(run_dir / "summary.json", summary)
        return RunResult(run_dir, summary, chosen, self.network, state.rows)

    def _save_best(self, run_dir: Path, chosen: np.ndarray, source: str, best_fitness: float, test_seed: int, figures: dict) -> None:
        """The chosen genome, the model it stands for, and what each declared capability adds: decoded architecture, trained weights, graph."""
        described = {"network": self.network.describe(), "task": self.task.describe(), "source": source, "best_fitness": best_fitness}
        if isinstance(self.network, Decodable):  # a searched architecture: what the genome decodes to
            described["architecture"] = self.network.decode_description(chosen)
        save_genome(run_dir / "best_genome", chosen, described)
        spec, params = usable_network(self.task, self.network, chosen, test_seed)
        if isinstance(self.task, TrainsWeights):  # weights trained inside the fitness: keep the trained network too
            save_genome(
                run_dir / "best_trained",
                params,
                {"network": spec.describe(), "source": "the genome's network as trained inside the fitness"},
            )
        what = f"evolution ({self.config.strategy.type}): {source.replace('_', ' ')}"
        write_model(model_stem(run_dir), self.task, spec, params, what, figures)
        if isinstance(self.network, GraphExportable):  # a graph genome: nodes and connections as JSON, and a drawing
            self.network.save_graph(chosen, run_dir / "best_genome_graph.json")
            self.network.draw(chosen, run_dir / "best_genome_graph.png", title=f"{self.config.name}: best genome")

    def _write_pareto_front(self, run_dir: Path) -> list[dict[str, Any]]:
        """Multi-objective runs: the front (fitness against size) with each member's test figures, as JSON and a plot."""
        front = self.strategy.pareto_front() if isinstance(self.strategy, MultiObjective) else []
        if not front:
            return []
        test_seed = stream_seed(self.config.seed, STREAM_TEST)
        rows = []
        for index, member in enumerate(front):
            figures = self.task.test(self.network, member["genome"], test_seed)
            rows.append(
                {k: v for k, v in member.items() if k != "genome"} | {k: v for k, v in figures.items() if isinstance(v, (int, float))}
            )
            spec, params = usable_network(self.task, self.network, member["genome"], test_seed)
            write_model(member_stem(run_dir, index), self.task, spec, params, f"Pareto-front member {index}", figures)
        atomic_save_npz(run_dir / "pareto_front.npz", {"genomes": np.stack([m["genome"] for m in front])})
        atomic_write_json(run_dir / "pareto_front.json", rows)
        from evo.plots import SIZE_LABELS, fitness_axis_label, plot_pareto_front

        size_label = SIZE_LABELS.get(self.network.describe().get("type", ""), "size")
        title = f"{self.config.name}: Pareto front of fitness against size"
        plot_pareto_front(rows, run_dir / "pareto_front.png", title, fitness_axis_label(self.task.describe()), size_label)
        return rows

    def _choose_best(self, state: RunState, val_seed: int) -> tuple[np.ndarray, str, dict[str, Any]]:
        """Pick the genome to report: the better on validation of the strategy's choice and the best individual."""
        candidates = [
            (source, g) for source, g in (("strategy_best", state.selected), ("best_individual", state.best_seen)) if g is not None
        ]
        if not candidates:
            return self.strategy.best()[0], "strategy_best", {}
        scored = []
        for source, genome in candidates:
            figures = self.task.validate(self.network, genome, val_seed)
            scored.append((figures.get("val_score", -math.inf) if figures else -math.inf, source, genome, figures))
        # Ties (or no validation at all) go to the first candidate: the strategy's own choice.
        _, source, genome, figures = max(scored, key=lambda item: item[0])
        return genome, source, {k: v for k, v in figures.items() if k != "val_score"}


def parameter_counts(network: NetworkSpec, params: np.ndarray) -> dict[str, int]:
    """``n_params``: what the network really uses (a padded genome counts its used slots), and the genome's length when it differs."""
    if not isinstance(network, CountsParameters):
        return {"n_params": int(network.n_params)}
    return {"n_params": network.used_params(params), "genome_length": int(network.n_params)}


def _run_kind(run_dir: Path) -> str:
    """``"evolution"``, ``"training"`` or ``"comparison"``, from the files a directory holds."""
    if (run_dir / "compare.json").is_file():
        return "comparison"
    status = run_dir / "status.json"
    if status.is_file():
        import json

        return "evolution" if json.loads(status.read_text()).get("kind", "evolution") == "evolution" else "training"
    summary = run_dir / "summary.json"
    if summary.is_file():
        import json

        return "training" if "method" in json.loads(summary.read_text()) else "evolution"
    return "evolution"


def _numbers(figures: dict[str, Any]) -> dict[str, int | float]:
    """The numeric figures (a validation.csv row holds numbers only), as plain Python numbers."""
    out: dict[str, int | float] = {}
    for key, value in figures.items():
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, (float, np.floating)):
            out[key] = float(value)
    return out


def run_evolution(config: RunConfig | str | Path, progress: bool = False, run_dir: str | Path | None = None, **overrides: Any) -> RunResult:
    """Run evolution from a config object or a TOML path, in one call (for notebooks)."""
    if not isinstance(config, RunConfig):
        config = load_config(config, **overrides)
    elif overrides:
        from evo.config import apply_overrides

        config = parse_config(apply_overrides(config.to_dict(), **overrides))
    return EvolutionRun(config, run_dir=run_dir, progress=progress).run()
