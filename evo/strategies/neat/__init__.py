"""NEAT (NeuroEvolution of Augmenting Topologies) as a package.

- :mod:`.innovation`: the per-run registry of global innovation numbers;
- :mod:`.genes`: genomes as flat rows plus node ids and innovation numbers;
- :mod:`.speciation`: compatibility distance, species, fitness sharing, stagnation;
- :mod:`.reproduction`: crossover aligned by innovation, weight and structural mutations;
- :mod:`.strategy`: :class:`NEAT`, the ask/tell strategy (speciation or NSGA-II selection).
"""

from evo.strategies.neat.genes import Genes, match_rows
from evo.strategies.neat.innovation import InnovationRegistry
from evo.strategies.neat.speciation import Species, compatibility_distances
from evo.strategies.neat.strategy import NEAT

__all__ = ["NEAT", "Genes", "InnovationRegistry", "Species", "compatibility_distances", "match_rows"]
