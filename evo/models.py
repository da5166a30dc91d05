"""Writing the model of a run: the network a genome stands for, with the task's preprocessing and output meaning.

The reading side, and the file format, are :mod:`networks.model`
(``networks.load_model``); this module knows what evolution's genomes stand
for: a searched architecture decodes to a plain network, and a task that
trains weights inside its fitness hands back the trained network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evo.tasks.base import Task, TrainsWeights
from networks.model import MODEL_FILE, PARETO_MODELS, save_model
from networks.spec import Decodable, NetworkSpec

__all__ = ["MODEL_FILE", "PARETO_MODELS", "usable_network", "write_model"]


def usable_network(task: Task, network: NetworkSpec, genome: np.ndarray, seed: int | None) -> tuple[NetworkSpec, np.ndarray]:
    """The plain network and parameters a genome stands for: trained inside the fitness, decoded, or as it is."""
    if isinstance(task, TrainsWeights):
        return task.trained(network, genome, seed)
    if isinstance(network, Decodable):
        return network.decode(genome)
    return network, np.asarray(genome, dtype=np.float64)


def write_model(
    stem: str | Path, task: Task, spec: NetworkSpec, params: np.ndarray, source: str, figures: dict[str, Any] | None = None
) -> Path:
    """``<stem>.json`` / ``.npz``: the network with the task's preprocessing and output meaning, and its held-out figures."""
    held_out = {
        k: v for k, v in (figures or {}).items() if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    }
    return save_model(stem, spec, params, task.preprocessing(), task.outputs(), task=task.describe(), source=source, figures=held_out)


def model_stem(run_dir: Path) -> Path:
    """Where a run directory's model goes (``model.json`` / ``model.npz``)."""
    return run_dir / Path(MODEL_FILE).stem


def member_stem(run_dir: Path, index: int) -> Path:
    """Where Pareto-front member ``index``'s model goes."""
    return run_dir / PARETO_MODELS / f"member-{index:03d}"
