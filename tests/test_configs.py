"""Every shipped config validates and builds (task, network, strategy) without running."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from evo import EvolutionRun, load_config
from evo.build import NETWORK_BUILDERS, build_network, build_task, initial_genome
from evo.config import ESNConfig, MLPConfig, NetworkConfig, expect_section
from evo.seeding import STREAM_INIT, stream_seed
from networks.spec import NetworkSpec

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


def test_every_network_type_has_a_builder():
    # One entry per [network] type the config accepts: adding a network type is adding a builder.
    types = {model.model_fields["type"].annotation.__args__[0] for model in get_args(get_args(NetworkConfig)[0])}
    assert types == set(NETWORK_BUILDERS)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_init_scale_leaves_structural_genomes_alone(path):
    config = load_config(path).model_copy(update={"init_scale": 0.5})
    task = build_task(config)
    network = build_network(config, task)
    drawn = network.init_params(np.random.default_rng(stream_seed(config.seed, STREAM_INIT)), 1)[0]
    expected = drawn if network.structural_genome else drawn * 0.5
    np.testing.assert_array_equal(initial_genome(config, network), expected)
    assert isinstance(network, NetworkSpec)
    task.close()
