"""End-to-end runs through the Python API and the CLI: files, figures, resume, failures."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from evo import ConfigError, EvolutionRun, parse_config, read_metrics, run_evolution
from evo.files import load_npz
from evo.reporters import (
    Reporter,
    RunState,
    load_checkpoint,
    read_validation,
    save_checkpoint,
)
from networks import network_from_description
from tests.helpers import CARTPOLE, DIGITS, XOR, metrics_without_time, write_config


def test_xor_is_solved_and_the_run_directory_is_complete(tmp_path):
    result = run_evolution(parse_config(XOR), run_dir=tmp_path / "xor")
    d = result.run_dir
    for name in (
        "config.toml",
        "metrics.csv",
        "best_genome.npz",
        "best_genome.json",
        "fitness.png",
        "summary.json",
        "checkpoint/state.json",
    ):
        assert (d / name).is_file(), name
    summary = json.loads((d / "summary.json").read_text())
    for key in ("generations", "evaluations", "wall_seconds", "best_fitness", "test_accuracy"):
        assert key in summary
    assert summary["test_accuracy"] == 1.0
    assert summary["stopped_by"] == "target_fitness"
    assert summary["evaluations"] == 16 * summary["generations"]
    rows = metrics_without_time(d)
    assert [r["generation"] for r in rows] == list(range(1, summary["generations"] + 1))
    assert rows[-1]["best"] >= 0.95
    # The saved genome rebuilds the network without the evolution code.
    description = json.loads((d / "best_genome.json").read_text())
    net = network_from_description(description["network"])
    params = load_npz(d / "best_genome.npz")["params"]
    out = net.predict(params, np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float))[:, 0]
    assert list(out > 0.5) == [False, True, True, False]


def _digits_test_accuracy(run_dir) -> float:
    """Test accuracy of a run's saved genome, recomputed from its files and the digits test split."""
    from evo.tasks.datasets import load_digits, stratified_split

    X, y = load_digits()
    split = stratified_split(X, y, 0.1, 0.2, 0)  # the task's default fractions and split seed
    net = network_from_description(json.loads((run_dir / "best_genome.json").read_text())["network"])
    params = load_npz(run_dir / "best_genome.npz")["params"]
    return float(np.mean(net.predict(params, split.X_test).argmax(axis=1) == split.y_test))


def test_digits_summary_has_held_out_figures(tmp_path):
    result = run_evolution(parse_config(DIGITS), run_dir=tmp_path / "d")
    s = result.summary
    assert s["test_samples"] == 360
    assert s["test_accuracy"] == _digits_test_accuracy(result.run_dir)
    assert s["test_accuracy"] > 0.14  # 6 generations of SNES: clearly above chance (0.10)
    assert s["sample_forward_passes"] == s["evaluations"] * 64


def test_cartpole_summary_has_test_mean_return(tmp_path):
    result = run_evolution(parse_config(CARTPOLE), run_dir=tmp_path / "c")
    # 4 generations of the GA balance well beyond a random network's ~20 steps (capped at max_steps 200).
    assert 50.0 <= result.summary["test_mean_return"] <= 200.0
    assert result.summary["test_episodes"] == 5


@pytest.mark.parametrize("base", [CARTPOLE, DIGITS], ids=["cartpole-ga", "digits-snes"])
def test_resume_gives_the_same_metrics_as_an_uninterrupted_run(tmp_path, base):
    straight = run_evolution(parse_config(base), run_dir=tmp_path / "straight")
    # Stop after 3 generations (checkpoint at 3 as the last generation), then resume to the end.
    first = run_evolution(parse_config({**base, "generations": 3}), run_dir=tmp_path / "resumed")
    assert len(first.metrics) == 3
    resumed = EvolutionRun.resume(tmp_path / "resumed", generations=base["generations"], progress=False).run()
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(straight.run_dir)
    np.testing.assert_array_equal(resumed.best_genome, straight.best_genome)
    assert resumed.summary["evaluations"] == straight.summary["evaluations"]


