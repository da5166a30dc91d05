"""``status.json``: whether a run is running, finished, interrupted or was killed, readable without opening anything else.

Written by the :class:`StatusFile` reporter at the start, at every
checkpoint and at the end (small and atomic), so `evo runs` lists hundreds of
run directories in well under a second and tells a live run from one whose
process died: a ``"running"`` status whose process is gone on this machine
reads as ``"killed"``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from evo.files import atomic_write_json
from evo.reporters import Reporter, RunInfo, RunState

STATUS_FILE = "status.json"


class StatusFile(Reporter):
    """Keeps ``status.json`` up to date: status, process, generation, best so far, wall time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._record: dict[str, Any] = {}
        self._ended = False

    def _write(self, state: RunState, **fields: Any) -> None:
        best = state.best_seen_fitness
        self._record.update(
            generation=state.generation,
            best_fitness=best if math.isfinite(best) else None,
            wall_seconds=state.wall_seconds,
            updated=time.time(),
            **fields,
        )
        atomic_write_json(self.path, self._record)

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """Running, in this process."""
        self._record = {"kind": run.kind, "total": run.total, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        self._ended = False
        self._write(state, status="running", resumed=run.resumed)

    def on_checkpoint(self, state: RunState) -> None:
        """Progress so far (what a resume starts from)."""
        self._write(state, checkpoint_generation=state.generation)

    def on_end(self, state: RunState, summary: dict[str, Any]) -> None:
        """Finished, and why."""
        self._ended = True
        self._write(state, status="finished", stopped_by=state.stopped_by)

    def close(self) -> None:
        """Ended without finishing (an error, Ctrl-C): interrupted, resumable from the last checkpoint."""
        if not self._ended and self._record:
            self._record.update(status="interrupted", updated=time.time())
            atomic_write_json(self.path, self._record)


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``status.json`` with a ``"running"`` whose process has died on this host read as ``"killed"``; None if absent."""
    try:
        record = json.loads((run_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") == "running" and record.get("host") == socket.gethostname() and not _alive(record.get("pid")):
        record["status"] = "killed"
    return record


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
