"""Pinned behaviour of the GA and of NEAT that the README promises, checked from outside the strategies.

GA: SBX crossover puts offspring where Deb & Agrawal's spread factor says (and blend does not); the hall of
fame keeps the best genomes alive. NEAT: explicit fitness sharing sizes each species' brood, every species
keeps its champion unchanged, and a species that stops improving for ``stagnation`` generations dies.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evo.strategies import make_strategy


# ------------------------------------------------------------------ NEAT internals, in one place
def neat_species_of(strategy) -> np.ndarray:
    """Species id of every genome of the strategy's current population (NEAT internals: update here if they move)."""
    return np.asarray(strategy.species_of_).copy()


# ------------------------------------------------------------------ GA: SBX crossover
def _offspring_of_zeros_and_ones(crossover: str, **params) -> np.ndarray:
    """One GA generation bred from equally fit all-0 and all-1 genomes, with crossover only (no mutation, no elites)."""
    n_params, population = 40, 40
    ga = make_strategy("ga", n_params, population, 0, np.zeros(n_params), crossover=crossover, cxpb=1.0, mutpb=0.0, elite=0, **params)
    genomes = np.repeat([[0.0], [1.0]], population // 2, axis=0) * np.ones((1, n_params))
    ga.ask()  # tell needs a pending population; the GA breeds from the genomes it is told
    ga.tell(genomes, np.zeros(population))
    return ga.ask()


def _sbx_uniforms(children: np.ndarray, eta: float) -> np.ndarray:
    """The uniform draw u that SBX (Deb & Agrawal 1995) turns into each child gene of parents 0 and 1.

    Children of parents 0 and 1 are 0.5 (1 -+ beta) with spread factor beta = (2u)^(1/(eta+1)) for u <= 1/2, else
    (1 / (2 (1 - u)))^(1/(eta+1)); inverting gives u, which must be uniform on (0, 1) if the children are SBX's.
    """
    mixed = children[(children != 0.0) & (children != 1.0)]  # genes bred from a 0 and a 1 (0 x 0 gives 0, 1 x 1 gives 1)
    beta = np.abs(2.0 * mixed - 1.0)
    return np.where(beta <= 1.0, 0.5 * beta ** (eta + 1.0), 1.0 - 0.5 / beta ** (eta + 1.0))


def test_ga_sbx_offspring_follow_the_spread_factor_distribution_and_differ_from_blend():
    sbx = _offspring_of_zeros_and_ones("sbx", eta=15.0)
    u = _sbx_uniforms(sbx, eta=15.0)
    assert len(u) > 300  # enough mixed pairs for the test to have power
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # SBX with eta = 15 keeps children close to their parents: |child - parent| < 0.1 for most genes.
    mixed = sbx[(sbx != 0.0) & (sbx != 1.0)]
    assert np.mean(np.minimum(mixed, 1.0 - mixed) < 0.1) > 0.8
    # eta matters: a wider SBX (eta = 2) is not eta = 15's distribution.
    assert stats.kstest(_sbx_uniforms(_offspring_of_zeros_and_ones("sbx", eta=2.0), eta=15.0), "uniform").pvalue < 1e-6
    assert stats.kstest(_sbx_uniforms(_offspring_of_zeros_and_ones("sbx", eta=2.0), eta=2.0), "uniform").pvalue > 1e-3
    # Blend (BLX-0.5) children are uniform on [-0.5, 1.5]: nothing like SBX.
    blend = _offspring_of_zeros_and_ones("blend", alpha=0.5)
    assert stats.kstest(_sbx_uniforms(blend, eta=15.0), "uniform").pvalue < 1e-6
    mixed_blend = blend[(blend != 0.0) & (blend != 1.0)]
    assert stats.kstest((mixed_blend + 0.5) / 2.0, "uniform").pvalue > 1e-3
    assert mixed_blend.min() < -0.3 and mixed_blend.max() > 1.3


def test_ga_hall_of_fame_keeps_the_best_genomes_in_the_next_population():
    """With violent mutation most offspring are worse; elitism still keeps the best-so-far alive and evaluated."""
    n_params, population, elite = 6, 12, 2
    ga = make_strategy("ga", n_params, population, 3, np.full(n_params, 2.0), sigma=1.0, indpb=1.0, elite=elite)
    seen: list[tuple[float, np.ndarray]] = []
    previous_best = -np.inf
    for _ in range(10):
        genomes = ga.ask()
        # The elites of the last generation are back, unchanged.
        top = sorted(seen, key=lambda item: -item[0])
        distinct = []
        for fitness, genome in top:
            if not any(np.array_equal(genome, g) for _, g in distinct):
                distinct.append((fitness, genome))
        for _, genome in distinct[:elite]:
            assert any(np.array_equal(genome, row) for row in genomes)
        fitness = -np.sum(genomes**2, axis=1)  # sphere, maximised; deterministic, so an elite scores the same again
        ga.tell(genomes, fitness)
        seen.extend((float(f), g.copy()) for f, g in zip(fitness, genomes))
        assert fitness.max() >= previous_best  # the best of each generation never gets worse: the elite is in it
        previous_best = fitness.max()
        best_genome, best_fitness = ga.best()
        assert best_fitness == max(f for f, _ in seen)
        np.testing.assert_array_equal(best_genome, max(seen, key=lambda item: item[0])[1])
    # Without elites the same mutation does lose the best genome at some generation: the test above can fail.
    plain = make_strategy("ga", n_params, population, 3, np.full(n_params, 2.0), sigma=1.0, indpb=1.0, elite=0)
    bests = []
    for _ in range(10):
        genomes = plain.ask()
        fitness = -np.sum(genomes**2, axis=1)
        plain.tell(genomes, fitness)
        bests.append(fitness.max())
    assert np.any(np.diff(bests) < 0)


# ------------------------------------------------------------------ NEAT: sharing, elitism, stagnation
MAX_NODES, MAX_CONNECTIONS, POPULATION = 12, 24, 40
NEAT_PARAMS = 4 * (MAX_NODES + MAX_CONNECTIONS)  # the documented layout: 4 floats per node slot and per connection slot
# Species are topologies: the weight term is off (c3 = 0) and any differing gene puts two genomes >= 1 apart.
# Children are copies of one parent (no crossover, no structural mutation), so they stay in their parent's species.
TOPOLOGY_SPECIES = {
    "n_inputs": 2,
    "n_outputs": 1,
    "max_nodes": MAX_NODES,
    "max_connections": MAX_CONNECTIONS,
    "c1": 1.0,
    "c2": 1.0,
    "c3": 0.0,
    "compatibility_threshold": 0.5,
    "threshold_step": 0.0,
    "crossover_prob": 0.0,
    "interspecies_prob": 0.0,
    "add_node_prob": 0.0,
    "add_connection_prob": 0.0,
    "weight_mutation_prob": 1.0,
    "weight_perturb_prob": 1.0,
    "elitism": 1,
    "elitism_min_species_size": 3,
}


def _speciated_neat(seed: int = 1, **overrides):
    """A NEAT whose population holds several topologies (grown by another NEAT, then loaded), species = topologies."""
    # The grower speciates the same way (its threshold travels in the state), and adds nodes and connections.
    grower = make_strategy(
        "neat",
        NEAT_PARAMS,
        POPULATION,
        seed,
        np.zeros(NEAT_PARAMS),
        **{**TOPOLOGY_SPECIES, "add_node_prob": 0.5, "add_connection_prob": 0.5},
    )
    rng = np.random.default_rng(seed)
    for _ in range(2):
        grower.tell(grower.ask(), rng.random(POPULATION))
    neat = make_strategy("neat", NEAT_PARAMS, POPULATION, seed, np.zeros(NEAT_PARAMS), **{**TOPOLOGY_SPECIES, **overrides})
    neat.load_state_dict(grower.state_dict())
    neat.tell(neat.ask(), rng.random(POPULATION))  # re-speciates by topology
    return neat


def _largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    """Hamilton's apportionment, written here: floors, then the largest remainders (ties to the lower index) get one more."""
    exact = shares / shares.sum() * total
    counts = np.floor(exact).astype(int)
    for i in sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))[: total - counts.sum()]:
        counts[i] += 1
    return counts


