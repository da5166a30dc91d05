"""`evo train` and `evo compare`: the backprop baseline on the same footing as evolution."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from evo import ConfigError, parse_config, run_evolution
from evo.baselines import BASELINES, make_training_run
from evo.build import initial_genome
from evo.compare import compare
from evo.train import TrainingRun
from tests.helpers import DIGITS, ESN_SMALL, XOR, assert_png, write_config

XOR_TRAIN = {**XOR, "train": {"lr": 0.05, "batch_size": 4, "epochs": 1500, "weight_decay": 0.0, "patience": 0}}
DIGITS_TRAIN = {**DIGITS, "train": {"epochs": 40, "patience": 5}}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "evo.cli", *args], capture_output=True, text=True, timeout=300)


def test_train_solves_xor_and_writes_a_run_directory(tmp_path):
    result = TrainingRun(parse_config(XOR_TRAIN), run_dir=tmp_path / "t", progress=False).run()
    assert result.summary["test_accuracy"] == 1.0
    for name in ("config.toml", "metrics.csv", "best_genome.npz", "best_genome.json", "loss.png", "summary.json"):
        assert (result.run_dir / name).is_file(), name
    assert_png(result.run_dir / "loss.png")
    lines = (result.run_dir / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,val_loss,val_accuracy")
    assert len(lines) == 1 + result.summary["epochs"]
    losses = [float(line.split(",")[1]) for line in lines[1:]]
    assert losses[-1] < 0.1 * losses[0]


def test_train_starts_from_the_same_weights_as_evolution(tmp_path):
    config = parse_config(DIGITS_TRAIN)
    run = TrainingRun(config, progress=False)
    np.testing.assert_array_equal(run.init_params, initial_genome(config, run.network))


def test_train_on_digits_reduces_loss_and_reports_held_out_figures(tmp_path):
    result = TrainingRun(parse_config(DIGITS_TRAIN), run_dir=tmp_path / "t", progress=False).run()
    s = result.summary
    assert s["test_samples"] == 360 and s["test_accuracy"] > 0.85
    assert s["sample_forward_passes"] == 2 * s["samples_seen"] == 2 * s["epochs"] * 1257
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_init_from_fine_tunes_an_evolved_genome(tmp_path):
    evolved = run_evolution(parse_config(DIGITS), run_dir=tmp_path / "evolved")
    config = parse_config({**DIGITS_TRAIN, "train": {"epochs": 5, "patience": 0}})
    run = TrainingRun(config, run_dir=tmp_path / "tuned", progress=False, init_from=evolved.run_dir)
    np.testing.assert_array_equal(run.init_params, evolved.best_genome)
    tuned = run.run()
    assert tuned.summary["init_from"] == str(evolved.run_dir)
    assert tuned.summary["test_accuracy"] > evolved.summary["test_accuracy"]
    wider = parse_config({**DIGITS_TRAIN, "network": {"hidden": [9]}})
    with pytest.raises(ConfigError, match="differs from this config"):
        TrainingRun(wider, progress=False, init_from=evolved.run_dir)


def test_compare_reports_both_methods(tmp_path):
    result = compare(parse_config({**XOR_TRAIN, "name": "cmp"}), seeds=2, out=tmp_path, progress=False)
    report = json.loads((result.out_dir / "compare.json").read_text())
    assert [s["seed"] for s in report["per_seed"]] == [3, 4]
    for method in ("evolution", "backprop"):
        agg = report["aggregate"][method]
        assert agg["test_accuracy"]["mean"] == 1.0
        assert agg["n_params"]["mean"] == 17
        assert agg["sample_forward_passes"]["mean"] > 0
        assert report["traces"][method][0], method
    table = (result.out_dir / "report.md").read_text()
    assert "evolution (cmaes)" in table and "backprop (adam)" in table
    assert_png(result.out_dir / "compare.png")
    assert (result.out_dir / "evolution-seed3" / "summary.json").is_file()
    assert (result.out_dir / "backprop-seed4" / "summary.json").is_file()


def test_bad_options_are_refused(tmp_path):
    # Control tasks train by policy gradient (tests/test_policy_gradient.py); a minimisation has no baseline.
    cfg = write_config(
        tmp_path / "f.toml",
        {
            "task": {"type": "function", "callable": "evo.functions:sphere", "dimension": 2, "bounds": [-1, 1]},
            "strategy": {"type": "cmaes"},
        },
    )
    proc = _cli("train", str(cfg), "--out", str(tmp_path / "runs"), "--no-progress")
    assert proc.returncode == 2 and "backprop needs labelled data" in proc.stderr, proc.stderr
    xor = write_config(tmp_path / "xor.toml", XOR_TRAIN)
    proc = _cli("compare", str(xor), "--seeds", "0", "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "--seeds" in proc.stderr
    proc = _cli("train", str(xor), "--init-from", str(tmp_path / "nothing"), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "--init-from" in proc.stderr
    bad = write_config(tmp_path / "bad.toml", {**XOR_TRAIN, "train": {"optimizer": "rmsprop"}})
    proc = _cli("train", str(bad), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "train.optimizer" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_esn_train_and_compare_report_recipe_gd_readout_and_evolution(tmp_path):
    proc = _cli("train", str(write_config(tmp_path / "esn.toml", ESN_SMALL)), "--out", str(tmp_path / "runs"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "recipe" in proc.stdout and "gd_readout" in proc.stdout
    result = compare(parse_config(ESN_SMALL), seeds=2, out=tmp_path, progress=False)
    agg = result.report["aggregate"]
    assert set(agg) == {"evolution", "recipe", "gd_readout"}
    for method in agg:
        assert agg[method]["test_nrmse"]["median"] > 0
    # The closed-form ridge readout beats a readout trained by a few epochs of gradient descent.
    assert agg["recipe"]["test_nrmse"]["mean"] < agg["gd_readout"]["test_nrmse"]["mean"]
    # Each seed used its own reservoir.
    networks = {json.loads((result.out_dir / f"evolution-seed{s}" / "summary.json").read_text())["network"]["seed"] for s in (0, 1)}
    assert networks == {0, 1}
    assert "standard recipe" in result.table
    assert_png(result.out_dir / "compare.png")  # as the help says: evolution's trace, the recipe and the readout as points
    # The baseline run keeps the recipe's fitted network as its model.
    from networks import load_model

    recipe = load_model(next(result.out_dir.glob("baselines-seed0")))
    assert recipe.kind == "timeseries" and recipe.record["source"].startswith("the standard ESN recipe")


def test_training_rows_stream_through_the_same_reporters(tmp_path):
    from evo.reporters import Reporter, read_csv_numbers

    class Recorder(Reporter):
        def __init__(self):
            self.events = []

        def on_start(self, run, state):
            self.events.append(("start", run.kind, run.total))

        def on_generation(self, state, row):
            self.events.append(("epoch", state.generation, dict(row)))

        def on_end(self, state, summary):
            self.events.append(("end", state.stopped_by, summary["epochs"]))

        def close(self):
            self.events.append(("close",))

    recorder = Recorder()
    config = parse_config({**XOR_TRAIN, "train": {**XOR_TRAIN["train"], "epochs": 20}})
    result = TrainingRun(config, run_dir=tmp_path / "t", progress=False, reporters=[recorder]).run()
    assert recorder.events[0] == ("start", "training", 20)
    assert recorder.events[-2:] == [("end", "epochs", 20), ("close",)]
    epochs = [e for e in recorder.events if e[0] == "epoch"]
    assert [e[1] for e in epochs] == list(range(1, 21))
    written = read_csv_numbers(result.run_dir / "metrics.csv", ("epoch", "samples_seen", "sample_forward_passes"))
    assert [{k: v for k, v in e[2].items() if k != "wall_seconds"} for e in epochs] == [
        {k: v for k, v in r.items() if k != "wall_seconds"} for r in written
    ]
    assert [r["train_loss"] for r in written] == [h["train_loss"] for h in result.history]
    assert "started: training, 20 epochs" in (result.run_dir / "events.log").read_text()


def test_esn_readout_epochs_stream_through_the_same_reporters(tmp_path):
    from evo.baselines.esn import ESNBaselineRun
    from evo.reporters import Reporter, read_csv_numbers
    from evo.train import TRAIN_COLUMNS

    class Recorder(Reporter):
        def __init__(self):
            self.epochs, self.ends = [], []

        def on_generation(self, state, row):
            self.epochs.append(dict(row))

        def on_end(self, state, summary):
            self.ends.append((state.stopped_by, summary["gd_readout"]["epochs"]))

    recorder = Recorder()
    result = ESNBaselineRun(parse_config(ESN_SMALL), run_dir=tmp_path / "t", progress=False, reporters=[recorder]).run()
    lines = (result.run_dir / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(TRAIN_COLUMNS)
    written = read_csv_numbers(result.run_dir / "metrics.csv", ("epoch", "samples_seen", "sample_forward_passes"))
    assert [r["epoch"] for r in written] == [r["epoch"] for r in recorder.epochs] == list(range(1, len(result.history) + 1))
    assert [r["train_loss"] for r in written] == [h["train_loss"] for h in result.history]
    gd = result.summary["gd_readout"]
    assert recorder.ends == [("early_stopping" if gd["stopped_early"] else "epochs", gd["epochs"])]
    assert "started: training, 20 epochs" in (result.run_dir / "events.log").read_text()
    # The same run-directory reporters give it status.json; the result holds the recipe's fitted network (its model.json).
    status = json.loads((result.run_dir / "status.json").read_text())
    assert (status["status"], status["kind"], status["generation"]) == ("finished", "training", gd["epochs"])
    assert (result.run_dir / "model.json").is_file() and result.params.size == result.network.n_params


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_names_its_methods_metrics_and_formats(name):
    baseline = BASELINES[name]
    labels = baseline.labels(parse_config(ESN_SMALL))
    assert labels and "evolution" not in labels
    assert {kind for _, kind in baseline.metrics.values()} <= {"fixed", "sci", "seconds", "int"}
    assert set(baseline.median_metrics) <= set(baseline.metrics)
    assert baseline.plotted_metric is None or baseline.plotted_metric in baseline.metrics


def test_the_task_picks_the_baseline_run(tmp_path):
    assert type(make_training_run(parse_config(XOR_TRAIN), progress=False)).__name__ == "TrainingRun"
    esn = make_training_run(parse_config(ESN_SMALL), progress=False)
    assert type(esn).__name__ == "ESNBaselineRun" and esn.task.baseline == "esn_recipe"
    with pytest.raises(ConfigError, match="init-from"):
        make_training_run(parse_config(ESN_SMALL), progress=False, init_from=tmp_path)
