"""Bad input: one clear line naming the field, the value and what is allowed; exit 2; no run directory."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from evo import ConfigError, load_config, parse_config
from tests.helpers import XOR, write_config


def _cli(tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "evo.cli", "run", *args, "--out", str(tmp_path / "runs"), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )


BAD = {
    "unknown key": ({**XOR, "generation": 5}, ["generation", "unknown key", "generations"]),
    "unknown nested key": ({**XOR, "strategy": {"type": "cmaes", "sigmaa": 1.0}}, ["strategy.sigmaa", "unknown key", "sigma"]),
    "wrong type": ({**XOR, "generations": "ten"}, ["generations", "'ten'", "integer"]),
    "out of range": ({**XOR, "strategy": {"type": "cmaes", "population": 1}}, ["strategy.population", "1", "greater than or equal to 2"]),
    "string for an integer": ({**XOR, "strategy": {"type": "cmaes", "population": "16"}}, ["strategy.population", "'16'", "valid integer"]),
    "string for a number": ({**XOR, "strategy": {"type": "cmaes", "sigma": "0.5"}}, ["strategy.sigma", "'0.5'", "valid number"]),
    "float for an integer": ({**XOR, "generations": 10.0}, ["generations", "10.0", "valid integer"]),
    "integer for a boolean": ({**XOR, "strategy": {"type": "snes", "antithetic": 1}}, ["strategy.antithetic", "1", "valid boolean"]),
    "unknown activation": ({**XOR, "network": {"activation": "swish"}}, ["network.activation", "swish", "tanh"]),
    "unknown strategy": ({**XOR, "strategy": {"type": "pso"}}, ["strategy.type", "pso", "cmaes"]),
    "missing dataset": (
        {**XOR, "task": {"type": "dataset", "path": "nowhere/data.csv"}},
        ["task.path", "nowhere/data.csv", "does not exist"],
    ),
    "unknown environment": ({**XOR, "task": {"type": "control", "env_id": "NoSuchEnv-v9"}}, ["NoSuchEnv-v9", "not registered"]),
    "discrete observations": ({**XOR, "task": {"type": "control", "env_id": "FrozenLake-v1"}}, ["FrozenLake-v1", "Box"]),
    "esn without a series": ({**XOR, "network": {"type": "esn"}}, ["network.type = 'esn'", "timeseries"]),
    "series without an esn": ({**XOR, "task": {"type": "timeseries"}}, ["network.type = 'mlp'", "'esn'"]),
    "unknown recurrent cell": ({**XOR, "network": {"type": "rnn", "cell": "rnn"}}, ["network.cell", "'rnn'", "'lstm'"]),
    "observation index out of range": (
        {**XOR, "task": {"type": "control", "env_id": "CartPole-v1", "observe": [0, 5]}},
        ["task.observe = [0, 5]", "0..3"],
    ),
    "rnn steps that do not divide a sample": ({**XOR, "network": {"type": "rnn", "steps": 3}}, ["network.steps = 3", "2 values"]),
    "unknown dtype": ({**XOR, "network": {"dtype": "float16"}}, ["network.dtype", "'float16'", "'float32'"]),
    "float32 for a float64-only network": (
        {**XOR, "network": {"type": "neat", "dtype": "float32"}, "strategy": {"type": "neat"}},
        ["network.dtype = 'float32'", "'neat'", "'mlp'"],
    ),
    "esn size range": (
        {**XOR, "network": {"type": "esn"}, "task": {"type": "timeseries", "mode": "topology", "min_units": 60, "max_units": 50}},
        ["min_units", "60", "max_units"],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_exits_2_with_one_clear_line_and_no_run_directory(tmp_path, name):
    data, must_mention = BAD[name]
    cfg = write_config(tmp_path / "bad.toml", data)
    proc = _cli(tmp_path, str(cfg))
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line]
    assert len(lines) == 1, proc.stderr
    for word in must_mention:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "runs").exists()


def test_bad_command_line_values_exit_2(tmp_path):
    cfg = write_config(tmp_path / "xor.toml", XOR)
    for args in (["--population", "0"], ["--generations", "x"], ["--seed", "-1"]):
        proc = _cli(tmp_path, str(cfg), *args)
        assert proc.returncode == 2, args
        assert args[0] in proc.stderr
    proc = _cli(tmp_path, str(cfg), "--ray-address", "127.0.0.1:1")  # nobody listens on port 1
    assert proc.returncode == 2 and "evaluator.address = '127.0.0.1:1'" in proc.stderr
    proc = _cli(tmp_path, str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    (tmp_path / "broken.toml").write_text("generations = = 3\n")
    proc = _cli(tmp_path, str(tmp_path / "broken.toml"))
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_integers_are_accepted_where_numbers_are_expected():
    config = parse_config({**XOR, "target_fitness": 1, "strategy": {"type": "cmaes", "sigma": 1}})
    assert config.strategy.sigma == 1.0 and isinstance(config.strategy.sigma, float)
    assert config.target_fitness == 1.0 and isinstance(config.target_fitness, float)


def test_arrays_are_read_into_tuples_with_strict_items():
    network = {"type": "cnn", "conv": [{"filters": 2}], "input_shape": [1, 8, 8]}
    assert parse_config({**XOR, "network": network}).network.input_shape == (1, 8, 8)
    with pytest.raises(ConfigError, match=r"network.input_shape\[1\] = '8'"):
        parse_config({**XOR, "network": {**network, "input_shape": [1, "8", 8]}})


# The command line's integer options and the config field each one sets.
CLI_OPTIONS = [
    ("run", "--seed", "seed"),
    ("run", "--generations", "generations"),
    ("run", "--population", "strategy.population"),
    ("run", "--workers", "evaluator.workers"),
    ("train", "--seed", "seed"),
    ("train", "--epochs", "train.epochs"),
    ("compare", "--seed", "seed"),
    ("compare", "--generations", "generations"),
    ("compare", "--epochs", "train.epochs"),
]


@pytest.mark.parametrize(("command", "option", "path"), CLI_OPTIONS, ids=lambda x: str(x))
def test_command_line_ranges_are_the_configs(capsys, command, option, path):
    from evo.cli import build_parser
    from evo.config import field_bounds

    low, high = field_bounds(path)
    assert low is not None
    edges = [(low, True), (low - 1, False)] + ([(high, True), (high + 1, False)] if high is not None else [])
    for value, accepted in edges:
        argv = [command, "cfg.toml", option, str(value)]
        if accepted:
            assert getattr(build_parser().parse_args(argv), option[2:]) == value
        else:
            with pytest.raises(SystemExit) as exit_info:
                build_parser().parse_args(argv)
            assert exit_info.value.code == 2
            assert option in capsys.readouterr().err


def test_command_line_population_needs_two(tmp_path):
    cfg = write_config(tmp_path / "xor.toml", XOR)
    proc = _cli(tmp_path, str(cfg), "--population", "1")
    assert proc.returncode == 2 and "--population" in proc.stderr and "1 is not in [2, " in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_strategy_sections_come_from_the_params_dataclasses():
    from evo.config import STRATEGY_SECTIONS
    from evo.config.strategies import SECTION_BASES
    from evo.strategies import STRATEGIES
    from evo.strategies.params import config_fields, field_range

    templated = {name: cls for name, cls in STRATEGIES.items() if cls.params_type is not None}
    assert templated
    for name, cls in templated.items():
        section = STRATEGY_SECTIONS[name]
        own = {f.name for f in config_fields(cls.params_type)}
        settings_for_others = set(SECTION_BASES[name].model_fields) if name in SECTION_BASES else set()
        assert set(section.model_fields) == own | {"type", "population"} | settings_for_others
        assert section.model_fields["population"].default == cls.default_population
        for f in config_fields(cls.params_type):
            low = field_range(f).ge if field_range(f).ge is not None else field_range(f).gt
            if low is None:
                continue
            with pytest.raises(ConfigError) as error:
                parse_config({**XOR, "strategy": {"type": name, f.name: low - 1}})
            message = str(error.value)
            assert len(message.splitlines()) == 1 and f"strategy.{f.name} = {low - 1!r}" in message, message


def test_overrides_are_validated_and_applied(tmp_path):
    cfg = write_config(tmp_path / "xor.toml", XOR)
    config = load_config(cfg, seed=9, generations=7, population=20, workers=2, out="elsewhere")
    assert (config.seed, config.generations, config.strategy.population, config.out) == (9, 7, 20, "elsewhere")
    assert config.evaluator.type == "ray" and config.evaluator.workers == 2
    with pytest.raises(ConfigError, match="strategy.population"):
        load_config(cfg, population=1)


def test_user_dataset_csv_and_npz_run(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    with open(tmp_path / "d.csv", "w") as fh:
        fh.write("a,b,c,label\n")
        for xi, yi in zip(X, y):
            fh.write(f"{xi[0]},{xi[1]},{xi[2]},{'yes' if yi else 'no'}\n")
    for path, extra in ((tmp_path / "d.npz", {}), (tmp_path / "d.csv", {"label_column": "label"})):
        config = parse_config({**XOR, "target_fitness": None, "generations": 30, "task": {"type": "dataset", "path": str(path), **extra}})
        from evo import run_evolution

        result = run_evolution(config, run_dir=tmp_path / f"run-{path.suffix[1:]}")
        assert result.summary["task"]["n_test"] == 24
        assert result.summary["test_accuracy"] >= 0.8  # a linearly separable problem