def _find_rows(rows: np.ndarray, population: np.ndarray) -> list[int]:
    """Index in ``population`` of each row found unchanged there (-1 when absent)."""
    return [next((i for i, g in enumerate(population) if np.array_equal(g, row)), -1) for row in rows]


def test_neat_fitness_sharing_and_per_species_elitism():
    neat = _speciated_neat()
    genomes, species = neat.ask(), neat_species_of(neat)
    ids, sizes = np.unique(species, return_counts=True)
    assert len(ids) >= 3 and sizes.max() > sizes.min()  # unequal species: sharing and plain sums part ways
    rng = np.random.default_rng(7)
    fitness = 1.0 + 0.1 * rng.random(POPULATION)
    fitness[np.flatnonzero(species == ids[np.argmax(sizes)])[0]] = 0.0  # the worst fitness, the zero of the shift
    neat.tell(genomes, fitness)
    after_genomes, after_species = neat.ask(), neat_species_of(neat)

    # Explicit fitness sharing: a species' offspring are proportional to the sum of (f - f_min) / its size.
    adjusted = fitness - fitness.min()
    shared = np.array([adjusted[species == s].sum() / (species == s).sum() for s in ids])
    expected = _largest_remainder(shared, POPULATION)
    got = np.array([(after_species == s).sum() for s in ids])
    np.testing.assert_array_equal(got, expected)
    unshared = _largest_remainder(np.array([adjusted[species == s].sum() for s in ids]), POPULATION)
    assert not np.array_equal(unshared, expected)  # without the division by size the broods differ

    # Per-species elitism: the champion of every species of >= 3 members that breeds is back unchanged, and
    # (every child's weights being perturbed) nothing else is.
    champions = {
        int(np.flatnonzero(species == s)[np.argmax(fitness[species == s])]) for s, n, c in zip(ids, sizes, expected) if n >= 3 and c > 0
    }
    champions.add(int(np.argmax(fitness)))  # the generation's champion, whatever its species' size
    unchanged = {i for i, j in enumerate(_find_rows(genomes, after_genomes)) if j >= 0}
    assert unchanged == champions


@pytest.mark.parametrize("stagnation", [2, 3])
def test_neat_stagnant_species_dies_after_stagnation_generations(stagnation):
    neat = _speciated_neat(stagnation=stagnation)
    species = neat_species_of(neat)
    ids, sizes = np.unique(species, return_counts=True)
    largest = ids[np.argmax(sizes)]
    stagnant = next(s for s in ids if s != largest)
    present = []
    for generation in range(3):
        genomes, species = neat.ask(), neat_species_of(neat)
        # The stagnant species scores 10 every time (an improvement only the first time); every other keeps improving.
        fitness = np.where(species == stagnant, 10.0, 20.0 + generation)
        fitness[np.flatnonzero(species == largest)[0]] = 0.0  # a floor, so the stagnant species' shared fitness is > 0
        neat.tell(genomes, fitness)
        present.append(bool(np.any(neat_species_of(neat) == stagnant)))
    # Improved at the first tell, then no better for `stagnation` generations: gone at the tell that makes it so.
    assert present == ([True, True, False] if stagnation == 2 else [True, True, True])
