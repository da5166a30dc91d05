"""End-to-end runs through the Python API and the CLI: files, figures, resume, failures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from evo import EvolutionRun, parse_config, run_evolution
from evo.files import load_npz
from networks import network_from_description
from tests.helpers import CARTPOLE, DIGITS, XOR, metrics_without_time, write_config


def test_xor_is_solved_and_the_run_directory_is_complete(tmp_path):
    result = run_evolution(parse_config(XOR), run_dir=tmp_path / "xor")
    d = result.run_dir
    for name in ("config.toml", "metrics.csv", "best_genome.npz", "best_genome.json", "fitness.png", "summary.json", "checkpoint/state.json"):
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
