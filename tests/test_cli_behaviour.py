"""What the README promises of the `evo` command: the embedded default run, and `--resume` from the shell."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

from evo import parse_config, run_evolution
from evo.cli import main
from tests.helpers import XOR, metrics_without_time


def test_evo_run_without_a_config_runs_the_embedded_cartpole_default(tmp_path, ray_local, capsys):
    """`evo run` alone: CartPole-v1, a 4-16-2 network, CMA-ES, Ray with 2 workers, test_mean_return over 100 episodes.

    Run in this process (sharing the session's Ray instance) with one generation of 4, the overrides the CLI offers.
    """
    code = main(["run", "--generations", "1", "--population", "4", "--out", str(tmp_path), "--no-progress", "--json"])
    assert code == 0
    captured = capsys.readouterr()
    (run_dir,) = tmp_path.iterdir()
    # --json: stdout is the summary and nothing else; the human lines (the directory first, as the run starts) go to stderr
    assert captured.err.index(f"run directory: {run_dir} (started)") < captured.err.index("held-out: test_mean_return")
    assert run_dir.name.startswith("default-cartpole-")
    summary = json.loads(captured.out)
    assert summary == json.loads((run_dir / "summary.json").read_text())
    assert summary["network"]["layer_sizes"] == [4, 16, 2]
    assert summary["strategy"]["type"] == "cmaes" and summary["strategy"]["population"] == 4
    assert summary["evaluator"]["type"] == "ray" and summary["evaluator"]["workers"] == 2
    assert summary["task"]["env_id"] == "CartPole-v1" and summary["test_episodes"] == 100
    assert summary["generations"] == 1 and summary["evaluations"] == 4
    assert 8.0 <= summary["test_mean_return"] <= 500.0  # CartPole-v1 pays 1 per step; an episode lasts 8 to 500 steps
    with open(run_dir / "config.toml", "rb") as fh:
        written = tomllib.load(fh)
    assert (written["generations"], written["strategy"]["population"], written["target_fitness"]) == (1, 4, 500.0)
    assert (written["seed"], written["strategy"]["sigma"], written["task"]["episodes"]) == (0, 0.5, 5)


def test_evo_run_resume_from_the_shell_continues_to_the_uninterrupted_result(tmp_path):
    base = {**XOR, "generations": 6, "target_fitness": None, "checkpoint_every": 2}
    straight = run_evolution(parse_config(base), run_dir=tmp_path / "straight")
    interrupted = run_evolution(parse_config({**base, "generations": 3}), run_dir=tmp_path / "resumed")
    assert len(interrupted.metrics) == 3
    proc = subprocess.run(
        [sys.executable, "-m", "evo.cli", "run", "--resume", str(tmp_path / "resumed"), "--generations", "6", "--no-progress"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"run directory: {tmp_path / 'resumed'}" in proc.stdout and "generations 6" in proc.stdout
    assert metrics_without_time(tmp_path / "resumed") == metrics_without_time(straight.run_dir)
    resumed = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert resumed["best_fitness"] == straight.summary["best_fitness"]
    assert resumed["test_accuracy"] == straight.summary["test_accuracy"]
    with open(tmp_path / "resumed" / "config.toml", "rb") as fh:
        assert tomllib.load(fh)["generations"] == 6  # the new total is recorded


def test_evo_run_resume_refuses_other_overrides_and_a_folder_without_checkpoint(tmp_path, capsys):
    run_evolution(parse_config({**XOR, "generations": 2, "target_fitness": None}), run_dir=tmp_path / "r")
    assert main(["run", "--resume", str(tmp_path / "r"), "--seed", "3", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--seed cannot change" in err and "--generations, --workers, --ray-address" in err
    (tmp_path / "empty").mkdir()
    assert main(["run", "--resume", str(tmp_path / "empty"), "--no-progress"]) == 2
    assert "not a run directory (no config.toml there)" in capsys.readouterr().err