def test_resume_after_a_crash_discards_rows_past_the_checkpoint(tmp_path):
    base = {**DIGITS, "generations": 6, "checkpoint_every": 3}
    straight = run_evolution(parse_config(base), run_dir=tmp_path / "straight")
    crashed = run_evolution(parse_config({**base, "generations": 5, "checkpoint_every": 3}), run_dir=tmp_path / "crashed")
    # Simulate a crash after generation 5: the last checkpoint is generation 3.
    state = json.loads((crashed.run_dir / "checkpoint" / "state.json").read_text())
    assert state["generation"] == 5  # the final checkpoint...
    ckpt_gen3 = run_evolution(parse_config({**base, "generations": 3}), run_dir=tmp_path / "gen3")
    for f in (ckpt_gen3.run_dir / "checkpoint").iterdir():
        (crashed.run_dir / "checkpoint" / f.name).write_bytes(f.read_bytes())
    for f in (crashed.run_dir / "checkpoint").glob("state-00000005.npz"):
        f.unlink()
    resumed = EvolutionRun.resume(crashed.run_dir, generations=6, progress=False).run()
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(straight.run_dir)


class _FlakyTask:
    """Wraps a task: individuals with an odd index raise or return NaN."""

    def __init__(self, inner):
        self.inner = inner
        for attr in ("n_inputs", "n_outputs", "output_activation", "kind", "name"):
            setattr(self, attr, getattr(inner, attr))

    def evaluate(self, network, genomes, seeds, generation_seed):
        fitness = self.inner.evaluate(network, genomes, seeds, generation_seed)
        bad = (seeds % 4) == 1
        if bad.any() and len(genomes) > 1:
            raise RuntimeError("simulated crash in the batch")
        if bad.any():
            raise RuntimeError("simulated crash of one genome")
        return np.where((seeds % 4) == 2, np.nan, fitness)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_failing_and_nan_fitness_get_worst_and_are_counted(tmp_path):
    run = EvolutionRun(parse_config({**XOR, "generations": 5, "target_fitness": None}), run_dir=tmp_path / "f", progress=False)
    run.task = _FlakyTask(run.task)
    result = run.run()
    assert result.summary["generations"] == 5
    assert result.summary["failures"] > 0
    assert sum(r["failures"] for r in result.metrics) == result.summary["failures"]
    assert all(np.isfinite(r["best"]) for r in result.metrics)
    log = (result.run_dir / "events.log").read_text()
    assert "simulated crash" in log and "worst fitness" in log


def test_cli_run_writes_a_run_directory_and_prints_figures(tmp_path):
    cfg = write_config(tmp_path / "xor.toml", XOR)
    proc = subprocess.run(
        [sys.executable, "-m", "evo.cli", "run", str(cfg), "--out", str(tmp_path / "runs"), "--seed", "4", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test_accuracy 1" in proc.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("xor-")
    assert "seed = 4" in (run_dir / "config.toml").read_text()


def test_cli_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "evo.cli", "run", "--help"], capture_output=True, text=True).stdout
    for option in ("--seed", "--generations", "--population", "--workers", "--ray-address", "--out", "--resume"):
        assert option in out
    top = subprocess.run([sys.executable, "-m", "evo.cli", "--help"], capture_output=True, text=True).stdout
    assert "run" in top


# ------------------------------------------------------------- RunState and reporters
class _Recorder(Reporter):
    """Notes every event it hears; stops the run after ``stop_at`` generations when given."""

    def __init__(self, stop_at: int | None = None):
        self.events: list[tuple] = []
        self.stop_at = stop_at

    def on_start(self, run, state):
        self.events.append(("start", run.kind, run.total, run.resumed, state.generation))

    def on_generation(self, state, row):
        self.events.append(("generation", dict(row)))

    def on_validation(self, state, row):
        self.events.append(("validation", dict(row)))

    def on_failures(self, state, generation, count, errors):
        self.events.append(("failures", generation, count))

    def on_checkpoint(self, state):
        self.events.append(("checkpoint", state.generation))

    def on_end(self, state, summary):
        self.events.append(("end", state.stopped_by, summary["generations"]))

    def should_stop(self, state):
        return self.stop_at is not None and state.generation >= self.stop_at

    def close(self):
        self.events.append(("close",))

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


