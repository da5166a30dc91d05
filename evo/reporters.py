"""What a run knows, :class:`RunState`, and who hears about it: the reporters.

The run loops (:class:`evo.run.EvolutionRun`, :class:`evo.train.TrainingRun`)
keep everything they know in one :class:`RunState` and tell a list of
:class:`Reporter` objects what happens, in the manner of neat-python's
reporters. Every output of a run along the way is a reporter:

- :class:`MetricsCSV`: ``metrics.csv``, one row per generation (or epoch)
- :class:`ValidationCSV`: ``validation.csv``, one row per periodic validation
- :class:`Checkpoint`: ``checkpoint/``, the whole RunState and the strategy's state
  (:mod:`evo.run_state`; :class:`RunState` and :class:`RunInfo` are importable from here too)
- :class:`EventsLog`: ``events.log``, failed evaluations and other notices
- :class:`~evo.run_status.StatusFile`: ``status.json``, running/finished/interrupted (:mod:`evo.run_status`)
- :class:`ProgressBar`: the terminal's progress bar
- :class:`TestTrace`: held-out figures along the run, for ``evo compare``'s curves

Adding an output is adding a class: subclass :class:`Reporter`, override the
hooks it needs and pass an instance in ``reporters=``::

    class PrintBest(Reporter):
        def on_generation(self, state, row):
            print(state.generation, row["best"])

    EvolutionRun(config, reporters=[PrintBest()]).run()

The events, in order: ``on_start`` once; then each generation
``on_failures`` (when an evaluation failed), ``on_generation``,
``on_validation`` (every ``validate_every`` generations, and a closing one
when the run stops elsewhere), ``on_checkpoint`` (every ``checkpoint_every``
generations and at the end); ``on_end`` once with the summary; ``close``
always, after an error too. The built-in reporters come first, so an added
one hears of files already written (the checkpoint is on disk when its
``on_checkpoint`` runs). Reporters read the state; they never change it. An
exception in a reporter ends the run.

Stopping: a reporter whose :meth:`Reporter.should_stop` returns True (asked
after every generation), or :meth:`evo.run.EvolutionRun.request_stop` from
another thread, ends an evolution run after the generation under way:
``stopped_by = "stopped"``, a checkpoint is written, the results and the
summary as for any other end, and ``evo run --resume`` continues it exactly
as if it had never stopped.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evo.files import atomic_write_text, read_csv_numbers, read_metrics, read_validation
from evo.run_state import RunInfo, RunState, load_checkpoint, save_checkpoint

if TYPE_CHECKING:
    from evo.strategies.base import Strategy
    from evo.tasks.base import Task
    from networks.spec import NetworkSpec


__all__ = [
    "Checkpoint",
    "EventsLog",
    "MetricsCSV",
    "ProgressBar",
    "Reporter",
    "Reporters",
    "RunInfo",
    "RunState",
    "TestTrace",
    "ValidationCSV",
    "load_checkpoint",
    "read_csv_numbers",
    "read_metrics",
    "read_validation",
    "run_dir_reporters",
    "save_checkpoint",
]


class Reporter:
    """Listens to a run loop; every hook does nothing: subclass and override the ones you need."""

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """The loop starts (or resumes: ``run.resumed``, ``state`` as checkpointed)."""

    def on_generation(self, state: RunState, row: dict[str, Any]) -> None:
        """One metrics row: a generation (or an epoch of a training run)."""

    def on_validation(self, state: RunState, row: dict[str, Any]) -> None:
        """A validation of the strategy's choice: ``generation``, ``val_score`` and the validation figures."""

    def on_failures(self, state: RunState, generation: int, count: int, errors: list[str]) -> None:
        """``count`` evaluations of ``generation`` failed (raised or gave NaN) and got the worst fitness."""

    def on_checkpoint(self, state: RunState) -> None:
        """The loop checkpoints ``state`` (the :class:`Checkpoint` reporter writes it)."""

    def on_end(self, state: RunState, summary: dict[str, Any]) -> None:
        """The run finished; ``summary`` is the content of summary.json (already written)."""

    def should_stop(self, state: RunState) -> bool:
        """True to end the run after this generation (checkpointed, resumable); asked after every generation."""
        return False

    def close(self) -> None:
        """Release files and terminals; called once, also when the run fails."""


