"""NEAT on XOR: evaluations and seconds to solve, ours against the NEAT paper and neat-python.

XOR is solved when one evaluated network puts all four cases on the right
side of 0.5. For each of ``--seeds`` seeds, population ``--population``
(150, as in the paper), at most ``--generations`` generations:

  * ours: ``evo.strategies.neat.NEAT`` (default parameters) over
    ``networks.neat.NEATSpec(2, 1)`` (tanh hidden nodes, sigmoid output),
    fitness ``ParityTask(2)`` (1 - MSE) through the project's
    ``SerialEvaluator``, exactly the calls the run loop makes;
  * neat-python (when ``import neat`` works; it is not a dependency of this
    project: ``pip install neat-python`` to compare), configured as its own
    XOR example (``examples/xor/config-feedforward``: population 150,
    fitness 4 - SSE, fitness_threshold 3.9, sigmoid nodes, conn add/delete
    0.5, node add/delete 0.2, ...), with its ``FeedForwardNetwork``.

Evaluations count whole generations (population x generations) up to the
one holding the first solution. Seconds per solve are wall seconds from
building the population to that generation, in this process. Both runs also
go on to each library's own stopping rule, fitness 4 - SSE >= 3.9 (ours:
1 - MSE >= 0.975, the same rule), reported on a second line. The NEAT paper
(Stanley & Miikkulainen, 2002) reports 4,755 evaluations on average (32
generations of 150), with no failure in 100 runs.

    python benchmarks/neat_xor.py [--seeds 100] [--population 150] [--generations 300] [--no-neat-python]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evo.evaluators import SerialEvaluator  # noqa: E402
from evo.strategies.neat import NEAT  # noqa: E402
from evo.tasks.boolean import ParityTask  # noqa: E402
from networks.neat import NEATSpec  # noqa: E402

PAPER_EVALUATIONS = 4755
THRESHOLD_SSE = 0.1  # neat-python's example stops at 4 - SSE >= 3.9

# neat-python's examples/xor/config-feedforward, written inline (pop_size from --population).
NEAT_PYTHON_CONFIG = """
[NEAT]
fitness_criterion     = max
fitness_threshold     = 3.9
pop_size              = {population}
reset_on_extinction   = False
no_fitness_termination = False
seed                  = {seed}

[DefaultGenome]
activation_default      = sigmoid
activation_mutate_rate  = 0.0
activation_options      = sigmoid
aggregation_default     = sum
aggregation_mutate_rate = 0.0
aggregation_options     = sum
bias_init_mean          = 0.0
bias_init_stdev         = 1.0
bias_max_value          = 30.0
bias_min_value          = -30.0
bias_mutate_power       = 0.5
bias_mutate_rate        = 0.7
bias_replace_rate       = 0.1
compatibility_disjoint_coefficient = 1.0
compatibility_weight_coefficient   = 0.5
conn_add_prob           = 0.5
conn_delete_prob        = 0.5
enabled_default         = True
enabled_mutate_rate     = 0.01
feed_forward            = True
initial_connection      = full
node_add_prob           = 0.2
node_delete_prob        = 0.2
num_hidden              = 0
num_inputs              = 2
num_outputs             = 1
response_init_mean      = 1.0
response_init_stdev     = 0.0
response_max_value      = 30.0
response_min_value      = -30.0
response_mutate_power   = 0.0
response_mutate_rate    = 0.0
response_replace_rate   = 0.0
weight_init_mean        = 0.0
weight_init_stdev       = 1.0
weight_max_value        = 30
weight_min_value        = -30
weight_mutate_power     = 0.5
weight_mutate_rate      = 0.8
weight_replace_rate     = 0.1
single_structural_mutation = false
structural_mutation_surer  = default
bias_init_type             = gaussian
response_init_type         = gaussian
weight_init_type           = gaussian
enabled_rate_to_true_add   = 0.0
enabled_rate_to_false_add  = 0.0

[DefaultSpeciesSet]
compatibility_threshold = 3.0

[DefaultStagnation]
species_fitness_func = max
max_stagnation       = 20
species_elitism      = 2

[DefaultReproduction]
elitism            = 2
survival_threshold = 0.2
min_species_size   = 2
"""


class Outcome:
    """One seed's run: evaluations and seconds to the first solution and to the threshold, and the winner's size."""

    def __init__(self) -> None:
        self.solved_evaluations: int | None = None
        self.solved_seconds: float | None = None
        self.hidden: int | None = None
        self.threshold_evaluations: int | None = None
        self.threshold_seconds: float | None = None


def run_ours(seed: int, population: int, generations: int) -> Outcome:
    """NEAT on XOR through the project's strategy, task and serial evaluator."""
    outcome = Outcome()
    task = ParityTask(2)
    started = time.perf_counter()
    spec = NEATSpec(2, 1)
    strategy = NEAT(spec.n_params, population, seed, np.zeros(spec.n_params), n_inputs=2, n_outputs=1)
    evaluator = SerialEvaluator(run_seed=seed)
    evaluations = 0
    for generation in range(1, generations + 1):
        genomes = strategy.ask()
        fitness = evaluator.evaluate(task, spec, genomes, generation).fitness
        evaluations += len(genomes)
        if outcome.solved_evaluations is None:
            # Solving needs every error below 0.5, so 1 - MSE > 0.75: only those are looked at.
            candidates = np.flatnonzero(fitness > 0.75)
            if len(candidates):
                outputs = spec.forward(genomes[candidates], task.inputs)[:, :, 0]
                right = np.all((outputs > 0.5) == (task.targets[:, 0] > 0.5), axis=1)
                if right.any():
                    outcome.solved_evaluations = evaluations
                    outcome.solved_seconds = time.perf_counter() - started
                    outcome.hidden = int(spec.count_hidden(genomes[candidates[int(np.argmax(right))]]))
        if fitness.max() >= 1.0 - THRESHOLD_SSE / 4:
            outcome.threshold_evaluations = evaluations
            outcome.threshold_seconds = time.perf_counter() - started
            break
        strategy.tell(genomes, fitness)
    return outcome


