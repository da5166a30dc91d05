"""A user's fitness function as a task: ``f(x)`` per solution or ``f(X)`` over the population.

The genome is the solution itself (:class:`~evo.tasks.genome.GenomeSpace`):
real numbers in a box, bits, integers or a permutation. ``minimize = true``
(the default) turns the value into the fitness the strategies maximise by its
sign; everything the run reports in the user's terms (``best_value``,
``test_value``, ``target``) is in the user's sign.

The function may take a ``seed`` keyword (noisy or simulated problems): a
per-solution function gets the individual's seed, a vectorised one the array
of its rows' seeds, so any chunking on Ray gives the same values.

Before a run starts, one probe call (on the starting point; two rows for a
vectorised function) checks that the function returns one number per
solution: a function that does not import, is not callable, raises or returns
the wrong shape or a non-number is a config error naming it, and nothing is
written. During the run an exception or a NaN is a failed evaluation: the
worst fitness, counted, and the run goes on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from evo.tasks.base import DefinesGenome, Task
from evo.tasks.genome import GenomeSpace
from evo.tasks.user_code import import_object, runtime_env_for


class FunctionTask(Task, DefinesGenome):
    """Optimise a user's function over a :class:`GenomeSpace`; fitness = -f (minimise) or f (maximise)."""

    kind = "function"

    def __init__(
        self,
        function: str | Callable[..., Any],
        space: GenomeSpace,
        minimize: bool = True,
        vectorized: bool = False,
        target: float | None = None,
        kwargs: dict[str, Any] | None = None,
        code_dir: str | None = None,
        field: str = "task.callable",
    ) -> None:
        self.reference = function if isinstance(function, str) else f"{getattr(function, '__module__', '?')}:{_qualname(function)}"
        self.field = field
        self.code_dir = code_dir
        self._function = import_object(function, field, code_dir) if isinstance(function, str) else function
        #: whether ``function`` was named by reference (workers re-import it) rather than given as an object
        self._by_reference = isinstance(function, str)
        if not callable(self._function):
            raise ValueError(f"{field} = {self.reference!r}: is a {type(self._function).__name__}, not callable")
        self.space = space
        self.minimize = bool(minimize)
        self.vectorized = bool(vectorized)
        self.kwargs = dict(kwargs or {})
        # kwargs may set `seed` themselves (a fixed instance): then the run passes none.
        self.takes_seed = _accepts_seed(self._function) and "seed" not in self.kwargs
        self.name = self.reference
        self.n_inputs = self.n_outputs = space.dimension
        self.target = target
        self.target_fitness = None if target is None else self._fitness_of(float(target))
        self._probe()

    # --------------------------------------------------------------- calling f
    def _fitness_of(self, value: float | np.ndarray) -> Any:
        """The maximised fitness of a value in the user's sign (and back: the map is its own inverse)."""
        return -value if self.minimize else value

    def values(self, genomes: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """The user's values ``(P,)`` of genomes ``(P, dimension)`` (raising what ``f`` raises)."""
        solutions = self.space.decode(genomes)
        if self.vectorized:
            extra: dict[str, Any] = {"seed": np.asarray(seeds)} if self.takes_seed else {}
            out = np.asarray(self._function(solutions, **self.kwargs, **extra), dtype=np.float64)
            if out.shape not in ((len(solutions),), (len(solutions), 1)):
                raise ValueError(
                    f"{self.reference} returned shape {out.shape} for {len(solutions)} solutions, expected ({len(solutions)},)"
                )
            return out.reshape(len(solutions))
        values = np.empty(len(solutions))
        for i, x in enumerate(solutions):
            extra = {"seed": int(seeds[i])} if self.takes_seed else {}
            values[i] = _one_number(self._function(x, **self.kwargs, **extra), self.reference)
        return values

    def _probe(self) -> None:
        """One call before the run: the function must return one number per solution."""
        rng = np.random.default_rng(0)
        rows = 2 if self.vectorized else 1
        genomes = self.space.init_params(rng, rows)
        try:
            self.values(genomes, np.arange(rows, dtype=np.uint64))
        except Exception as exc:  # noqa: BLE001 - whatever the user's code raises, the config names it
            what = "two probe solutions" if self.vectorized else "a probe solution"
            raise ValueError(f"{self.field} = {self.reference!r}: failed on {what} ({type(exc).__name__}: {exc})") from None

    # --------------------------------------------------------------- the Task
    def evaluate(self, network, genomes: np.ndarray, seeds: np.ndarray, generation_seed: int) -> np.ndarray:
        """Fitness ``(P,)``: the values, sign-flipped when minimising (NaN stays NaN: the evaluator scores it worst)."""
        return self._fitness_of(self.values(genomes, seeds))

    def test(self, network, genome: np.ndarray, seed: int) -> dict[str, float]:
        """The value of the chosen solution measured once more (with the test seed, for noisy functions)."""
        value = self.values(np.asarray(genome, dtype=np.float64)[None], np.array([seed], dtype=np.uint64))[0]
        return {"test_value": float(value)}

    def genome_space(self) -> GenomeSpace:
        """The solutions' space."""
        return self.space

    def solution_summary(self, genome: np.ndarray, fitness: float) -> dict[str, Any]:
        """``best_value`` in the user's sign and ``best_solution`` as the user's numbers."""
        solution = self.space.decode(np.asarray(genome)[None])[0]
        return {"best_value": float(self._fitness_of(fitness)), "best_solution": solution.tolist(), "minimize": self.minimize}

    def describe(self) -> dict:
        """The function and its space."""
        return {
            "name": self.name,
            "kind": self.kind,
            "callable": self.reference,
            "minimize": self.minimize,
            "vectorized": self.vectorized,
            "takes_seed": self.takes_seed,
            "target": self.target,
            **{k: v for k, v in self.space.describe().items() if k != "type"},
        }

    def ray_runtime_env(self) -> dict[str, Any] | None:
        """The user's module, shipped to the workers unless it is installed there."""
        return runtime_env_for([self.reference.partition(":")[0]])

    # ------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        """A function named by reference travels as its name and is imported again on the worker."""
        state = dict(self.__dict__)
        if self._by_reference:
            state["_function"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Re-import a function named by reference."""
        self.__dict__.update(state)
        if self._function is None:
            self._function = import_object(self.reference, self.field, self.code_dir)


def _qualname(function: Any) -> str:
    return getattr(function, "__qualname__", None) or getattr(function, "__name__", None) or type(function).__name__


def _accepts_seed(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes a ``seed`` keyword."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    seed = parameters.get("seed")
    return seed is not None and seed.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _one_number(value: Any, reference: str) -> float:
    """A per-solution return value as a float; ValueError for arrays of another shape and non-numbers."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{reference} returned {value!r}, not a number")
    array = np.asarray(value)
    if array.shape not in ((), (1,)):
        raise ValueError(f"{reference} returned shape {array.shape} for one solution, expected one number")
    try:
        return float(array.reshape(()))
    except (TypeError, ValueError):
        raise ValueError(f"{reference} returned {value!r}, not a number") from None
