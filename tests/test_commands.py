"""The commands that use and manage results: predict, rollout, runs, show, compare RUN_DIR..., run --seeds, --json, resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from evo import parse_config, run_evolution
from evo.cli import main
from evo.tasks.datasets import DIGITS_IMAGE_SHAPE, load_digits_raw, stratified_split
from evo.train import TrainingRun
from tests.helpers import CARTPOLE, DIGITS, XOR, metrics_without_time, write_config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder with two digits evolution runs (seeds 5, 6), a backprop run and a CartPole run."""
    folder = tmp_path_factory.mktemp("runs")
    made = {
        "evo5": run_evolution(parse_config(DIGITS), run_dir=folder / "evo5").run_dir,
        "evo6": run_evolution(parse_config({**DIGITS, "seed": 6}), run_dir=folder / "evo6").run_dir,
        "cartpole": run_evolution(parse_config(CARTPOLE), run_dir=folder / "cartpole").run_dir,
    }
    config = parse_config({**DIGITS, "train": {"epochs": 2, "batch_size": 64}})
    made["backprop"] = TrainingRun(config, run_dir=folder / "backprop", progress=False).run().run_dir
    return folder, made


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    """The raw digits test split as an .npz of 8x8 images and as a CSV with a header and a label column."""
    folder = tmp_path_factory.mktemp("data")
    X, y = load_digits_raw()
    split = stratified_split(X, y, 0.1, 0.2, 0, image_shape=DIGITS_IMAGE_SHAPE)
    np.savez(folder / "test.npz", X=split.X_test.reshape(-1, 8, 8), y=split.y_test)
    with open(folder / "test.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"pixel{i}" for i in range(64)] + ["digit"])
        writer.writerows([[int(v) for v in row] + [int(label)] for row, label in zip(split.X_test, split.y_test)])
    with open(folder / "unlabelled.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([[int(v) for v in row] for row in split.X_test[:7]])
    return folder


def json_out(capsys) -> dict:
    """Standard output parsed as one JSON document (it must hold nothing else)."""
    return json.loads(capsys.readouterr().out)


def test_predict_reads_csv_and_npz_as_the_run_read_its_data_and_reports_accuracy(runs, digits_files, capsys, tmp_path):
    run_dir = runs[1]["evo5"]
    accuracy = json.loads((run_dir / "summary.json").read_text())["test_accuracy"]
    assert main(["predict", str(run_dir), str(digits_files / "test.npz"), "--json"]) == 0
    result = json_out(capsys)
    assert result["accuracy"] == accuracy and result["samples"] == 360 and result["columns"][0] == "prediction"
    assert main(["predict", str(run_dir), str(digits_files / "test.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    assert f"accuracy {accuracy:.6g}" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "p.csv").read_text().splitlines()))
    assert len(rows) == 360 and abs(sum(float(rows[0][f"p_{k}"]) for k in range(10)) - 1.0) < 1e-9
    assert main(["predict", str(run_dir), str(digits_files / "unlabelled.csv")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("prediction,p_0") and len(printed) == 1 + 7 + 1 and "accuracy" not in printed[-1]


def test_predict_refuses_what_it_cannot_read_in_one_line(runs, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n4,5,6\n")
    assert main(["predict", str(runs[1]["evo5"]), str(bad)]) == 2
    assert "3 columns; the model reads 64 features" in capsys.readouterr().err
    assert main(["predict", str(runs[1]["cartpole"]), str(bad)]) == 2
    assert "use `evo rollout" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), str(bad)]) == 2
    assert "no model.json" in capsys.readouterr().err


def test_rollout_prints_returns_and_films_a_gif(runs, tmp_path, capsys):
    import imageio.v2 as imageio

    gif = tmp_path / "cartpole.gif"
    assert main(["rollout", str(runs[1]["cartpole"]), "--episodes", "2", "--seed", "3", "--video", str(gif), "--json"]) == 0
    result = json_out(capsys)
    episodes = result["episodes"]
    assert [e["seed"] for e in episodes] == [3, 4] and all(e["return"] == e["steps"] for e in episodes)  # CartPole pays 1 a step
    assert result["frames"] == sum(e["steps"] + 1 for e in episodes)  # the first observation's frame, then one per step
    frames = imageio.mimread(gif)  # the GIF encoder folds identical consecutive frames into one longer frame
    assert 0.5 * result["frames"] < len(frames) <= result["frames"] and frames[0].shape[:2] == (400, 600)
    assert main(["rollout", str(runs[1]["evo5"])]) == 2
    assert main(["rollout", str(runs[1]["cartpole"]), "--video", str(tmp_path / "x.avi")]) == 2
    assert "allowed: .gif, .mp4" in capsys.readouterr().err


def test_runs_lists_every_kind_and_status(runs, capsys):
    folder, made = runs
    killed = folder / "killed"
    killed.mkdir(exist_ok=True)
    (killed / "config.toml").write_text((made["evo5"] / "config.toml").read_text())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = {"status": "running", "kind": "evolution", "pid": dead.pid, "host": os.uname().nodename, "generation": 2, "total": 6}
    (killed / "status.json").write_text(json.dumps(status))
    assert main(["runs", str(folder), "--json"]) == 0
    rows = {r["name"]: r for r in json_out(capsys)}
    assert rows["killed"]["status"] == "killed" and rows["killed"]["generations"] == 2
    assert rows["evo5"]["status"] == "finished" and rows["evo5"]["method"] == "evolution (snes)"
    assert rows["backprop"]["kind"] == "training" and rows["backprop"]["generations"] == 2
    assert rows["cartpole"]["test_metric"] == "test_mean_return" and rows["cartpole"]["task"] == "CartPole-v1"
    assert main(["runs", str(folder)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["name", "task", "method", "status", "generations", "best", "test", "wall"]
    assert len(table) == 1 + 5 and any(line.startswith("killed") and "killed" in line.split()[3:] for line in table)
    assert main(["show", str(killed)]) == 0
    assert f"resume     evo run --resume {killed}" in capsys.readouterr().out
    assert main(["show", str(made["evo5"])]) == 0
    shown = capsys.readouterr().out
    assert "inputs     pixels (0..16) / 16" in shown and "test_accuracy" in shown


def test_compare_run_directories_groups_methods_and_overlays_curves(runs, tmp_path, capsys):
    _, made = runs
    dirs = [str(made[k]) for k in ("evo5", "evo6", "backprop")]
    assert main(["compare", *dirs, "--out", str(tmp_path), "--json"]) == 0
    report = json_out(capsys)
    assert report["headline"] == "test_accuracy" and set(report["groups"]) == {"evolution (snes)", "backprop (adam)"}
    accuracies = [json.loads((made[k] / "summary.json").read_text())["test_accuracy"] for k in ("evo5", "evo6")]
    assert report["aggregate"]["evolution (snes)"]["test_accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    out_dir = tmp_path / os.path.basename(report["out_dir"])
    assert (out_dir / "compare.png").stat().st_size > 10_000 and "| evolution (snes) |" in (out_dir / "report.md").read_text()
    assert main(["compare", dirs[0], str(made["cartpole"]), "--out", str(tmp_path)]) == 0
    assert "different tasks" in capsys.readouterr().out
    assert main(["compare", dirs[0], str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert main(["compare", dirs[0], dirs[1], "--seeds", "3"]) == 2
    assert "apply to a config only" in capsys.readouterr().err


def test_seed_sweep_runs_each_seed_and_aggregates(tmp_path, capsys):
    config = write_config(tmp_path / "xor.toml", {**XOR, "generations": 30})
    assert main(["run", str(config), "--seeds", "3", "--out", str(tmp_path / "out"), "--no-progress", "--json"]) == 0
    report = json_out(capsys)
    sweep = tmp_path / "out" / os.path.basename(report["sweep_dir"])
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["seed3", "seed4", "seed5"]
    single = run_evolution(parse_config({**XOR, "generations": 30, "seed": 4}), run_dir=tmp_path / "single")
    assert metrics_without_time(sweep / "seed4") == metrics_without_time(single.run_dir)
    stats = report["aggregate"]["evolution (cmaes)"]["test_accuracy"]
    assert stats["n"] == 3 and json.loads((sweep / "sweep.json").read_text())["status"] == "finished"
    assert main(["runs", str(tmp_path / "out"), "--json"]) == 0
    assert json_out(capsys)[0]["kind"] == "sweep"


def test_resume_may_change_workers_and_restarts_a_run_killed_before_its_first_checkpoint(tmp_path, ray_local, capsys):
    base = {**XOR, "generations": 6, "target_fitness": None, "checkpoint_every": 2}
    straight = run_evolution(parse_config(base), run_dir=tmp_path / "straight")
    run_evolution(parse_config({**base, "generations": 3}), run_dir=tmp_path / "resumed")
    assert main(["run", "--resume", str(tmp_path / "resumed"), "--generations", "6", "--workers", "2", "--no-progress"]) == 0
    assert metrics_without_time(tmp_path / "resumed") == metrics_without_time(straight.run_dir)
    # Killed before its first checkpoint: only its config (and perhaps some rows) were written.
    early = tmp_path / "early"
    early.mkdir()
    (early / "config.toml").write_text((straight.run_dir / "config.toml").read_text())
    (early / "metrics.csv").write_text("generation,evaluations\n1,16\n")
    capsys.readouterr()
    assert main(["run", "--resume", str(early), "--no-progress"]) == 0
    assert f"run directory: {early} (started)" in capsys.readouterr().out
    assert metrics_without_time(early) == metrics_without_time(straight.run_dir)


def test_ctrl_c_names_the_run_directory_to_resume(tmp_path):
    endless = {k: v for k, v in XOR.items() if k != "target_fitness"} | {"generations": 100000, "checkpoint_every": 5}
    config = write_config(tmp_path / "long.toml", endless)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "evo.cli", "run", str(config), "--out", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.startswith("run directory: ") and first.rstrip().endswith("(started)")
        run_dir = first[len("run directory: ") :].rsplit(" (", 1)[0]
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest  # the output says what went wrong if the interrupt did not end the run cleanly
    assert f"evo run --resume {run_dir}" in rest
    with open(os.path.join(run_dir, "status.json")) as fh:
        assert json.load(fh)["status"] == "interrupted"


def test_json_means_stdout_holds_only_json_for_every_command(runs, digits_files, tmp_path, capsys):
    from evo.commands import COMMANDS

    _, made = runs
    xor = write_config(tmp_path / "xor.toml", {**XOR, "generations": 5, "train": {"epochs": 2}})
    commands = {
        "run": ["run", str(xor), "--out", str(tmp_path), "--no-progress"],
        "train": ["train", str(xor), "--out", str(tmp_path), "--no-progress"],
        "compare": ["compare", str(made["evo5"]), str(made["evo6"]), "--out", str(tmp_path)],
        "predict": ["predict", str(made["evo5"]), str(digits_files / "test.npz")],
        "rollout": ["rollout", str(made["cartpole"]), "--episodes", "1"],
        "export": ["export", str(made["evo5"]), "--out", str(tmp_path / "m.onnx")],
        "runs": ["runs", str(tmp_path)],
        "show": ["show", str(made["evo5"])],
    }
    assert set(commands) == set(COMMANDS)
    for name, argv in commands.items():
        assert main([*argv, "--json"]) == 0, name
        captured = capsys.readouterr()
        assert isinstance(json.loads(captured.out), (dict, list)), name
