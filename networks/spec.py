"""The contracts every network type keeps: :class:`NetworkSpec` and its optional capabilities.

A *network spec* is the architecture without weights: it maps a flat genome
(or a stack of P of them, population axis first) to outputs. Evolution sees
nothing else. What only some network types can do is a small capability
protocol that the type *declares* by listing it among its bases, so a caller
asks ``isinstance(spec, Trainable)`` of a declaration, never ``hasattr`` of a
method name::

    class NEATSpec(NetworkSpec, Trainable, GraphExportable, HasComplexity): ...

Capabilities:

- :class:`Trainable`: a forward pass that keeps a cache and a backward pass
  (backprop, BPTT), so :class:`networks.trainer.Trainer` can train it.
- :class:`Decodable`: a searched architecture; a genome decodes to a plain
  network spec and its parameters (``cnn_search``).
- :class:`GraphExportable`: a graph genome that saves itself as nodes and
  edges (JSON) and draws itself (NEAT).
- :class:`HasComplexity`: a size per genome, the second objective of
  multi-objective (Pareto) selection.
- :class:`Bindable`: its own forward for one genome stack run many times on
  per-genome inputs (a control rollout's steps), weights prepared once.
- :class:`Recurrent`: a state carried from one time step to the next (RNNs,
  recurrent NEAT); a control episode keeps it across its steps.
- :class:`CountsParameters`: a padded genome (NEAT's slots, a search
  space's maximum architecture) that says how many parameters one genome
  really uses, the figure reports show instead of the genome length.

Every spec also carries ``dtype``, the floating-point type its forward passes
compute in: ``"float64"`` (the default) or ``"float32"``. Genomes stay float64
(the strategies' side); a float32 spec casts a genome stack to float32 once
per forward call and its inputs to float32 (a no-op for inputs a task cast
once), and its outputs are float32. :func:`check_dtype` validates the name,
:func:`dtype_description` is what ``describe()`` adds (nothing for float64, so
existing descriptions stay as they were).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from networks.stack import GenomeStack

#: The floating-point types a network's forward pass may compute in; the first is the default.
DTYPES: tuple[str, ...] = ("float64", "float32")


def check_dtype(dtype: object) -> str:
    """``dtype`` when it names an allowed compute type; ValueError naming ``dtype`` and the allowed ones otherwise."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype = {dtype!r} is not allowed; allowed: {list(DTYPES)}")
    return dtype


def dtype_description(dtype: str) -> dict[str, str]:
    """What ``describe()`` records of a compute type: nothing for the default float64, else ``{"dtype": ...}``."""
    return {} if dtype == DTYPES[0] else {"dtype": dtype}


@runtime_checkable
class NetworkSpec(Protocol):
    """What every network type provides: sizes, the genome layout, a batched forward and a description."""

    #: True when a genome holds structure genes or encodes a recipe besides weights (NEAT, cnn_search, ESN): a
    #: weight scale such as a run's ``init_scale`` must leave its initial genome as it is.
    structural_genome: ClassVar[bool] = False
    @property
    def dtype(self) -> str:
        """The floating-point type forward passes compute in, ``"float64"`` (this default) or ``"float32"``; genomes stay float64."""
        return "float64"

    @property
    def n_inputs(self) -> int:
        """Values one input sample holds (flattened)."""
        ...

    @property
    def n_outputs(self) -> int:
        """Values one output holds."""
        ...

    @property
    def n_params(self) -> int:
        """Length of the flat genome."""
        ...

    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` starting genomes ``(n, n_params)`` drawn from ``rng``."""
        ...

    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, B, n_outputs)`` of a genome stack ``(P, n_params)`` on inputs ``(B, ...)``."""
        ...

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_outputs)`` of one genome ``(n_params,)``."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-able description; :func:`networks.network_from_description` rebuilds the spec from it."""
        ...

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> NetworkSpec:
        """Rebuild from :meth:`describe` output."""
        ...


@runtime_checkable
class Trainable(Protocol):
    """A network the gradient-descent trainer can train: forward with a cache, backward, and which genes decay."""

    def forward_train(
        self, params: np.ndarray, X: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None, return_logits: bool = True
    ) -> tuple[np.ndarray, Any]:
        """Outputs (logits when ``return_logits``) of one genome and the cache :meth:`backward` needs."""
        ...

    def backward(self, params: np.ndarray, cache: Any, d_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient ``(n_params,)`` of the loss given its gradient ``d_out`` at the outputs."""
        ...

    def weight_mask(self) -> np.ndarray:
        """True on the genes L2 weight decay applies to (weights), False elsewhere (biases, structure genes)."""
        ...


@runtime_checkable
class Bindable(Protocol):
    """A network that prepares a genome stack once for many forward passes (a rollout's steps) whose rows can be dropped."""

    def bind(self, genomes: np.ndarray) -> GenomeStack:
        """``genomes (P, n_params)`` bound to this network: ``forward(inputs)`` and ``keep(rows)`` as :class:`GenomeStack`."""
        ...


@runtime_checkable
class Decodable(Protocol):
    """A searched architecture: each genome decodes to a plain network spec and its parameters."""

    def decode(self, genome: np.ndarray) -> tuple[NetworkSpec, np.ndarray]:
        """The plain network and its flat parameters that ``genome`` encodes."""
        ...

    def decode_description(self, genome: np.ndarray) -> dict[str, Any]:
        """What ``genome`` decodes to, JSON-able (recorded beside the best genome)."""
        ...


@runtime_checkable
class GraphExportable(Protocol):
    """A graph genome that writes itself as nodes and edges and draws itself."""

    def save_graph(self, params: np.ndarray, path: str | Path) -> Path:
        """Nodes and connections of one genome as JSON at ``path``."""
        ...

    def draw(self, params: np.ndarray, path: str | Path, title: str | None = None) -> Path:
        """A drawing of one genome's graph at ``path`` (PNG)."""
        ...


@runtime_checkable
class HasComplexity(Protocol):
    """A size per genome (hidden nodes, connections, parameters): the second objective of Pareto selection."""

    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Size ``(P,)`` of each genome of a stack ``(P, n_params)``; smaller is simpler."""
        ...


@runtime_checkable
class Recurrent(Protocol):
    """A network with a state carried across time steps: an episode's steps or a sequence's elements.

    :func:`networks.stack.bind_genomes` gives a stateful stack for it: each
    ``forward`` is one step, the state starts at :meth:`initial_state` for a
    new rollout (one episode per slot) and follows the rows ``keep`` retains.
    """

    def initial_state(self, n: int, batch: int) -> np.ndarray:
        """The rest state of ``n`` genomes on ``batch`` sequences: an array whose first two axes are ``(n, batch)``."""
        ...

    def step(self, params: np.ndarray, state: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step of genomes ``(P, n_params)`` on one input per sequence ``x (P, B, n_step)``: the new state and outputs ``(P, B, n_outputs)``."""
        ...


@runtime_checkable
class CountsParameters(Protocol):
    """A padded genome that counts the parameters one genome really uses (NEAT: enabled connections and used biases)."""

    def used_params(self, params: np.ndarray) -> int:
        """Parameters genome ``params (n_params,)`` uses; at most ``n_params``."""
        ...