def run_neat_python(seed: int, population: int, generations: int, config_dir: str) -> Outcome:
    """neat-python's own XOR example (its config, its fitness 4 - SSE, its FeedForwardNetwork)."""
    import neat

    path = os.path.join(config_dir, f"xor-{seed}.cfg")
    with open(path, "w") as fh:
        fh.write(NEAT_PYTHON_CONFIG.format(population=population, seed=seed))
    xor_inputs = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
    xor_outputs = [0.0, 1.0, 1.0, 0.0]
    outcome = Outcome()
    counter = {"evaluations": 0}

    def eval_genomes(genomes, config) -> None:
        for _, genome in genomes:
            net = neat.nn.FeedForwardNetwork.create(genome, config)
            genome.fitness = 4.0
            right = True
            for xi, xo in zip(xor_inputs, xor_outputs):
                output = net.activate(xi)[0]
                genome.fitness -= (output - xo) ** 2
                right = right and ((output > 0.5) == (xo > 0.5))
            if right and outcome.solved_seconds is None:
                outcome.hidden = sum(1 for key in genome.nodes if key not in config.genome_config.output_keys)
                outcome.solved_seconds = -1.0  # stamped after the whole generation, like ours
        counter["evaluations"] += len(genomes)
        if outcome.solved_seconds == -1.0:
            outcome.solved_evaluations = counter["evaluations"]
            outcome.solved_seconds = time.perf_counter() - started

    started = time.perf_counter()
    config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet, neat.DefaultStagnation, path)
    pop = neat.Population(config, seed=seed)
    try:
        winner = pop.run(eval_genomes, generations)
    except neat.CompleteExtinctionException:
        winner = None
    if winner is not None and winner.fitness is not None and winner.fitness >= 4.0 - THRESHOLD_SSE:
        outcome.threshold_evaluations = counter["evaluations"]
        outcome.threshold_seconds = time.perf_counter() - started
    return outcome


def summarise(name: str, outcomes: list[Outcome]) -> dict[str, float]:
    """Print one library's figures and return them."""
    solved = [o for o in outcomes if o.solved_evaluations is not None]
    reached = [o for o in outcomes if o.threshold_evaluations is not None]
    evals = [o.solved_evaluations for o in solved]
    seconds = [o.solved_seconds for o in solved]
    figures = {
        "success": len(solved) / len(outcomes),
        "mean_evaluations": float(np.mean(evals)) if evals else float("nan"),
        "median_evaluations": float(np.median(evals)) if evals else float("nan"),
        "mean_seconds": float(np.mean(seconds)) if seconds else float("nan"),
        "median_seconds": float(np.median(seconds)) if seconds else float("nan"),
        "mean_hidden": float(np.mean([o.hidden for o in solved])) if solved else float("nan"),
        "threshold_mean_evaluations": float(np.mean([o.threshold_evaluations for o in reached])) if reached else float("nan"),
        "threshold_median_seconds": float(np.median([o.threshold_seconds for o in reached])) if reached else float("nan"),
    }
    print(
        f"{name:12s} solved {len(solved)}/{len(outcomes)}  evaluations mean {figures['mean_evaluations']:7.0f} "
        f"median {figures['median_evaluations']:7.0f} (std {statistics.pstdev(evals) if evals else float('nan'):5.0f})  "
        f"seconds/solve mean {figures['mean_seconds']:.4f} median {figures['median_seconds']:.4f}  "
        f"winner hidden nodes {figures['mean_hidden']:.2f}"
    )
    print(
        f"{'':12s} to 4 - SSE >= 3.9: reached {len(reached)}/{len(outcomes)}  evaluations mean "
        f"{figures['threshold_mean_evaluations']:7.0f}  seconds median {figures['threshold_median_seconds']:.4f}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--population", type=int, default=150)
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--no-neat-python", action="store_true", help="skip neat-python even when installed")
    args = parser.parse_args()

    print(
        f"XOR, population {args.population}, {args.seeds} seeds, at most {args.generations} generations; "
        "solved = all four cases on the right side of 0.5"
    )
    ours = [run_ours(seed, args.population, args.generations) for seed in range(args.seeds)]
    mine = summarise("ours", ours)
    print(f"{'':12s} NEAT paper: 4,755 evaluations on average -> ours uses {mine['mean_evaluations'] / PAPER_EVALUATIONS:.2f}x as many")

    if args.no_neat_python:
        return
    try:
        import neat  # noqa: F401
    except ImportError:
        print("neat-python is not installed (pip install neat-python to compare); skipped")
        return
    with tempfile.TemporaryDirectory() as config_dir:
        theirs = [run_neat_python(seed, args.population, args.generations, config_dir) for seed in range(args.seeds)]
    other = summarise("neat-python", theirs)
    print(
        f"ratios (neat-python / ours): evaluations to solve {other['mean_evaluations'] / mine['mean_evaluations']:.2f}x, "
        f"median seconds per solve {other['median_seconds'] / mine['median_seconds']:.2f}x, "
        f"mean seconds per solve {other['mean_seconds'] / mine['mean_seconds']:.2f}x; "
        f"to 3.9: evaluations {other['threshold_mean_evaluations'] / mine['threshold_mean_evaluations']:.2f}x, "
        f"median seconds {other['threshold_median_seconds'] / mine['threshold_median_seconds']:.2f}x"
    )


if __name__ == "__main__":
    main()
