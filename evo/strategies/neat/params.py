"""NEAT's parameters: one frozen dataclass of defaults and ranges (the strategy's and the run config's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from evo.strategies.params import PROBABILITY, param


@dataclass(frozen=True)
class NEATParams:
    """NEAT's parameters; the first six come from the run's network (:class:`networks.neat.NEATSpec`), not the user."""

    # The network layout: must be those of the NEATSpec that evaluates the genomes.
    n_inputs: int | None = param(None, ge=1, config=False, doc="inputs of the NEATSpec (required)")
    n_outputs: int | None = param(None, ge=1, config=False, doc="outputs of the NEATSpec (required)")
    max_nodes: int = param(64, ge=2, config=False, doc="node slots of the NEATSpec")
    max_connections: int = param(256, ge=1, config=False, doc="connection slots of the NEATSpec")
    hidden_activation: Literal["identity", "sigmoid", "tanh", "relu", "leaky_relu"] = param(
        "tanh", config=False, doc="activation of new hidden nodes"
    )
    feed_forward: bool = param(True, config=False, doc="False: connections may close cycles (recurrent NEAT, from network.feed_forward)")
    selection: Literal["speciation", "nsga2"] = param(
        "speciation", doc="the NEAT paper's speciation, or NSGA-II on (fitness, enabled connections)"
    )
    # Speciation (unused under NSGA-II).
    c1: float = param(1.0, ge=0.0, doc="compatibility distance: weight of excess genes")
    c2: float = param(1.0, ge=0.0, doc="compatibility distance: weight of disjoint genes")
    c3: float = param(0.4, ge=0.0, doc="compatibility distance: weight of the mean weight difference")
    compatibility_threshold: float = param(3.0, gt=0.0, doc="starting speciation threshold")
    target_species: int | None = param(None, ge=1, doc="species the threshold steers toward; unset: max(2, round(population / 15))")
    threshold_step: float = param(0.1, ge=0.0, doc="threshold change per generation")
    threshold_min: float = param(0.3, gt=0.0, doc="lowest threshold")
    normalize_min_genes: int = param(20, ge=0, doc="below this gene count the distance is not divided by it")
    stagnation: int = param(15, ge=1, doc="generations without improvement before a species dies")
    elitism: int = param(1, ge=0, doc="best genomes of a species copied unchanged")
    elitism_min_species_size: int = param(5, ge=1, doc="smallest species that keeps elites")
    survival_threshold: float = param(0.2, gt=0.0, le=1.0, doc="fraction of a species that may parent")
    interspecies_prob: float = param(0.001, **PROBABILITY, doc="probability of a mate from another species")
    # Reproduction.
    crossover_prob: float = param(0.75, **PROBABILITY, doc="probability that a child has two parents")
    disable_inherited_prob: float = param(0.75, **PROBABILITY, doc="probability that a gene disabled in a parent stays disabled")
    weight_mutation_prob: float = param(0.8, **PROBABILITY, doc="probability that a child's weights and biases mutate")
    weight_perturb_prob: float = param(0.9, **PROBABILITY, doc="per weight: perturbed with this probability, else drawn anew")
    weight_sigma: float = param(0.5, ge=0.0, doc="std of a weight perturbation")
    weight_init_std: float = param(1.0, ge=0.0, doc="std of a new weight")
    bias_init_std: float = param(1.0, ge=0.0, doc="std of a new bias")
    weight_max: float = param(8.0, gt=0.0, doc="weights and biases are clipped to +-weight_max")
    add_connection_prob: float = param(0.1, **PROBABILITY, doc="probability that a child gains a connection")
    add_node_prob: float = param(0.05, **PROBABILITY, doc="probability that a child splits a connection")
    toggle_prob: float = param(0.0, **PROBABILITY, doc="probability that a child flips a connection's enabled flag")
    add_connection_tries: int = param(20, ge=1, doc="random node pairs tried per added connection")
    response: float = param(4.9, gt=0.0, doc="every node's input gain (4.9: the paper's steepened sigmoid)")