def _metrics_with_rounded_time(run_dir):
    """metrics.csv rows; their wall_seconds (3 decimals there) compare equal to the loop's exact ones."""
    rows = read_metrics(run_dir / "metrics.csv")
    return [{**r, "wall_seconds": pytest.approx(r["wall_seconds"], abs=1e-3)} for r in rows]


def test_validation_csv_has_one_row_per_periodic_validation(tmp_path):
    result = run_evolution(parse_config(DIGITS), run_dir=tmp_path / "d")  # validate_every = 2, 6 generations
    rows = read_validation(result.run_dir / "validation.csv")
    assert [r["generation"] for r in rows] == [2, 4, 6]
    assert list(rows[0]) == ["generation", "val_score", "val_accuracy", "val_loss", "val_samples"]
    for r in rows:
        assert r["val_score"] == pytest.approx(r["val_accuracy"] - 1e-3 * r["val_loss"])
        assert r["val_samples"] == 180
    # The chosen genome scores at least as well on validation as every periodic choice.
    assert result.summary["val_accuracy"] - 1e-3 * result.summary["val_loss"] >= max(r["val_score"] for r in rows) - 1e-12


def test_reporters_hear_every_event_in_order(tmp_path):
    recorder = _Recorder()
    run = EvolutionRun(parse_config(DIGITS), run_dir=tmp_path / "d", progress=False, reporters=[recorder])
    result = run.run()
    kinds = recorder.kinds()
    assert kinds[0] == "start" and kinds[-2:] == ["end", "close"]
    assert recorder.events[0] == ("start", "evolution", 6, False, 0)
    assert recorder.events[-2] == ("end", "generations", 6)
    assert [e[1] for e in recorder.events if e[0] == "generation"] == result.metrics == _metrics_with_rounded_time(result.run_dir)
    assert [e[1]["generation"] for e in recorder.events if e[0] == "validation"] == [2, 4, 6]
    assert [e[1] for e in recorder.events if e[0] == "checkpoint"] == [3, 6]
    # Within a generation: the row, then its validation, then its checkpoint.
    assert kinds[kinds.index("checkpoint") - 1] == "generation"
    assert kinds[-5:-2] == ["generation", "validation", "checkpoint"]


def test_a_stopped_run_is_checkpointed_and_resumes_as_if_never_stopped(tmp_path):
    base = {**DIGITS, "generations": 7}
    straight = run_evolution(parse_config(base), run_dir=tmp_path / "straight")
    # Stopped by a reporter after generation 3: not a validation generation (validate_every = 2).
    stopped = EvolutionRun(parse_config(base), run_dir=tmp_path / "stopped", progress=False, reporters=[_Recorder(stop_at=3)]).run()
    assert stopped.summary["stopped_by"] == "stopped" and stopped.summary["generations"] == 3
    state = json.loads((stopped.run_dir / "checkpoint" / "state.json").read_text())
    assert state["generation"] == 3 and state["stopped_by"] == "stopped"
    recorder = _Recorder()
    resumed = EvolutionRun.resume(stopped.run_dir, progress=False, reporters=[recorder]).run()
    assert recorder.events[0] == ("start", "evolution", 7, True, 3)
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(straight.run_dir)
    np.testing.assert_array_equal(resumed.best_genome, straight.best_genome)
    # validation.csv keeps the periodic rows and the stopped run's closing one (generation 3), then goes on.
    assert [r["generation"] for r in read_validation(resumed.run_dir / "validation.csv")] == [2, 4, 6, 7]
    assert [r["generation"] for r in read_validation(straight.run_dir / "validation.csv")] == [2, 4, 6, 7]
    log = (resumed.run_dir / "events.log").read_text()
    assert "stopped by stopped" in log and "resumed at generation 3" in log


def test_request_stop_ends_the_run_after_the_generation_under_way(tmp_path):
    class StopAtTwo(Reporter):
        def on_generation(self, state, row):
            if state.generation == 2:
                run.request_stop()

    run = EvolutionRun(parse_config(DIGITS), run_dir=tmp_path / "d", progress=False, reporters=[StopAtTwo()])
    result = run.run()
    assert result.summary["stopped_by"] == "stopped" and len(result.metrics) == 2
    assert json.loads((result.run_dir / "checkpoint" / "state.json").read_text())["generation"] == 2


