"""Atomic, pickle-free files: write to a temporary name, then rename."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) so readers see the old file or the new one, never half of it."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` so readers see the old file or the new one, never half of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str | Path, data: Any) -> None:
    """JSON with sorted keys and no NaN/inf (they become null)."""
    atomic_write_text(path, json.dumps(_finite(data), indent=2, sort_keys=True) + "\n")


def atomic_save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` through a temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, allow_pickle=False, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)


def save_genome(stem: str | Path, params: np.ndarray, description: dict[str, Any]) -> None:
    """A genome as ``<stem>.npz`` (``params``) beside ``<stem>.json`` (what rebuilds and explains it)."""
    stem = Path(stem)
    atomic_save_npz(stem.with_name(stem.name + ".npz"), {"params": params})
    atomic_write_json(stem.with_name(stem.name + ".json"), description)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` file; object arrays (pickles) are refused."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def new_run_dir(out: str | Path, prefix: str) -> Path:
    """Create ``out/<prefix>-<timestamp>`` (suffixed -2, -3... if taken) and return it."""
    import datetime as _dt

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(out) / f"{prefix}-{stamp}"
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def open_run_dir(run_dir: str | Path | None, out: str | Path, prefix: str, config_toml: str) -> Path:
    """The run directory: ``run_dir`` created (must be new) or ``out/<prefix>-<timestamp>``, with its config.toml."""
    if run_dir is not None:
        path = Path(run_dir)
        path.mkdir(parents=True, exist_ok=False)
    else:
        path = new_run_dir(out, prefix)
    atomic_write_text(path / "config.toml", config_toml)
    return path


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def read_csv_numbers(path: str | Path, int_columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of a CSV file as dicts of numbers: ``int_columns`` as int, the rest as float, empty cells as None."""
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out.append({k: None if v == "" else int(v) if k in int_columns else float(v) for k, v in row.items()})
    return out


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a metrics.csv as dicts of numbers (empty cells become None)."""
    return read_csv_numbers(path, ("generation", "evaluations", "failures"))


def read_validation(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a validation.csv as dicts of numbers (empty cells become None)."""
    return read_csv_numbers(path, ("generation",))