class Reporters(Reporter):
    """The reporters of one run, each told of every event in turn."""

    def __init__(self, reporters: Sequence[Reporter]) -> None:
        self.reporters = list(reporters)

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """Tell every reporter."""
        for reporter in self.reporters:
            reporter.on_start(run, state)

    def on_generation(self, state: RunState, row: dict[str, Any]) -> None:
        """Tell every reporter."""
        for reporter in self.reporters:
            reporter.on_generation(state, row)

    def on_validation(self, state: RunState, row: dict[str, Any]) -> None:
        """Tell every reporter."""
        for reporter in self.reporters:
            reporter.on_validation(state, row)

    def on_failures(self, state: RunState, generation: int, count: int, errors: list[str]) -> None:
        """Tell every reporter."""
        for reporter in self.reporters:
            reporter.on_failures(state, generation, count, errors)

    def on_checkpoint(self, state: RunState) -> None:
        """Tell every reporter."""
        for reporter in self.reporters:
            reporter.on_checkpoint(state)

    def on_end(self, state: RunState, summary: dict[str, Any]) -> None:
        """Tell every reporter."""
        for reporter in self.reporters:
            reporter.on_end(state, summary)

    def should_stop(self, state: RunState) -> bool:
        """True if any reporter asks to stop (every one is asked)."""
        return any([reporter.should_stop(state) for reporter in self.reporters])  # noqa: C419 - a list: no short cut, all are asked

    def close(self) -> None:
        """Close every reporter, even if one fails; then raise the first failure."""
        errors = []
        for reporter in self.reporters:
            try:
                reporter.close()
            except Exception as exc:  # noqa: BLE001 - the others must still close
                errors.append(exc)
        if errors:
            raise errors[0]


# ------------------------------------------------------------------ CSV files
def finite_cell(value: Any) -> str:
    """A float as ``repr`` (exact), empty when missing or not finite."""
    return repr(float(value)) if value is not None and math.isfinite(value) else ""


def float_cell(value: Any) -> str:
    """A float as ``repr`` (exact, ``nan`` and ``inf`` kept), empty when missing."""
    return "" if value is None else repr(float(value))


def number_cell(value: Any) -> str:
    """An int as itself, a float as :func:`finite_cell`."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(value)
    return finite_cell(value)


def seconds_cell(decimals: int) -> Callable[[Any], str]:
    """Seconds with a fixed number of decimals."""
    return lambda value: f"{value:.{decimals}f}"


def _csv_text(lines: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(lines)
    return buffer.getvalue()


class MetricsCSV(Reporter):
    """``metrics.csv``: one row per generation (or epoch), ``cells`` maps each column to its formatter."""

    def __init__(self, path: Path, cells: Mapping[str, Callable[[Any], str]]) -> None:
        self.path = Path(path)
        self.cells = dict(cells)
        self._file: io.TextIOWrapper | None = None

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """Write the header and the rows so far (a resumed run drops the rows past its checkpoint)."""
        atomic_write_text(self.path, _csv_text([list(self.cells)] + [self._line(row) for row in state.rows]))
        self._file = open(self.path, "a", newline="")  # noqa: SIM115 - open from start to close
        self._writer = csv.writer(self._file)

    def _line(self, row: dict[str, Any]) -> list[str]:
        return [format_cell(row.get(column)) for column, format_cell in self.cells.items()]

    def on_generation(self, state: RunState, row: dict[str, Any]) -> None:
        """Append the row (flushed: readers see whole rows as they come)."""
        assert self._file is not None
        self._writer.writerow(self._line(row))
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


class ValidationCSV(Reporter):
    """``validation.csv``: ``generation``, ``val_score`` and the task's validation figures, one row per validation.

    The columns are the first row's; the file appears with the first validation.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._columns: list[str] | None = None

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """Rewrite the rows so far (a resumed run drops those past its checkpoint)."""
        self._columns = None
        self.path.unlink(missing_ok=True)
        for row in state.validations:
            self.on_validation(state, row)

    def on_validation(self, state: RunState, row: dict[str, Any]) -> None:
        """Append the row, with the header first."""
        lines = []
        if self._columns is None:
            self._columns = list(row)
            lines.append(self._columns)
        lines.append([number_cell(row.get(column)) for column in self._columns])
        with open(self.path, "a", newline="") as fh:
            fh.write(_csv_text(lines))


# --------------------------------------------------------- the other outputs
class Checkpoint(Reporter):
    """``checkpoint/``: the whole RunState and the strategy's state, atomically, at each checkpoint."""

    def __init__(self, directory: Path, strategy: Strategy) -> None:
        self.directory = Path(directory)
        self.strategy = strategy

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """Create the directory."""
        self.directory.mkdir(exist_ok=True)

    def on_checkpoint(self, state: RunState) -> None:
        """Write the checkpoint."""
        save_checkpoint(self.directory, state, self.strategy.state_dict())


