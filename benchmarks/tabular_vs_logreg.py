"""Raw tabular data as users have it: evolution and backprop against logistic regression on the same split.

scikit-learn's bundled tabular classification sets (iris, wine, breast cancer)
are written out as plain CSV files (raw features, label last) and run as a
user would: a ``dataset`` task with its defaults (features standardised on
the training split), a 1-hidden-layer MLP evolved by SNES (``evo run``) and
trained by Adam (``evo train``). Logistic regression (scikit-learn, on the
same standardised training split) is the reference. For each set: mean test
accuracy over split seeds 0..S-1 and the gap to logistic regression; the
last column is backprop with ``standardize = false`` (the raw features).

    python benchmarks/tabular_vs_logreg.py            # 5 split seeds, about 3 min here
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn import datasets  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from evo.baselines import make_training_run  # noqa: E402
from evo.build import build_task  # noqa: E402
from evo.config import parse_config  # noqa: E402
from evo.run import run_evolution  # noqa: E402

SETS = {"iris": datasets.load_iris, "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}


def _config(path: Path, split_seed: int, out: Path, standardize: bool = True) -> dict:
    return {
        "name": path.stem,
        "seed": split_seed,
        "generations": 300,
        "out": str(out),
        "network": {"hidden": [8]},
        "task": {"type": "dataset", "path": str(path), "split_seed": split_seed, "standardize": standardize},
        "strategy": {"type": "snes", "population": 40},
        "train": {"epochs": 300},
    }


def main() -> None:
    """Write the CSVs, run the three methods per split seed, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    print(f"mean test accuracy over split seeds 0..{args.splits - 1} (gap to logistic regression)")
    print(f"{'data set':<14} {'logistic regression':>20} {'evolution (snes)':>22} {'backprop (adam)':>22} {'backprop, raw features':>24}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, load in SETS.items():
            data = load()
            path = Path(tmp) / f"{name}.csv"
            np.savetxt(path, np.column_stack([data.data, data.target]), delimiter=",", fmt="%.10g")
            scores: dict[str, list[float]] = {"logreg": [], "evolution": [], "backprop": [], "raw": []}
            for split_seed in range(args.splits):
                config = parse_config(_config(path, split_seed, Path(tmp) / "runs"))
                split = build_task(config).split
                reference = LogisticRegression(max_iter=5000).fit(split.X_train, split.y_train)
                scores["logreg"].append(float(reference.score(split.X_test, split.y_test)))
                scores["evolution"].append(run_evolution(config).summary["test_accuracy"])
                scores["backprop"].append(make_training_run(config, progress=False).run().summary["test_accuracy"])
                raw = parse_config(_config(path, split_seed, Path(tmp) / "runs", standardize=False))
                scores["raw"].append(make_training_run(raw, progress=False).run().summary["test_accuracy"])
            means = {k: statistics.fmean(v) for k, v in scores.items()}
            cells = [f"{means[k]:.4f} ({means[k] - means['logreg']:+.4f})" for k in ("evolution", "backprop", "raw")]
            print(f"{name:<14} {means['logreg']:>20.4f} {cells[0]:>22} {cells[1]:>22} {cells[2]:>24}", flush=True)


if __name__ == "__main__":
    main()
