"""Every shipped config validates and builds (task, network, strategy) without running."""

from __future__ import annotations

from pathlib import Path

import pytest

from evo import EvolutionRun, load_config
from evo.config import ESNConfig, MLPConfig, expect_section

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.toml"))


def test_the_issue_configs_exist():
    names = {p.stem for p in CONFIGS}
    for required in ("xor", "digits-mlp", "cartpole", "lunarlander", "digits-cnn", "mackey-glass-esn", "xor-neat", "cartpole-neat"):
        assert required in names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds(path):
    config = load_config(path)
    assert config.name == path.stem
    run = EvolutionRun(config, progress=False)
    genomes = run.strategy.ask()
    assert genomes.shape == (config.strategy.population, run.network.n_params)
    run.task.close()


def test_expect_section_reads_one_member_of_a_section_union():
    config = load_config(next(p for p in CONFIGS if p.stem == "xor"))
    assert expect_section(config.network, MLPConfig, "network") is config.network
    with pytest.raises(TypeError, match="network: expected section type ESNConfig, got MLPConfig"):
        expect_section(config.network, ESNConfig, "network")
