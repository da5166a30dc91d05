"""Feedforward network (multi-layer perceptron) over a stack of genomes.

The parameters of one network are a single flat vector laid out layer by
layer as ``W (n_in x n_out)`` row-major followed by ``b (n_out)``. A stack of
P such vectors, shape ``(P, n_params)``, is evaluated on a batch of B inputs
with one batched ``matmul`` per layer: ``(P, B, n_in) @ (P, n_in, n_out)``.
There is no Python loop over individuals or samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from networks.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, softmax

# He initialisation suits rectifiers, Glorot (Xavier) the saturating ones.
_BLOCK_VALUES = 1 << 18  # activations per genome block in forward (~2 MB of float64)
_HE = {"relu", "leaky_relu"}


@dataclass(frozen=True)
class MLP:
    """A feedforward network spec: layer sizes and activations, no weights.

    ``layer_sizes`` includes the input and output sizes, e.g. ``(64, 16, 10)``.
    """

    layer_sizes: tuple[int, ...]
    activation: str = "tanh"
    output_activation: str = "identity"
    shapes: tuple[tuple[int, int], ...] = field(init=False, repr=False)
    offsets: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sizes = tuple(int(s) for s in self.layer_sizes)
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"layer_sizes must hold at least an input and an output size, all >= 1; got {self.layer_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation {self.output_activation!r} is not known; allowed: {sorted(OUTPUT_ACTIVATIONS)}"
            )
        object.__setattr__(self, "layer_sizes", sizes)
        shapes = tuple((sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        offsets = [0]
        for n_in, n_out in shapes:
            offsets.append(offsets[-1] + n_in * n_out + n_out)
        object.__setattr__(self, "shapes", shapes)
        object.__setattr__(self, "offsets", tuple(offsets))

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
        """Split ``(P, n_params)`` into per-layer ``W (P, n_in, n_out)`` and ``b (P, 1, n_out)``."""
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

    def flatten(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Inverse of :meth:`unflatten`: per-layer tensors back to ``(P, n_params)``."""
        P = layers[0][0].shape[0]
        parts = []
        for W, b in layers:
            parts.append(W.reshape(P, -1))
            parts.append(b.reshape(P, -1))
        return np.concatenate(parts, axis=1)

    # ------------------------------------------------------------ init / run
    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` parameter vectors: He or Glorot normal weights, zero biases."""
        out = np.zeros((n, self.n_params))
        for (n_in, n_out), start in zip(self.shapes, self.offsets):
            if self.activation in _HE:
                std = np.sqrt(2.0 / n_in)
            else:
                std = np.sqrt(2.0 / (n_in + n_out))
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
        if x.shape[-1] != self.n_inputs:
            raise ValueError(f"expected inputs with {self.n_inputs} features, got shape {x.shape}")
        P = params.shape[0] if params.ndim == 2 else 1
        rows = x.shape[-2] if x.ndim >= 2 else 1
        block = max(1, _BLOCK_VALUES // max(1, rows * max(self.layer_sizes)))
        if P <= block:
            return self._forward(params, x)
        out = np.empty((P, rows, self.n_outputs), dtype=np.result_type(params, x))
        for start in range(0, P, block):
            stop = min(start + block, P)
            out[start:stop] = self._forward(params[start:stop], x if x.ndim == 2 else x[start:stop])
        return out

    def _forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        h = x
        for i, (W, b) in enumerate(self.unflatten(params)):
            # (B, in) broadcasts against (P, in, out) to (P, B, out).
            z = np.matmul(h, W) + b
            name = self.layer_activation(i)
            h = softmax(z) if name == "softmax" else ACTIVATIONS[name][0](z)
        return h

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_out)`` of one network given its flat vector ``(n,)``."""
        return self.forward(np.asarray(params)[None, :], x)[0]

    # ------------------------------------------------------ backprop (trainer)
    def forward_train(self, params: np.ndarray, X: np.ndarray, dropout: float = 0.0, rng=None, return_logits: bool = True):
        """Training-mode forward of one network; see :func:`networks.backprop.forward_train`."""
        from networks.backprop import forward_train

        return forward_train(self, params, X, dropout, rng, return_logits)

    def backward(self, params: np.ndarray, cache, d_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient of the loss w.r.t. the flat params; see :func:`networks.backprop.backward`."""
        from networks.backprop import backward

        return backward(self, params, cache, d_out, out=out)

    def weight_mask(self) -> np.ndarray:
        """True on weights, False on biases (L2 decays weights only)."""
        from networks.backprop import weight_mask

        return weight_mask(self)

    # ----------------------------------------------------------- description
    def describe(self) -> dict:
        """JSON-able description, enough to rebuild the spec."""
        return {
            "type": "mlp",
            "layer_sizes": list(self.layer_sizes),
            "activation": self.activation,
            "output_activation": self.output_activation,
            "n_params": self.n_params,
            "layout": "per layer: W (n_in x n_out) row-major, then b (n_out)",
        }

    @classmethod
    def from_description(cls, description: dict) -> "MLP":
        """Rebuild from :meth:`describe` output."""
        return cls(
            layer_sizes=tuple(description["layer_sizes"]),
            activation=description["activation"],
            output_activation=description["output_activation"],
        )