def test_run_state_checkpoint_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    state = RunState(
        generation=4,
        evaluations=40,
        failures=1,
        wall_seconds=1.2345678,
        best_seen_fitness=0.1 + 0.2,
        best_seen=rng.normal(size=5),
        selected_score=-math.inf,
        selected=None,
        stopped_by="max_seconds",
        rows=[{"generation": g, "best": None if g == 1 else 1 / 3 * g, "failures": g % 2} for g in range(1, 5)],
        validations=[{"generation": 2, "val_score": -math.inf, "val_accuracy": 0.7}],
    )
    save_checkpoint(tmp_path, state, {"mean": np.arange(3.0), "step": 7})
    restored, strategy_state = load_checkpoint(tmp_path)
    assert strategy_state["step"] == 7
    np.testing.assert_array_equal(strategy_state["mean"], np.arange(3.0))
    np.testing.assert_array_equal(restored.best_seen, state.best_seen)
    assert restored.selected is None
    for name in ("generation", "evaluations", "failures", "wall_seconds", "best_seen_fitness", "selected_score", "stopped_by"):
        assert getattr(restored, name) == getattr(state, name), name
    for name in ("rows", "validations"):
        assert getattr(restored, name) == getattr(state, name), name
    assert isinstance(restored.rows[0]["generation"], int)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state-00000004.npz", "state.json"]
    with np.load(tmp_path / "state-00000004.npz", allow_pickle=False) as arrays:
        assert all(arrays[k].dtype != object for k in arrays.files)


def test_resume_reads_a_checkpoint_written_before_rows_were_part_of_it(tmp_path):
    straight = run_evolution(parse_config(DIGITS), run_dir=tmp_path / "straight")
    first = run_evolution(parse_config({**DIGITS, "generations": 3}), run_dir=tmp_path / "old")
    ckpt = first.run_dir / "checkpoint"
    state = json.loads((ckpt / "state.json").read_text())
    arrays = load_npz(ckpt / state["arrays"])
    np.savez(ckpt / state["arrays"], **{k: v for k, v in arrays.items() if not k.startswith(("run.rows.", "run.validations."))})
    kept = ("generation", "evaluations", "failures", "wall_seconds", "best_seen_fitness", "selected_score", "arrays", "strategy")
    old = {k: v for k, v in state.items() if k in kept}
    (ckpt / "state.json").write_text(json.dumps(old))
    resumed = EvolutionRun.resume(first.run_dir, generations=6, progress=False).run()
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(straight.run_dir)


def test_declared_capabilities_match_the_methods_of_every_strategy_and_task():
    """Every class that has the method declares the capability, so isinstance sees the declaration."""
    import importlib
    import pkgutil

    import evo.tasks
    from evo.strategies import STRATEGIES
    from evo.strategies.base import MultiObjective
    from evo.tasks.base import Task, TrainsWeights

    for cls in STRATEGIES.values():
        assert ("pareto_front" in dir(cls)) == (MultiObjective in cls.__mro__), cls
    for module in pkgutil.iter_modules(evo.tasks.__path__):
        importlib.import_module(f"evo.tasks.{module.name}")
    tasks, todo = [], [Task]
    while todo:
        cls = todo.pop()
        tasks.append(cls)
        todo.extend(cls.__subclasses__())
    assert len(tasks) > 5
    for cls in tasks:
        assert ("trained" in dir(cls)) == (TrainsWeights in cls.__mro__), cls


def test_resume_from_a_broken_checkpoint_is_a_config_error(tmp_path):
    first = run_evolution(parse_config({**DIGITS, "generations": 3}), run_dir=tmp_path / "d")
    for npz in (first.run_dir / "checkpoint").glob("state-*.npz"):
        npz.unlink()
    with pytest.raises(ConfigError, match="checkpoint cannot be read"):
        EvolutionRun.resume(first.run_dir, generations=6, progress=False)
