"""Same config and seed, same metrics: serial, Ray with 1 or 2 workers, any chunk size, a 2-node cluster."""

from __future__ import annotations

import pytest

from evo import parse_config, run_evolution
from tests.helpers import CARTPOLE, DIGITS, metrics_without_time

CASES = {
    "cartpole-ga": CARTPOLE,
    "digits-snes": DIGITS,
    # configs/digits-mlp-fast.toml's recipe in small: PGPE on a float32 network; and CR-FM-NES
    "digits-pgpe-float32": {
        **DIGITS,
        "network": {**DIGITS["network"], "dtype": "float32"},
        "strategy": {"type": "pgpe", "population": 10, "sigma": 0.1, "max_speed": 0.2, "weight_decay": 0.001},
    },
    "digits-crfmnes": {**DIGITS, "strategy": {"type": "crfmnes", "population": 10, "sigma": 0.1}},
}


def _run(tmp_path, base, name, evaluator):
    return run_evolution(parse_config({**base, "evaluator": evaluator}), run_dir=tmp_path / name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_serial_chunk_sizes_do_not_change_results(tmp_path, case):
    base = CASES[case]
    reference = metrics_without_time(_run(tmp_path, base, "whole", {"type": "serial"}).run_dir)
    for chunk in (1, 5):
        other = metrics_without_time(_run(tmp_path, base, f"chunk{chunk}", {"type": "serial", "chunk_size": chunk}).run_dir)
        assert other == reference, f"chunk_size={chunk}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_ray_with_one_or_two_workers_matches_serial(tmp_path, ray_local, case):
    base = CASES[case]
    reference = _run(tmp_path, base, "serial", {"type": "serial"})
    for workers, chunk in ((1, "auto"), (2, "auto"), (2, 3)):
        result = _run(tmp_path, base, f"ray{workers}-{chunk}", {"type": "ray", "workers": workers, "chunk_size": chunk})
        assert metrics_without_time(result.run_dir) == metrics_without_time(reference.run_dir), (workers, chunk)
        assert result.summary["evaluator"]["type"] == "ray"
        assert result.summary.get("test_accuracy", result.summary.get("test_mean_return")) == reference.summary.get(
            "test_accuracy", reference.summary.get("test_mean_return")
        )
