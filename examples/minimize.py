"""evo.minimize: a Python function minimised on the run loop, like scipy.optimize or pycma's fmin.

python examples/minimize.py     (about 15 s here)
"""

import numpy as np

import evo
from evo.functions import rosenbrock


def main() -> None:
    """Rosenbrock in 10-D with CMA-ES, then a lambda with SNES on two Ray workers."""
    result = evo.minimize(
        rosenbrock, dimension=10, bounds=(-5, 5), strategy="cmaes", budget=20_000, seed=1, options={"active": True}, target=1e-8
    )
    print(
        f"rosenbrock: value {result.value:.3g} after {result.evaluations} evaluations at {np.round(result.solution, 4)}; {result.run_dir}"
    )
    result = evo.minimize(lambda x: float(np.sum((x - 0.5) ** 2)), dimension=5, bounds=(-2, 2), strategy="snes", budget=3_000, workers=2)
    print(f"lambda on Ray: value {result.value:.3g}, stopped by {result.stopped_by}")


if __name__ == "__main__":
    main()
