"""Recurrent networks (Elman, LSTM, GRU) over a stack of genomes, with backpropagation through time for the trainer.

A sample is a sequence of ``steps`` inputs of ``input_size`` values, stored
flat (``n_inputs = steps * input_size``, time-major inside the sample: the
8 x 8 digits read row by row are their 64 pixels as they are). The state
starts at rest (zeros) for each sample, runs through the recurrent layers
step by step, and the readout (dense layers, :mod:`networks.layers.dense`)
reads the last layer's output at the last step. With ``steps = 1`` a sample
is one step: a control episode feeds its observations one at a time through
:meth:`RNN.step` (the :class:`~networks.spec.Recurrent` capability), which
carries the state across calls; :func:`networks.stack.bind_genomes` does that
for a rollout.

Genome layout, per recurrent layer: ``W (F + H, G H)`` row-major (input
rows first, then the recurrent rows), ``b (G H)``, and for a GRU ``b_hn (H)``;
then per readout layer ``W (n_in, n_out)``, ``b (n_out)`` as in the MLP. The
cell maths, forward beside backward, is :mod:`networks.layers.recurrent`.

The forward of a stack runs blocks of genomes with one batched matmul per
step and layer (the input projection of all steps is one more, hoisted out
of the time loop); no Python loop over genomes or samples beyond the blocks
that keep the activations in cache. Each genome's numbers are the same
whatever block or chunk it is evaluated in (its matmuls keep their shapes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from networks.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from networks.layers.dense import DenseRecord, check_dropout, dense_stack_forward, dense_train_backward, dense_train_forward
from networks.layers.recurrent import (
    CELL_GATES,
    CELL_STATE,
    LayerCache,
    check_cell,
    input_projection,
    layer_backward,
    layer_input_grads,
    layer_sequence,
    layer_step,
)
from networks.layers.scratch import scratch
from networks.spec import NetworkSpec, Recurrent, SequenceTrainable, Trainable, check_dtype, dtype_description

_BLOCK_VALUES = 1 << 21  # input-projection values per genome block in forward (16 MB of float64)


class RNNCache(NamedTuple):
    """What :meth:`RNN.backward` needs from :meth:`RNN.forward_train`."""

    inputs: list[np.ndarray]  # each recurrent layer's input sequence (T, B, F)
    layers: list[LayerCache]
    readout: list[DenseRecord]
    output_is_logits: bool


@dataclass(frozen=True)
class RNN(NetworkSpec, Trainable, SequenceTrainable, Recurrent):
    """A recurrent network spec: cell, layer sizes, readout; no weights.

    ``hidden`` are the recurrent layers' sizes, ``readout`` the hidden sizes of
    the dense readout (empty: one linear layer to the outputs).
    ``bptt_truncate`` (> 0) truncates backpropagation through time to the last
    that many steps.
    """

    input_size: int
    hidden: tuple[int, ...]
    output_size: int
    cell: str = "lstm"
    steps: int = 1
    activation: str = "tanh"
    readout: tuple[int, ...] = ()
    readout_activation: str = "tanh"
    output_activation: str = "identity"
    bptt_truncate: int = 0
    #: what :meth:`forward` and :meth:`step` compute in; the trainer (forward_train, backward) computes in float64
    dtype: str = "float64"
    #: per recurrent layer (input width F, hidden H, offset of W, of b, of b_hn, end)
    layout: tuple[tuple[int, ...], ...] = field(init=False, repr=False)
    readout_sizes: tuple[int, ...] = field(init=False, repr=False)
    readout_offsets: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        hidden, readout = tuple(int(h) for h in self.hidden), tuple(int(h) for h in self.readout)
        for name, value in (("input_size", self.input_size), ("output_size", self.output_size), ("steps", self.steps)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"RNN: {name} must be an integer >= 1, got {value!r}")
        if not hidden or min(hidden) < 1 or (readout and min(readout) < 1):
            raise ValueError(
                f"RNN: hidden must list at least one layer size, all sizes >= 1; got hidden {self.hidden!r}, readout {self.readout!r}"
            )
        check_cell(self.cell, self.activation)
        check_dtype(self.dtype)
        if self.readout_activation not in ACTIVATIONS:
            raise ValueError(f"RNN: readout_activation {self.readout_activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"RNN: output_activation {self.output_activation!r} is not known; allowed: {sorted(OUTPUT_ACTIVATIONS)}")
        if int(self.bptt_truncate) < 0:
            raise ValueError(f"RNN: bptt_truncate must be >= 0 (0: full BPTT), got {self.bptt_truncate!r}")
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "readout", readout)
        object.__setattr__(self, "input_size", int(self.input_size))
        object.__setattr__(self, "output_size", int(self.output_size))
        object.__setattr__(self, "steps", int(self.steps))
        object.__setattr__(self, "bptt_truncate", int(self.bptt_truncate))
        G = CELL_GATES[self.cell]
        layout, offset, F = [], 0, self.input_size
        for H in hidden:
            w, b = offset, offset + (F + H) * G * H
            bhn = b + G * H
            end = bhn + (H if self.cell == "gru" else 0)
            layout.append((F, H, w, b, bhn, end))
            offset, F = end, H
        sizes = (F, *readout, self.output_size)
        offsets = [offset]
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            offsets.append(offsets[-1] + n_in * n_out + n_out)
        object.__setattr__(self, "layout", tuple(layout))
        object.__setattr__(self, "readout_sizes", sizes)
        object.__setattr__(self, "readout_offsets", tuple(offsets))

    # ------------------------------------------------------------------ layout
    @property
    def n_inputs(self) -> int:
        """Values of one sample: ``steps * input_size``."""
        return self.steps * self.input_size

    @property
    def n_outputs(self) -> int:
        """Output width."""
        return self.output_size

    @property
    def n_params(self) -> int:
        """Length of the flat genome."""
        return self.readout_offsets[-1]

    @property
    def state_size(self) -> int:
        """State values per sequence: each layer's h (and c for an LSTM)."""
        return CELL_STATE[self.cell] * sum(self.hidden)

    @property
    def readout_activations(self) -> tuple[str, ...]:
        """The activation after each readout layer, first to last."""
        return (self.readout_activation,) * len(self.readout) + (self.output_activation,)

    def _views(
        self, params: np.ndarray
    ) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], list[tuple[np.ndarray, np.ndarray]]]:
        """Views of ``params (..., n_params)``: per layer ``W (..., F+H, GH)``, ``b (..., 1, GH)``, ``b_hn``; readout ``W``, ``b``.

        With a leading genome axis the biases get a length-1 batch axis (for
        broadcasting over ``(P, B, .)``); for one flat genome they are 1-D.
        """
        lead = params.shape[:-1]
        one = (1,) if lead else ()
        G = CELL_GATES[self.cell]
        layers = []
        for F, H, w, b, bhn, end in self.layout:
            W = params[..., w:b].reshape(*lead, F + H, G * H)
            bias = params[..., b:bhn].reshape(*lead, *one, G * H)
            b_hn = params[..., bhn:end].reshape(*lead, *one, H) if self.cell == "gru" else None
            layers.append((W, bias, b_hn))
        readout = []
        for (n_in, n_out), start in zip(zip(self.readout_sizes[:-1], self.readout_sizes[1:]), self.readout_offsets):
            w_end = start + n_in * n_out
            readout.append(
                (params[..., start:w_end].reshape(*lead, n_in, n_out), params[..., w_end : w_end + n_out].reshape(*lead, *one, n_out))
            )
        return layers, readout

    def _check(self, params: np.ndarray) -> np.ndarray:
        params = np.asarray(params)
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise ValueError(f"expected parameters of shape (P, {self.n_params}), got {params.shape}")
        return params

    # ------------------------------------------------------------ init / run
    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` genomes: input weights N(0, 1/F), orthogonal recurrent blocks, zero biases (LSTM forget gate 1), Glorot readout."""
        out = np.zeros((n, self.n_params))
        layers, readout = self._views(out)
        G = CELL_GATES[self.cell]
        for (F, H, *_), (W, b, _) in zip(self.layout, layers):
            W[:, :F] = rng.normal(0.0, np.sqrt(1.0 / F), size=(n, F, G * H))
            q, r = np.linalg.qr(rng.normal(size=(n * G, H, H)))
            q *= np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]  # a uniformly random orthogonal matrix
            W[:, F:] = q.reshape(n, G, H, H).transpose(0, 2, 1, 3).reshape(n, H, G * H)
            if self.cell == "lstm":
                b[..., H : 2 * H] = 1.0
        for k, (W, _) in enumerate(readout):
            n_in, n_out = W.shape[-2:]
            he = ACTIVATIONS[self.readout_activation].he_init and k < len(readout) - 1
            W[...] = rng.normal(0.0, np.sqrt(2.0 / n_in) if he else np.sqrt(2.0 / (n_in + n_out)), size=W.shape)
        return out

    def initial_state(self, n: int, batch: int) -> np.ndarray:
        """The rest state ``(n, batch, state_size)`` (zeros): where every sequence and episode starts."""
        return np.zeros((n, batch, self.state_size), dtype=self.dtype)

    def step(self, params: np.ndarray, state: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One time step of a stack: ``state (P, B, state_size)``, ``x (P, B, input_size)`` -> new state, outputs ``(P, B, n_out)``."""
        params = np.asarray(self._check(params), dtype=self.dtype)  # float32: a stack bound once is already cast
        x = np.asarray(x, dtype=self.dtype)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"expected step inputs with {self.input_size} features, got shape {x.shape}")
        layers, readout = self._views(params)
        act = ACTIVATIONS[self.activation]
        new = np.empty(np.broadcast_shapes(state.shape, (*x.shape[:-1], self.state_size)), dtype=self.dtype)
        h, lo, k = x, 0, CELL_STATE[self.cell]
        for (W, b, b_hn), (_, H, *_) in zip(layers, self.layout):
            layer_state = layer_step(self.cell, act, W, b, b_hn, h, state[..., lo : lo + k * H])
            new[..., lo : lo + k * H] = layer_state
            h, lo = layer_state[..., :H], lo + k * H
        return new, dense_stack_forward(h, readout, [OUTPUT_ACTIVATIONS[a] for a in self.readout_activations])

    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, B, n_out)`` for genomes ``(P, n_params)`` on sequences ``(B, n_inputs)`` or ``(P, B, n_inputs)``."""
        params = np.asarray(self._check(params), dtype=self.dtype)  # float32: the genome stack cast once per call
        x = np.asarray(x, dtype=self.dtype)
        if x.shape[-1] != self.n_inputs or x.ndim not in (2, 3):
            raise ValueError(f"expected inputs (B, {self.n_inputs}) or (P, B, {self.n_inputs}) (steps x input_size), got shape {x.shape}")
        P, B = len(params), x.shape[-2]
        widest = max(CELL_GATES[self.cell] * H for H in self.hidden)
        block = max(1, _BLOCK_VALUES // max(1, self.steps * B * widest))
        out = np.empty((P, B, self.n_outputs), dtype=self.dtype)
        for start in range(0, P, block):
            stop = min(start + block, P)
            out[start:stop] = self._forward_block(params[start:stop], x if x.ndim == 2 else x[start:stop])
        return out

    def _forward_block(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        P, B, T = len(params), x.shape[-2], self.steps
        # Time-major (T, B, F), or (T, P, B, F) for per-genome inputs.
        seq = x.reshape(*x.shape[:-1], T, self.input_size)
        seq = np.moveaxis(seq, -2, 0)
        layers, readout = self._views(params)
        act = ACTIVATIONS[self.activation]
        for (W, b, b_hn), (F, H, *_) in zip(layers, self.layout):
            # Shared inputs: one (T B, F) @ (P, F, GH) matmul; per-genome inputs: (P, T B, F) @ (P, F, GH).
            x2d = seq.reshape(T * B, F) if seq.ndim == 3 else np.moveaxis(seq, 0, 1).reshape(P, T * B, F)
            xp = input_projection(self.cell, x2d, W[:, :F], b).reshape(P, T, B, -1)
            state0 = np.zeros((P, B, CELL_STATE[self.cell] * H), dtype=self.dtype)
            seq, _, _ = layer_sequence(self.cell, act, np.moveaxis(xp, 1, 0), W[:, F:], b_hn, state0)
        return dense_stack_forward(seq[-1], readout, [OUTPUT_ACTIVATIONS[a] for a in self.readout_activations])

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_out)`` of one genome ``(n_params,)``."""
        return self.forward(np.asarray(params)[None, :], x)[0]

    # ------------------------------------------------------ backprop (trainer)
    def weight_mask(self) -> np.ndarray:
        """Boolean ``(n_params,)``: True on weight matrices, False on biases (L2 decays weights only)."""
        mask = np.zeros(self.n_params, dtype=bool)
        layers, readout = self._views(mask)
        for W in [layer[0] for layer in layers] + [W for W, _ in readout]:
            W[...] = True
        return mask

    def forward_train(
        self,
        params: np.ndarray,
        X: np.ndarray,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
        return_logits: bool = True,
        state0: np.ndarray | None = None,
    ) -> tuple[np.ndarray, RNNCache]:
        """Outputs ``(B, n_out)`` of one genome on sequences ``X (B, n_inputs)`` and the cache :meth:`backward` needs.

        Dropout (inverted) applies to the readout's input; ``state0 (B, state_size)``
        replaces the rest state (its gradient is not computed).
        """
        params, X = np.asarray(params, dtype=np.float64), np.asarray(X, dtype=np.float64)
        if params.shape != (self.n_params,):
            raise ValueError(f"expected a flat parameter vector of shape ({self.n_params},), got {params.shape}")
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"expected inputs of shape (B, {self.n_inputs}) (steps x input_size), got {X.shape}")
        check_dropout(dropout, rng)
        B, T = len(X), self.steps
        seq = scratch((T, B, self.input_size))
        np.copyto(seq, X.reshape(B, T, self.input_size).transpose(1, 0, 2))
        top, inputs, caches = self._layers_train(params, seq, state0)
        _, readout = self._views(params)
        out, records, is_logits = dense_train_forward(
            top[-1], readout, self.readout_activations, dropout, rng, drop_first_input=True, return_logits=return_logits
        )
        return out, RNNCache(inputs, caches, records, is_logits)

    def _layers_train(
        self, params: np.ndarray, seq: np.ndarray, state0: np.ndarray | None
    ) -> tuple[np.ndarray, list[np.ndarray], list[LayerCache]]:
        """The recurrent layers over ``seq (T, B, input_size)``: the top layer's outputs ``(T, B, H)``, each layer's input, its cache."""
        T, B = seq.shape[:2]
        layers, _ = self._views(params)
        act = ACTIVATIONS[self.activation]
        inputs, caches, lo, k = [], [], 0, CELL_STATE[self.cell]
        for (W, b, b_hn), (F, H, *_) in zip(layers, self.layout):
            inputs.append(seq)
            xp = input_projection(self.cell, seq.reshape(T * B, F), W[:F], b).reshape(T, B, -1)
            start = np.zeros((B, k * H)) if state0 is None else state0[:, lo : lo + k * H]
            seq, _, cache = layer_sequence(self.cell, act, xp, W[F:], b_hn, start, keep=True)
            assert cache is not None  # keep=True
            caches.append(cache)
            lo += k * H
        return seq, inputs, caches

    def backward(self, params: np.ndarray, cache: RNNCache, d_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient ``(n_params,)`` of the loss given ``d_out = d loss / d outputs``, by backpropagation through time."""
        params = np.asarray(params)
        grad = np.empty(self.n_params) if out is None else out
        _, readout = self._views(params)
        _, g_readout = self._views(grad)
        dz = dense_train_backward(
            d_out, cache.readout, [W for W, _ in readout], g_readout, self.readout_activations, cache.output_is_logits
        )
        d_top = dz @ readout[0][0].T
        if cache.readout[0].mask is not None:
            d_top *= cache.readout[0].mask
        # dH (B, H): the readout reads the top layer's last step only (layer_backward's fast path, no (T, B, H) of zeros).
        self._layers_backward(params, cache, d_top, grad, self.bptt_truncate)
        return grad

    def _layers_backward(self, params: np.ndarray, cache: RNNCache, dH: np.ndarray, grad: np.ndarray, truncate: int) -> None:
        """BPTT through the recurrent layers from ``dH`` at the top layer's outputs; their gradients into ``grad``.

        ``dH`` is ``(T, B, H)`` when every step's output is read (:meth:`backward_sequence`),
        ``(B, H)`` when only the last step's is (:meth:`backward`).
        """
        layers, _ = self._views(params)
        g_layers, _ = self._views(grad)
        act = ACTIVATIONS[self.activation]
        for i in range(len(layers) - 1, -1, -1):
            (W, _, _), (gW, gb, gbhn), F = layers[i], g_layers[i], self.layout[i][0]
            dxp, dWh, db_hn = layer_backward(self.cell, act, cache.layers[i], dH, W[F:], truncate)
            dWx, db, dX = layer_input_grads(cache.inputs[i], dxp, W[:F], need_dX=i > 0)
            gW[:F], gW[F:], gb[...] = dWx, dWh, db
            if gbhn is not None:
                gbhn[...] = db_hn
            if dX is not None:
                dH = dX

    # ------------------------------------------- every step's output (policy gradient)
    def forward_train_sequence(self, params: np.ndarray, X: np.ndarray, return_logits: bool = True) -> tuple[np.ndarray, RNNCache]:
        """Outputs ``(T, B, n_out)`` at every step of sequences ``X (T, B, input_size)`` (time-major), from the rest state.

        What a control episode's policy computed step by step (:meth:`step`),
        recomputed in one pass with the cache :meth:`backward_sequence` needs:
        the readout reads the top layer at every step, not only at the last.
        """
        params, X = np.asarray(params, dtype=np.float64), np.asarray(X, dtype=np.float64)
        if params.shape != (self.n_params,):
            raise ValueError(f"expected a flat parameter vector of shape ({self.n_params},), got {params.shape}")
        if X.ndim != 3 or X.shape[2] != self.input_size:
            raise ValueError(f"expected time-major inputs of shape (T, B, {self.input_size}), got {X.shape}")
        T, B = X.shape[:2]
        top, inputs, caches = self._layers_train(params, np.ascontiguousarray(X), None)
        _, readout = self._views(params)
        out, records, is_logits = dense_train_forward(
            top.reshape(T * B, -1), readout, self.readout_activations, return_logits=return_logits
        )
        return out.reshape(T, B, -1), RNNCache(inputs, caches, records, is_logits)

    def backward_sequence(self, params: np.ndarray, cache: RNNCache, d_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient ``(n_params,)`` given ``d_out (T, B, n_out)``, the loss's gradient at every step's output (full BPTT).

        ``bptt_truncate`` is for a loss read at the last step only; a network
        that sets it refuses a loss read at every step (ValueError).
        """
        if self.bptt_truncate:
            raise ValueError(
                f"RNN: bptt_truncate = {self.bptt_truncate} truncates a loss read at the last step; "
                "a loss read at every step (backward_sequence) needs bptt_truncate = 0"
            )
        params, d_out = np.asarray(params), np.asarray(d_out, dtype=np.float64)
        T, B = d_out.shape[:2]
        grad = np.empty(self.n_params) if out is None else out
        _, readout = self._views(params)
        _, g_readout = self._views(grad)
        dz = dense_train_backward(
            d_out.reshape(T * B, -1), cache.readout, [W for W, _ in readout], g_readout, self.readout_activations, cache.output_is_logits
        )
        dH = (dz @ readout[0][0].T).reshape(T, B, self.hidden[-1])
        self._layers_backward(params, cache, dH, grad, 0)
        return grad

    # ----------------------------------------------------------- description
    def describe(self) -> dict[str, Any]:
        """JSON-able description, enough to rebuild the spec."""
        return {
            "type": "rnn",
            "cell": self.cell,
            "input_size": self.input_size,
            "hidden": list(self.hidden),
            "output_size": self.output_size,
            "steps": self.steps,
            "activation": self.activation,
            "readout": list(self.readout),
            "readout_activation": self.readout_activation,
            "output_activation": self.output_activation,
            "bptt_truncate": self.bptt_truncate,
            **dtype_description(self.dtype),
            "n_params": self.n_params,
            "layout": (
                "per recurrent layer: W (input + hidden, gates x hidden) row-major, input rows first; b (gates x hidden); "
                "GRU: b_hn (hidden); gates in PyTorch's order (LSTM i f g o, GRU r z n); then per readout layer W (n_in x n_out), b"
            ),
        }

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> RNN:
        """Rebuild from :meth:`describe` output."""
        return cls(
            input_size=int(description["input_size"]),
            hidden=tuple(description["hidden"]),
            output_size=int(description["output_size"]),
            cell=description["cell"],
            steps=int(description["steps"]),
            activation=description["activation"],
            readout=tuple(description["readout"]),
            readout_activation=description["readout_activation"],
            output_activation=description["output_activation"],
            bptt_truncate=int(description.get("bptt_truncate", 0)),
            dtype=description.get("dtype", "float64"),
        )
