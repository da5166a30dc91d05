"""Feedforward network (multi-layer perceptron) over a stack of genomes, with a backward pass for the trainer.

The parameters of one network are a single flat vector laid out layer by
layer as ``W (n_in x n_out)`` row-major followed by ``b (n_out)``. A stack of
P such vectors, shape ``(P, n_params)``, is evaluated on a batch of B inputs
with one batched ``matmul`` per layer: ``(P, B, n_in) @ (P, n_in, n_out)``.
There is no Python loop over individuals or samples. The layer maths, forward
and backward, is in :mod:`networks.layers.dense`; this module lays out the
genome and chains the layers.

Training (one network): :meth:`MLP.forward_train` returns the outputs (the
logits of a softmax output layer, by default) and a cache, and
:meth:`MLP.backward` the gradient in the same flat layout evolution works on,
so an evolved genome can be fine-tuned by gradient descent and a trained one
seeded into a population. Dropout is inverted dropout on the hidden layers'
outputs. The layer tensors are views into the flat parameter vector, and
``dW``/``db`` are written straight into views of the flat gradient vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from networks.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from networks.layers.dense import (
    DenseRecord,
    check_dropout,
    dense_stack_forward,
    dense_train_backward,
    dense_train_forward,
)
from networks.spec import Bindable, NetworkSpec, Trainable, check_dtype, dtype_description
from networks.stack import GenomeStack

_BLOCK_VALUES = 1 << 18  # activations per genome block in forward (~2 MB of float64)


class MLPCache(NamedTuple):
    """Per-layer records of :meth:`MLP.forward_train`, consumed by :meth:`MLP.backward`."""

    records: list[DenseRecord]
    output_is_logits: bool


@dataclass(frozen=True)
class MLP(NetworkSpec, Trainable, Bindable):
    """A feedforward network spec: layer sizes and activations, no weights.

    ``layer_sizes`` includes the input and output sizes, e.g. ``(64, 16, 10)``.
    ``dtype`` is what :meth:`forward` computes in (``"float32"``: genomes and
    inputs cast once per call); the trainer's :meth:`forward_train` and
    :meth:`backward` compute in the parameters' own type (float64).
    """

    layer_sizes: tuple[int, ...]
    activation: str = "tanh"
    output_activation: str = "identity"
    dtype: str = "float64"
    shapes: tuple[tuple[int, int], ...] = field(init=False, repr=False)
    offsets: tuple[int, ...] = field(init=False, repr=False)
    #: the activation after each weight layer, first to last
    activations: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sizes = tuple(int(s) for s in self.layer_sizes)
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"layer_sizes must hold at least an input and an output size, all >= 1; got {self.layer_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation {self.output_activation!r} is not known; allowed: {sorted(OUTPUT_ACTIVATIONS)}")
        check_dtype(self.dtype)
        object.__setattr__(self, "layer_sizes", sizes)
        shapes = tuple((sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        offsets = [0]
        for n_in, n_out in shapes:
            offsets.append(offsets[-1] + n_in * n_out + n_out)
        object.__setattr__(self, "shapes", shapes)
        object.__setattr__(self, "offsets", tuple(offsets))
        object.__setattr__(self, "activations", (self.activation,) * (len(shapes) - 1) + (self.output_activation,))

    # ------------------------------------------------------------------ layout
    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector."""
        return self.offsets[-1]

    @property
    def n_inputs(self) -> int:
        """Input width."""
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        """Output width."""
        return self.layer_sizes[-1]

    @property
    def n_layers(self) -> int:
        """Number of weight layers."""
        return len(self.shapes)

    def layer_activation(self, layer: int) -> str:
        """Name of the activation applied after weight layer ``layer``."""
        return self.output_activation if layer == self.n_layers - 1 else self.activation

    def unflatten(self, params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split ``(P, n_params)`` into per-layer ``W (P, n_in, n_out)`` and ``b (P, 1, n_out)`` (inverse: ``flatten_layers``)."""
        params = np.asarray(params)
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise ValueError(f"expected parameters of shape (P, {self.n_params}), got {params.shape}")
        P = params.shape[0]
        layers = []
        for (n_in, n_out), start in zip(self.shapes, self.offsets):
            w_end = start + n_in * n_out
            W = params[:, start:w_end].reshape(P, n_in, n_out)
            b = params[:, w_end : w_end + n_out].reshape(P, 1, n_out)
            layers.append((W, b))
        return layers

    # ------------------------------------------------------------ init / run
    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` parameter vectors: He or Glorot normal weights, zero biases."""
        out = np.zeros((n, self.n_params))
        for (n_in, n_out), start in zip(self.shapes, self.offsets):
            std = np.sqrt(2.0 / n_in) if ACTIVATIONS[self.activation].he_init else np.sqrt(2.0 / (n_in + n_out))
            out[:, start : start + n_in * n_out] = rng.normal(0.0, std, size=(n, n_in * n_out))
        return out

    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, B, n_out)`` for params ``(P, n)`` and inputs ``(B, n_in)`` or ``(P, B, n_in)``.

        Large stacks run in blocks of genomes whose activations fit in cache
        (a (256, 1257, 32) hidden layer is 80 MB; blocks keep it near 2 MB),
        which is faster than one giant batched matmul. Each genome's numbers
        are the same either way: its matmuls have the same shapes.
        """
        params = np.asarray(params)
        x = np.asarray(x)
        if self.dtype != "float64":  # float32: the genome stack cast once per call; inputs a task cast already are kept
            params, x = params.astype(self.dtype), x.astype(self.dtype, copy=False)
        if x.shape[-1] != self.n_inputs:
            raise ValueError(f"expected inputs with {self.n_inputs} features, got shape {x.shape}")
        P = params.shape[0] if params.ndim == 2 else 1
        rows = x.shape[-2] if x.ndim >= 2 else 1
        block = max(1, _BLOCK_VALUES // max(1, rows * max(self.layer_sizes)))
        if block >= P:
            return self._forward(params, x)
        out = np.empty((P, rows, self.n_outputs), dtype=np.result_type(params, x))
        for start in range(0, P, block):
            stop = min(start + block, P)
            out[start:stop] = self._forward(params[start:stop], x if x.ndim == 2 else x[start:stop])
        return out

    def _forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        # (B, in) broadcasts against (P, in, out) to (P, B, out).
        return dense_stack_forward(x, self.unflatten(params), [OUTPUT_ACTIVATIONS[name] for name in self.activations])

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_out)`` of one network given its flat vector ``(n,)``."""
        return self.forward(np.asarray(params)[None, :], x)[0]

    def bind(self, genomes: np.ndarray) -> GenomeStack:
        """``genomes (P, n_params)`` with their layer weights split out once, for a rollout's many steps."""
        return BoundMLP(self, genomes)

    # ------------------------------------------------------ backprop (trainer)
    def layer_views(self, flat: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-layer ``W (n_in, n_out)`` and ``b (n_out,)`` as *views* into a flat ``(n_params,)`` vector."""
        layers = []
        for (n_in, n_out), start in zip(self.shapes, self.offsets[:-1], strict=True):
            w_end = start + n_in * n_out
            layers.append((flat[start:w_end].reshape(n_in, n_out), flat[w_end : w_end + n_out]))
        return layers

    def weight_mask(self) -> np.ndarray:
        """Boolean ``(n_params,)``: True on weight entries, False on biases (L2 decays weights only)."""
        mask = np.zeros(self.n_params, dtype=bool)
        for W, _ in self.layer_views(mask):
            W[...] = True
        return mask

    def forward_train(
        self, params: np.ndarray, X: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None, return_logits: bool = True
    ) -> tuple[np.ndarray, MLPCache]:
        """Outputs ``(B, n_out)`` of one network and the cache :meth:`backward` needs.

        For a softmax output layer the outputs are the logits unless
        ``return_logits=False``; dropout (inverted) applies to the hidden
        layers' outputs, its mask drawn from ``rng``.
        """
        params = np.asarray(params)
        X = np.asarray(X)
        if params.shape != (self.n_params,):
            raise ValueError(f"expected a flat parameter vector of shape ({self.n_params},), got {params.shape}")
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"expected inputs of shape (B, {self.n_inputs}), got {X.shape}")
        check_dropout(dropout, rng)
        out, records, is_logits = dense_train_forward(
            X, self.layer_views(params), self.activations, dropout, rng, drop_first_input=False, return_logits=return_logits
        )
        return out, MLPCache(records, is_logits)

    def backward(self, params: np.ndarray, cache: MLPCache, d_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient ``(n_params,)`` of the loss w.r.t. ``params``, given ``d_out = d loss / d outputs``.

        ``params`` and ``cache`` must come from the same :meth:`forward_train`
        call. ``out``, if given, is a float ``(n_params,)`` buffer the gradient
        is written into (and returned), to avoid an allocation per step.
        """
        params = np.asarray(params)
        grad = np.empty(self.n_params) if out is None else out
        weights = [W for W, _ in self.layer_views(params)]
        dense_train_backward(d_out, cache.records, weights, self.layer_views(grad), self.activations, cache.output_is_logits)
        return grad

    # ----------------------------------------------------------- description
    def describe(self) -> dict:
        """JSON-able description, enough to rebuild the spec."""
        return {
            "type": "mlp",
            "layer_sizes": list(self.layer_sizes),
            "activation": self.activation,
            "output_activation": self.output_activation,
            **dtype_description(self.dtype),
            "n_params": self.n_params,
            "layout": "per layer: W (n_in x n_out) row-major, then b (n_out)",
        }

    @classmethod
    def from_description(cls, description: dict) -> MLP:
        """Rebuild from :meth:`describe` output."""
        return cls(
            layer_sizes=tuple(description["layer_sizes"]),
            activation=description["activation"],
            output_activation=description["output_activation"],
            dtype=description.get("dtype", "float64"),
        )


class BoundMLP(GenomeStack):
    """An MLP genome stack for a rollout: weights split out once, each step's layers computed into kept buffers.

    The same layer functions as :meth:`MLP.forward` in the same order, so the
    outputs are bit-identical; only the splitting and the allocations are
    saved (a rollout runs hundreds of tiny forward passes).
    """

    def __init__(self, network: MLP, genomes: np.ndarray) -> None:
        super().__init__(network, genomes)
        #: None for float64 (inputs used as they come, as ever); else the type weights and each step's inputs are cast to
        self.cast = None if network.dtype == "float64" else np.dtype(network.dtype)
        if self.cast is not None:
            genomes = np.asarray(genomes, dtype=self.cast)
        self.layers = [(np.ascontiguousarray(W), np.ascontiguousarray(b)) for W, b in network.unflatten(genomes)]
        self.activations = [OUTPUT_ACTIVATIONS[name] for name in network.activations]
        self.n_inputs = network.n_inputs
        self.buffers: list[np.ndarray] = []
        self.buffer_shape: tuple[int, ...] = ()

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs ``(P, E, n_out)`` for inputs ``(P, E, n_in)``; a buffer, valid until the next call."""
        if self.cast is not None:
            inputs = np.asarray(inputs, dtype=self.cast)
        if inputs.shape != self.buffer_shape:
            if inputs.shape[-1] != self.n_inputs:
                raise ValueError(f"expected inputs with {self.n_inputs} features, got shape {inputs.shape}")
            dtype = np.result_type(self.layers[0][0], inputs)
            self.buffers = [np.empty((len(W), inputs.shape[-2], W.shape[2]), dtype=dtype) for W, _ in self.layers]
            self.buffer_shape = inputs.shape
        return dense_stack_forward(inputs, self.layers, self.activations, self.buffers)

    def keep(self, rows: np.ndarray) -> None:
        """Drop every genome but ``rows`` (indices into the current stack)."""
        super().keep(rows)
        self.layers = [(W[rows], b[rows]) for W, b in self.layers]
        self.buffer_shape = ()
