"""What a run loop knows, :class:`RunState`, and its checkpoint on disk.

A checkpoint is ``state.json`` (the scalars, the strategy's JSON-able state,
the names of the table columns) beside ``state-<generation>.npz`` (the
genomes, the strategy's arrays, the metrics and validation rows column by
column). Both are written atomically, ``state.json`` last, and loading them
runs no code: no pickle.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evo.files import atomic_save_npz, atomic_write_json, load_npz, read_metrics

if TYPE_CHECKING:
    from evo.config import RunConfig


@dataclass
class RunState:
    """Everything the run loop knows; checkpointed as a whole (arrays to ``.npz``, the rest to JSON).

    For a training run ``generation`` counts epochs and the evolution fields stay at their defaults.
    """

    generation: int = 0
    evaluations: int = 0
    failures: int = 0
    wall_seconds: float = 0.0
    best_seen_fitness: float = -math.inf
    best_seen: np.ndarray | None = None
    selected_score: float = -math.inf
    selected: np.ndarray | None = None
    #: the metrics rows so far (metrics.csv)
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: the validation rows so far (validation.csv)
    validations: list[dict[str, Any]] = field(default_factory=list)
    #: why the loop ended: generations, target_fitness, max_seconds, stopped (or epochs, early_stopping)
    stopped_by: str | None = None

    def to_checkpoint(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The JSON part and the arrays part; tables (lists of rows) go column by column into the arrays."""
        scalars: dict[str, Any] = {"tables": {}}
        arrays: dict[str, np.ndarray] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                arrays[f.name] = value
            elif isinstance(value, list):
                columns = list(dict.fromkeys(key for row in value for key in row))
                scalars["tables"][f.name] = columns
                arrays.update({f"{f.name}.{c}": _column([row.get(c) for row in value]) for c in columns})
            else:
                scalars[f.name] = value
        return scalars, arrays

    @classmethod
    def from_checkpoint(cls, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> RunState:
        """Inverse of :meth:`to_checkpoint`; a JSON null (a non-finite float) restores the field's default."""
        state = cls()
        for f in fields(cls):
            if f.name in arrays:
                setattr(state, f.name, np.asarray(arrays[f.name], dtype=np.float64))
            elif scalars.get(f.name) is not None:
                setattr(state, f.name, scalars[f.name])
        for name, columns in scalars.get("tables", {}).items():
            values = {c: _uncolumn(arrays[f"{name}.{c}"]) for c in columns}
            n_rows = len(values[columns[0]]) if columns else 0
            setattr(state, name, [{c: values[c][i] for c in columns} for i in range(n_rows)])
        return state


def _column(values: list[Any]) -> np.ndarray:
    """One table column as an array: int64 when every value is an int, else float64 with NaN for None."""
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _uncolumn(array: np.ndarray) -> list[Any]:
    if array.dtype.kind in "iu":
        return [int(v) for v in array.tolist()]
    return [None if math.isnan(v) else float(v) for v in array.tolist()]


def save_checkpoint(directory: Path, state: RunState, strategy_state: dict[str, Any]) -> None:
    """Write ``state-<generation>.npz`` then ``state.json`` naming it (so a reader sees one whole checkpoint), drop older ones."""
    scalars, arrays = state.to_checkpoint()
    arrays = {f"run.{k}": v for k, v in arrays.items()}
    arrays.update({f"strategy.{k}": v for k, v in strategy_state.items() if isinstance(v, np.ndarray)})
    name = f"state-{state.generation:08d}.npz"
    atomic_save_npz(directory / name, arrays)
    strategy_json = {k: v for k, v in strategy_state.items() if not isinstance(v, np.ndarray)}
    atomic_write_json(directory / "state.json", {**scalars, "arrays": name, "strategy": strategy_json})
    for old in directory.glob("state-*.npz"):
        if old.name != name:
            old.unlink()


def load_checkpoint(directory: Path) -> tuple[RunState, dict[str, Any]]:
    """The RunState and the strategy's state of the checkpoint in ``directory`` (no code runs: JSON and plain arrays)."""
    data = json.loads((directory / "state.json").read_text())
    arrays = load_npz(directory / data["arrays"])
    run_arrays = {k[len("run.") :]: v for k, v in arrays.items() if k.startswith("run.")}
    state = RunState.from_checkpoint(data, run_arrays)
    if "tables" not in data:  # a checkpoint from before the rows were part of it: they are in metrics.csv
        state.rows = [r for r in read_metrics(directory.parent / "metrics.csv") if r["generation"] <= state.generation]
    strategy_state = {**data["strategy"], **{k[len("strategy.") :]: v for k, v in arrays.items() if k.startswith("strategy.")}}
    return state, strategy_state


@dataclass(frozen=True)
class RunInfo:
    """What a reporter learns of the run at its start."""

    run_dir: Path
    config: RunConfig
    name: str
    #: generations (evolution) or epochs (training) the run is configured for
    total: int
    #: "evolution" or "training"
    kind: str
    #: continued from a checkpoint (the state holds the rows so far)
    resumed: bool = False
