"""The run loop and its run directory.

Ours rather than DEAP's ``eaSimple``: after every generation we write a
metrics row, tick the progress bar and, every ``checkpoint_every``
generations, an atomic checkpoint from which ``resume`` continues with
results identical to an uninterrupted run.

Run directory::

    config.toml        the resolved config
    metrics.csv        one row per generation
    best_genome.npz    the chosen genome (``params``) + best_genome.json (architecture)
    fitness.png        fitness curve
    summary.json       headline figures, test figures included
    events.log         failed evaluations and other notices
    checkpoint/        state.json + strategy-<generation>.npz
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from evo.build import build_evaluator, build_network, build_strategy, build_task
from evo.config import ConfigError, RunConfig, load_config, parse_config, read_toml
from evo.files import atomic_save_npz, atomic_write_json, atomic_write_text, load_npz, open_run_dir
from evo.seeding import STREAM_TEST, stream_seed

METRIC_COLUMNS = ["generation", "evaluations", "best", "mean", "std", "best_so_far", "failures", "wall_seconds"]
_VALIDATION_STREAM = 6


@dataclass
class RunResult:
    """What a finished run leaves: its directory, headline figures and best genome."""

    run_dir: Path
    summary: dict[str, Any]
    best_genome: np.ndarray
    network: Any
    metrics: list[dict[str, Any]]


def _fmt(value: float) -> str:
    return repr(float(value)) if value is not None and math.isfinite(value) else ""


class EvolutionRun:
    """One evolution run: built (and fully validated) in the constructor, executed by :meth:`run`.

    Nothing touches the disk until :meth:`run`; a bad config or a missing
    dataset raises :class:`~evo.config.ConfigError` here.
    """

    def __init__(self, config: RunConfig, run_dir: str | Path | None = None, progress: bool = True, trace_test: bool = False) -> None:
        self.config = config
        self.progress = progress
        #: record the held-out figure of the current choice at every validation (for `evo compare` curves only;
        #: the trace never feeds back into selection)
        self.trace_test = trace_test
        self.test_trace: list[dict[str, Any]] = []
        self.task = build_task(config)
        self.network = build_network(config, self.task)
        self.strategy = build_strategy(config, self.network)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._resume_state: dict[str, Any] | None = None

    # ---------------------------------------------------------------- resume
    @classmethod
    def resume(cls, run_dir: str | Path, generations: int | None = None, progress: bool = True) -> "EvolutionRun":
        """Continue a run from its last checkpoint (optionally to more generations)."""
        run_dir = Path(run_dir)
        state_path = run_dir / "checkpoint" / "state.json"
        if not state_path.is_file():
            raise ConfigError(f"config error: --resume {str(run_dir)!r}: no checkpoint/state.json there")
        data = read_toml(run_dir / "config.toml")
        if generations is not None:
            data["generations"] = generations
        run = cls(parse_config(data), run_dir=run_dir, progress=progress)
        run._resume_state = json.loads(state_path.read_text())
        return run

    # ------------------------------------------------------------- the loop
    def run(self) -> RunResult:
        """Evolve for the configured generations and write the run directory."""
        cfg = self.config
        evaluator = build_evaluator(cfg)  # may start Ray: before any file is written
        try:
            return self._run(evaluator)
        finally:
            evaluator.close()
            self.task.close()

    def _run(self, evaluator) -> RunResult:
        cfg = self.config
        state = self._resume_state
        if state is None:
            run_dir = self.run_dir = open_run_dir(self.run_dir, cfg.out, cfg.name, tomli_w.dumps(cfg.to_dict()))
            (run_dir / "checkpoint").mkdir()
            with open(run_dir / "metrics.csv", "w", newline="") as fh:
                csv.writer(fh).writerow(METRIC_COLUMNS)
            generation, evaluations, failures_total, wall_offset = 0, 0, 0, 0.0
            best_seen_fitness, best_seen = -math.inf, None
            selected_score, selected = -math.inf, None
            rows: list[dict[str, Any]] = []
        else:
            run_dir = self.run_dir
            assert run_dir is not None
            atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg.to_dict()))
            arrays = load_npz(run_dir / "checkpoint" / state["arrays"])
            self.strategy.load_state_dict(
                {**state["strategy"], **{k[len("strategy.") :]: v for k, v in arrays.items() if k.startswith("strategy.")}}
            )
            generation = state["generation"]
            evaluations, failures_total, wall_offset = state["evaluations"], state["failures"], state["wall_seconds"]
            best_seen_fitness = state["best_seen_fitness"] if state["best_seen_fitness"] is not None else -math.inf
            best_seen = arrays.get("run.best_seen")
            selected_score = state["selected_score"] if state["selected_score"] is not None else -math.inf
            selected = arrays.get("run.selected")
            rows = [r for r in read_metrics(run_dir / "metrics.csv") if r["generation"] <= generation]
            self._rewrite_metrics(run_dir, rows)

        events = open(run_dir / "events.log", "a")
        val_seed = stream_seed(cfg.seed, _VALIDATION_STREAM)
        bar = self._progress_bar(generation)
        started = time.perf_counter()
        stopped = "generations"
        metrics_fh = open(run_dir / "metrics.csv", "a", newline="")
        writer = csv.writer(metrics_fh)
        try:
            while generation < cfg.generations:
                generation += 1
                genomes = self.strategy.ask()
                result = evaluator.evaluate(self.task, self.network, genomes, generation)
                self.strategy.tell(genomes, result.fitness)
                fitness = result.fitness
                evaluations += len(fitness)
                failures_total += result.failures
                if result.failures:
                    events.write(f"generation {generation}: {result.failures} failed evaluation(s) got the worst fitness; {'; '.join(result.errors[:3]) or 'non-finite fitness'}\n")
                    events.flush()
                finite = fitness[np.isfinite(fitness)]
                gen_best = float(finite.max()) if finite.size else -math.inf
                if gen_best > best_seen_fitness:
                    best_seen_fitness = gen_best
                    best_seen = np.array(genomes[int(np.argmax(fitness))], dtype=np.float64)
                wall = wall_offset + time.perf_counter() - started
                row = {
                    "generation": generation,
                    "evaluations": evaluations,
                    "best": gen_best if finite.size else None,
                    "mean": float(finite.mean()) if finite.size else None,
                    "std": float(finite.std()) if finite.size else None,
                    "best_so_far": best_seen_fitness if math.isfinite(best_seen_fitness) else None,
                    "failures": result.failures,
                    "wall_seconds": wall,
                }
                rows.append(row)
                writer.writerow([row["generation"], row["evaluations"], *(_fmt(row[k]) for k in ("best", "mean", "std", "best_so_far")), row["failures"], f"{wall:.3f}"])
                metrics_fh.flush()

                reached = cfg.target_fitness is not None and gen_best >= cfg.target_fitness
                out_of_time = cfg.max_seconds is not None and wall >= cfg.max_seconds
                last = generation == cfg.generations or reached or out_of_time
                if generation % cfg.validate_every == 0 or last:
                    genome, _ = self.strategy.best()
                    score = self._validation_score(genome, val_seed)
                    if score is not None and score > selected_score:
                        selected_score, selected = score, np.array(genome, dtype=np.float64)
                    if self.trace_test:
                        current = selected if selected is not None else (best_seen if best_seen is not None else genome)
                        self.test_trace.append(
                            {
                                "generation": generation,
                                "wall_seconds": wall,
                                "sample_forward_passes": evaluations * self.task.samples_per_evaluation(),
                                **self.task.test(self.network, current, stream_seed(cfg.seed, STREAM_TEST)),
                            }
                        )
                if generation % cfg.checkpoint_every == 0 or last:
                    self._checkpoint(run_dir, generation, evaluations, failures_total, wall, best_seen_fitness, best_seen, selected_score, selected)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(
                        f"best {gen_best:.4g} mean {row['mean'] if row['mean'] is not None else float('nan'):.4g} "
                        f"evals/s {evaluations / max(wall, 1e-9):.0f}",
                        refresh=False,
                    )
                if reached:
                    stopped = "target_fitness"
                    break
                if out_of_time:
                    stopped = "max_seconds"
                    break
        finally:
            metrics_fh.close()
            events.close()
            if bar is not None:
                bar.close()

        wall_total = wall_offset + time.perf_counter() - started
        chosen, source, val_figures = self._choose_best(best_seen, selected, val_seed)
        test_figures = self.task.test(self.network, chosen, stream_seed(cfg.seed, STREAM_TEST))
        atomic_save_npz(run_dir / "best_genome.npz", {"params": chosen})
        described = {"network": self.network.describe(), "task": self.task.describe(), "source": source, "best_fitness": best_seen_fitness}
        if hasattr(self.network, "decode_description"):  # a searched architecture: what the genome decodes to
            described["architecture"] = self.network.decode_description(chosen)
        atomic_write_json(run_dir / "best_genome.json", described)
        if hasattr(self.task, "trained"):  # weights trained inside the fitness: keep the trained network too
            spec, trained = self.task.trained(self.network, chosen, stream_seed(cfg.seed, STREAM_TEST))
            atomic_save_npz(run_dir / "best_trained.npz", {"params": trained})
            atomic_write_json(run_dir / "best_trained.json", {"network": spec.describe(), "source": "the genome's network as trained inside the fitness"})
        if hasattr(self.network, "save_graph"):  # a NEAT graph: nodes and connections as JSON, and a drawing
            self.network.save_graph(chosen, run_dir / "best_genome_graph.json")
            self.network.draw(chosen, run_dir / "best_genome_graph.png", title=f"{cfg.name}: best genome")
        pareto = self._write_pareto_front(run_dir)
        from evo.plots import plot_fitness_curve

        if rows:
            plot_fitness_curve(rows, run_dir / "fitness.png", f"{cfg.name}: {cfg.strategy.type} on {self.task.name}")
        summary = {
            "name": cfg.name,
            "seed": cfg.seed,
            "generations": generation,
            "evaluations": evaluations,
            "wall_seconds": wall_total,
            "evaluations_per_second": evaluations / max(wall_total, 1e-9),
            "best_fitness": best_seen_fitness,
            "failures": failures_total,
            "stopped_by": stopped,
            "best_genome_source": source,
            "sample_forward_passes": evaluations * self.task.samples_per_evaluation(),
            "n_params": self.network.n_params,
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
        return RunResult(run_dir, summary, chosen, self.network, rows)

    # --------------------------------------------------------------- helpers
    def _write_pareto_front(self, run_dir: Path) -> list[dict[str, Any]]:
        """Multi-objective runs: the front (fitness against size) with each member's test figures, as JSON and a plot."""
        front = self.strategy.pareto_front() if hasattr(self.strategy, "pareto_front") else []
        if not front:
            return []
        test_seed = stream_seed(self.config.seed, STREAM_TEST)
        rows = []
        for member in front:
            figures = self.task.test(self.network, member["genome"], test_seed)
            rows.append({k: v for k, v in member.items() if k != "genome"} | {k: v for k, v in figures.items() if isinstance(v, (int, float))})
        atomic_save_npz(run_dir / "pareto_front.npz", {"genomes": np.stack([m["genome"] for m in front])})
        atomic_write_json(run_dir / "pareto_front.json", rows)
        from evo.plots import plot_pareto_front

        plot_pareto_front(rows, run_dir / "pareto_front.png", f"{self.config.name}: fitness against size")
        return rows

    def _validation_score(self, genome: np.ndarray, seed: int) -> float | None:
        figures = self.task.validate(self.network, genome, seed)
        return figures.get("val_score") if figures else None

    def _choose_best(self, best_seen, selected, val_seed) -> tuple[np.ndarray, str, dict]:
        """Pick the genome to report: the better on validation of the strategy's choice and the best individual."""
        candidates = [(source, g) for source, g in (("strategy_best", selected), ("best_individual", best_seen)) if g is not None]
        if not candidates:
            return self.strategy.best()[0], "strategy_best", {}
        scored = []
        for source, genome in candidates:
            figures = self.task.validate(self.network, genome, val_seed)
            scored.append((figures.get("val_score", -math.inf) if figures else -math.inf, source, genome, figures))
        # Ties (or no validation at all) go to the first candidate: the strategy's own choice.
        _, source, genome, figures = max(scored, key=lambda item: item[0])
        return genome, source, {k: v for k, v in figures.items() if k != "val_score"}

    def _checkpoint(self, run_dir, generation, evaluations, failures, wall, best_seen_fitness, best_seen, selected_score, selected) -> None:
        state = self.strategy.state_dict()
        arrays = {f"strategy.{k}": v for k, v in state.items() if isinstance(v, np.ndarray)}
        json_part = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        if best_seen is not None:
            arrays["run.best_seen"] = best_seen
        if selected is not None:
            arrays["run.selected"] = selected
        ckpt = run_dir / "checkpoint"
        name = f"state-{generation:08d}.npz"
        atomic_save_npz(ckpt / name, arrays)
        atomic_write_json(
            ckpt / "state.json",
            {
                "generation": generation,
                "evaluations": evaluations,
                "failures": failures,
                "wall_seconds": wall,
                "best_seen_fitness": best_seen_fitness,
                "selected_score": selected_score,
                "arrays": name,
                "strategy": json_part,
            },
        )
        for old in ckpt.glob("state-*.npz"):
            if old.name != name:
                old.unlink()

    @staticmethod
    def _rewrite_metrics(run_dir: Path, rows: list[dict]) -> None:
        lines = [METRIC_COLUMNS]
        for r in rows:
            lines.append([r["generation"], r["evaluations"], *(_fmt(r[k]) for k in ("best", "mean", "std", "best_so_far")), r["failures"], f"{r['wall_seconds']:.3f}"])
        buf = io.StringIO()
        csv.writer(buf).writerows(lines)
        atomic_write_text(run_dir / "metrics.csv", buf.getvalue())

    def _progress_bar(self, start: int):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.config.generations, initial=start, desc=self.config.name, unit="gen", dynamic_ncols=True)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a metrics.csv as dicts of numbers (empty cells become None)."""
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            parsed: dict[str, Any] = {}
            for k, v in row.items():
                if v == "":
                    parsed[k] = None
                elif k in ("generation", "evaluations", "failures"):
                    parsed[k] = int(v)
                else:
                    parsed[k] = float(v)
            out.append(parsed)
    return out


def run_evolution(config: RunConfig | str | Path, progress: bool = False, run_dir: str | Path | None = None, **overrides: Any) -> RunResult:
    """Run evolution from a config object or a TOML path, in one call (for notebooks)."""
    if not isinstance(config, RunConfig):
        config = load_config(config, **overrides)
    elif overrides:
        from evo.config import apply_overrides

        config = parse_config(apply_overrides(config.to_dict(), **overrides))
    return EvolutionRun(config, run_dir=run_dir, progress=progress).run()