class EventsLog(Reporter):
    """``events.log``: the start, failed evaluations and the end, one line each."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: io.TextIOWrapper | None = None
        self._step = "generation"

    def _write(self, line: str) -> None:
        assert self._file is not None
        self._file.write(line + "\n")
        self._file.flush()

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """Open the log (appending: a resumed run keeps its history)."""
        self._file = open(self.path, "a")  # noqa: SIM115 - open from start to close
        unit = "generations" if run.kind == "evolution" else "epochs"
        self._step = unit[:-1]  # "generation" or "epoch", in every line
        if run.resumed:
            self._write(f"resumed at {self._step} {state.generation}, to run to {run.total} {unit}")
        else:
            self._write(f"started: {run.kind}, {run.total} {unit}")

    def on_failures(self, state: RunState, generation: int, count: int, errors: list[str]) -> None:
        """One line with up to three of the errors."""
        reasons = "; ".join(errors[:3]) or "non-finite fitness"
        self._write(f"{self._step} {generation}: {count} failed evaluation(s) got the worst fitness; {reasons}")

    def on_end(self, state: RunState, summary: dict[str, Any]) -> None:
        """Why and where the run ended."""
        self._write(f"finished at {self._step} {state.generation}: stopped by {state.stopped_by}")

    def close(self) -> None:
        """Close the log."""
        if self._file is not None:
            self._file.close()
            self._file = None


class ProgressBar(Reporter):
    """A tqdm bar over the generations (or epochs), with the latest figures beside it."""

    def __init__(self) -> None:
        self._bar: Any = None

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """Open the bar where the run starts."""
        from tqdm import tqdm

        self.kind = run.kind
        desc, unit = (run.name, "gen") if run.kind == "evolution" else (f"{run.name} (training)", "it")
        self._bar = tqdm(total=run.total, initial=state.generation, desc=desc, unit=unit, dynamic_ncols=True)

    def on_generation(self, state: RunState, row: dict[str, Any]) -> None:
        """Advance one step."""
        self._bar.update(1)
        if self.kind == "evolution":
            best = row["best"] if row["best"] is not None else -math.inf
            mean = row["mean"] if row["mean"] is not None else math.nan
            text = f"best {best:.4g} mean {mean:.4g} evals/s {state.evaluations / max(state.wall_seconds, 1e-9):.0f}"
        elif "mean_return" in row:  # a policy-gradient iteration
            text = f"return {row['mean_return']:.4g}"
            if row.get("val_mean_return") is not None:
                text += f" val_return {row['val_mean_return']:.4g}"
        else:
            text = f"loss {row['train_loss']:.4g}"
            if row.get("val_accuracy") is not None:
                text += f" val_acc {row['val_accuracy']:.4f}"
            if row.get("val_loss") is not None:
                text += f" val_loss {row['val_loss']:.4g}"
        self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def run_dir_reporters(
    run_dir: Path, cells: Mapping[str, Callable[[Any], str]], progress: bool, files: Sequence[Reporter] = ()
) -> list[Reporter]:
    """What every run writes as it goes: metrics.csv (``cells``: its columns), events.log, the run's own ``files``, status.json, the bar."""
    from evo.run_status import STATUS_FILE, StatusFile  # run_status builds on Reporter: imported here, not at the top

    # status.json after the run's own files: it never names a checkpoint that is not yet on disk.
    reporters: list[Reporter] = [MetricsCSV(run_dir / "metrics.csv", cells), EventsLog(run_dir / "events.log"), *files]
    reporters.append(StatusFile(run_dir / STATUS_FILE))
    if progress:
        reporters.append(ProgressBar())
    return reporters


class TestTrace(Reporter):
    """Held-out figures of the current choice along the run, in :attr:`trace` (for ``evo compare``'s curves).

    Evolution: at every validation; training: every epoch (or every ``every``-th). The trace never feeds back into the run.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        task: Task,
        network: NetworkSpec,
        current: Callable[[RunState], np.ndarray],
        seed: int,
        trace: list[dict[str, Any]] | None = None,
        every: int = 1,
    ) -> None:
        self.task = task
        self.network = network
        self.current = current
        self.seed = seed
        self.trace = trace if trace is not None else []
        self.kind = "evolution"
        self.every = every

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """Note the kind of run."""
        self.kind = run.kind

    def on_generation(self, state: RunState, row: dict[str, Any]) -> None:
        """Training: record the epoch (or every ``every``-th epoch or iteration, and the first)."""
        if self.kind == "training" and (state.generation == 1 or state.generation % self.every == 0):
            passes = row["sample_forward_passes"]
            self._record({"epoch": state.generation, "wall_seconds": row["wall_seconds"], "sample_forward_passes": passes}, state)

    def on_validation(self, state: RunState, row: dict[str, Any]) -> None:
        """Evolution: record the validation."""
        passes = state.evaluations * self.task.samples_per_evaluation()
        self._record({"generation": row["generation"], "wall_seconds": state.wall_seconds, "sample_forward_passes": passes}, state)

    def _record(self, entry: dict[str, Any], state: RunState) -> None:
        self.trace.append({**entry, **self.task.test(self.network, self.current(state), self.seed)})
