"""evo: neuroevolution of NumPy networks with DEAP strategies and Ray evaluation.

In a notebook::

    from evo import load_config, run_evolution
    result = run_evolution("configs/xor.toml", seed=1)
    result.summary["test_accuracy"], result.run_dir
"""

from evo.config import ConfigError, RunConfig, load_config, parse_config
from evo.minimize import MinimizeResult, minimize
from evo.run import EvolutionRun, RunResult, read_metrics, run_evolution

__all__ = [
    "ConfigError",
    "RunConfig",
    "load_config",
    "parse_config",
    "EvolutionRun",
    "MinimizeResult",
    "minimize",
    "RunResult",
    "read_metrics",
    "run_evolution",
]
