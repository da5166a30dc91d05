"""Convolutional network over a stack of genomes, with a backward pass for the trainer.

Architecture: input ``(C, H, W)`` -> conv blocks -> flatten -> dense hidden
layers -> output layer. A conv block is ``conv (F filters, k x k, stride,
padding) -> activation -> max pool (size p, stride p, optional)``.

Flat parameter layout (what a genome is), in this order:

* per conv block: ``W (F, C, k, k)`` row-major, then ``b (F)``
  (the PyTorch ``Conv2d`` weight layout);
* per dense layer (hidden ones, then the output one): ``W (n_in, n_out)``
  row-major, then ``b (n_out)`` (as :class:`~networks.mlp.MLP`); the first dense
  layer reads the last block's maps flattened in ``(C, H, W)`` order (as
  ``torch.flatten``).

The layer maths, forward and backward side by side, is in
:mod:`networks.layers.conv` (batch-last im2col, conv fused with max pooling,
pooling before the bias and activation) and :mod:`networks.layers.dense`
(the dense head, shared with the MLP); this module lays out the genome and
chains the layers. A population's forward pass has no Python loop over
genomes, samples or pixels.

Dropout (training only) is inverted dropout on the inputs of the dense layers
(the flattened conv features and each dense hidden layer's output), as the
MLP's dropout on its hidden layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from networks.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from networks.layers.conv import (
    ConvBlock,
    ConvGeometry,
    conv_pool_backward,
    conv_pool_forward,
    is_int,
    pad_input,
    unpad_gradient,
)
from networks.layers.dense import (
    DenseRecord,
    check_dropout,
    dense_stack_forward,
    dense_train_backward,
    dense_train_forward,
)
from networks.spec import NetworkSpec, Trainable, check_dtype, dtype_description

__all__ = ["CNN", "BlockRecord", "CNNCache", "ConvBlock"]


# ============================================================ training cache
class BlockRecord(NamedTuple):
    """What one conv block's backward needs from its forward."""

    padded: np.ndarray  # the block's zero-padded input, (C, Hp, Wp, B)
    argmax: np.ndarray | None  # pooling offset holding each window's maximum, uint8 (F, H'*W'*B); None without pooling
    pre: np.ndarray  # max-pooled convolution + b, the activation's input, (F, H'*W'*B)
    post: np.ndarray  # activation output, (F, H'*W'*B)


class CNNCache(NamedTuple):
    """Records of :meth:`CNN.forward_train`, consumed by :meth:`CNN.backward`."""

    blocks: list[BlockRecord]
    dense: list[DenseRecord]
    output_is_logits: bool
    batch: int


# ================================================================= the spec
@dataclass(frozen=True)
class CNN(NetworkSpec, Trainable):
    """A convolutional network spec: shapes and activations, no weights.

    ``conv_blocks`` holds :class:`ConvBlock` objects or dicts with their fields
    (``filters``, ``kernel_size``, ``stride``, ``padding``, ``activation``,
    ``pool``). ``hidden`` are the widths of the dense hidden layers after the
    flatten (with ``activation``), ``output_size`` the output width.
    ``dtype`` is what :meth:`forward` computes in (``"float32"``: genomes and
    inputs cast once per call); the trainer's :meth:`forward_train` computes in
    float32 or float64 as before, from its parameters and inputs.
    """

    input_shape: tuple[int, int, int]
    conv_blocks: tuple[ConvBlock, ...]
    output_size: int
    hidden: tuple[int, ...] = ()
    activation: str = "relu"
    output_activation: str = "identity"
    dtype: str = "float64"
    geometry: tuple[ConvGeometry, ...] = field(init=False, repr=False)
    dense_shapes: tuple[tuple[int, int], ...] = field(init=False, repr=False)
    offsets: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (tuple, list)) else None
        if shape is None or len(shape) != 3 or not all(is_int(v) and v >= 1 for v in shape):
            raise ValueError(f"input_shape = {self.input_shape!r}; must be (channels, height, width), integers >= 1")
        object.__setattr__(self, "input_shape", tuple(int(v) for v in shape))
        if not isinstance(self.conv_blocks, (tuple, list)) or not self.conv_blocks:
            raise ValueError(
                f"conv_blocks = {self.conv_blocks!r}; must hold at least one conv block (use MLP for a network without convolutions)"
            )
        blocks = []
        for i, block in enumerate(self.conv_blocks):
            blocks.append(ConvBlock.parse(block, f"conv block {i}"))
        object.__setattr__(self, "conv_blocks", tuple(blocks))
        hidden = tuple(self.hidden) if isinstance(self.hidden, (tuple, list)) else None
        if hidden is None or not all(is_int(v) and v >= 1 for v in hidden):
            raise ValueError(f"hidden = {self.hidden!r}; must be a list of dense layer widths, integers >= 1")
        object.__setattr__(self, "hidden", tuple(int(v) for v in hidden))
        if not is_int(self.output_size) or self.output_size < 1:
            raise ValueError(f"output_size = {self.output_size!r}; must be an integer >= 1")
        object.__setattr__(self, "output_size", int(self.output_size))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation = {self.activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation = {self.output_activation!r} is not known; allowed: {sorted(OUTPUT_ACTIVATIONS)}")

        check_dtype(self.dtype)
        geometry = []
        channels, height, width = self.input_shape
        offsets = [0]
        for i, block in enumerate(blocks):
            geo = block.geometry(channels, height, width, f"conv block {i}")
            geometry.append(geo)
            offsets.append(offsets[-1] + geo.filters * geo.n_taps + geo.filters)
            channels, height, width = geo.filters, geo.out_height, geo.out_width
        sizes = (channels * height * width,) + self.hidden + (int(self.output_size),)
        dense_shapes = tuple((sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        for n_in, n_out in dense_shapes:
            offsets.append(offsets[-1] + n_in * n_out + n_out)
        object.__setattr__(self, "geometry", tuple(geometry))
        object.__setattr__(self, "dense_shapes", dense_shapes)
        object.__setattr__(self, "offsets", tuple(offsets))

    # ------------------------------------------------------------------ layout
    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector."""
        return self.offsets[-1]

    @property
    def n_inputs(self) -> int:
        """Input width when flattened: C * H * W."""
        return math.prod(self.input_shape)

    @property
    def n_outputs(self) -> int:
        """Output width."""
        return int(self.output_size)

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the last conv block's output, before the flatten."""
        geo = self.geometry[-1]
        return geo.filters, geo.out_height, geo.out_width

    def dense_activation(self, layer: int) -> str:
        """Name of the activation after dense layer ``layer`` (the last one is the output layer)."""
        return self.output_activation if layer == len(self.dense_shapes) - 1 else self.activation

    @property
    def dense_activations(self) -> tuple[str, ...]:
        """The activation after each dense layer, first to last."""
        return tuple(self.dense_activation(i) for i in range(len(self.dense_shapes)))

    def _layer_slices(self) -> list[tuple[str, tuple[int, ...], slice, slice]]:
        """Per layer: ``(kind, weight shape, weight slice, bias slice)`` in the flat layout."""
        out: list[tuple[str, tuple[int, ...], slice, slice]] = []
        n_conv = len(self.geometry)
        for i, geo in enumerate(self.geometry):
            start = self.offsets[i]
            w_end = start + geo.filters * geo.n_taps
            shape = (geo.filters, geo.channels, geo.kernel, geo.kernel)
            out.append(("conv", shape, slice(start, w_end), slice(w_end, w_end + geo.filters)))
        for j, (n_in, n_out) in enumerate(self.dense_shapes):
            start = self.offsets[n_conv + j]
            w_end = start + n_in * n_out
            out.append(("dense", (n_in, n_out), slice(start, w_end), slice(w_end, w_end + n_out)))
        return out

    def unflatten(self, params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split ``(P, n_params)`` into per-layer tensors.

        Conv layers: ``W (P, F, C, k, k)``, ``b (P, F)``; dense layers:
        ``W (P, n_in, n_out)``, ``b (P, 1, n_out)`` (as the MLP). The inverse is
        :func:`networks.layers.dense.flatten_layers`.
        """
        params = np.asarray(params)
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise ValueError(f"expected parameters of shape (P, {self.n_params}), got {params.shape}")
        P = params.shape[0]
        layers = []
        for kind, shape, w, b in self._layer_slices():
            bias_shape = (P, shape[0]) if kind == "conv" else (P, 1, shape[1])
            layers.append((params[:, w].reshape((P,) + shape), params[:, b].reshape(bias_shape)))
        return layers

    def weight_mask(self) -> np.ndarray:
        """Boolean ``(n_params,)``: True on weights, False on biases (L2 decays weights only)."""
        mask = np.zeros(self.n_params, dtype=bool)
        for _, _, w, _ in self._layer_slices():
            mask[w] = True
        return mask

    # ------------------------------------------------------------ init / run
    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` parameter vectors: He or Glorot normal weights from the fan-in (and fan-out), zero biases."""
        out = np.zeros((n, self.n_params))
        for (kind, shape, w, _), act in zip(self._layer_slices(), self._init_activations()):
            if kind == "conv":
                fan_in, fan_out = shape[1] * shape[2] * shape[3], shape[0] * shape[2] * shape[3]
            else:
                fan_in, fan_out = shape
            std = np.sqrt(2.0 / fan_in) if ACTIVATIONS[act].he_init else np.sqrt(2.0 / (fan_in + fan_out))
            out[:, w] = rng.normal(0.0, std, size=(n, w.stop - w.start))
        return out

    def _init_activations(self) -> list[str]:
        # Conv layers: their block's activation; dense layers: the hidden activation (as the MLP).
        return [b.activation for b in self.conv_blocks] + [self.activation] * len(self.dense_shapes)

    def _images(self, x: np.ndarray, dtype) -> tuple[np.ndarray, bool]:
        """Inputs as a batch-last ``(C, H, W, B)`` map (``(P, C, H, W, B)`` when per genome)."""
        C, H, W = self.input_shape
        x = np.asarray(x)
        per_genome = x.ndim in (3, 5)
        if x.ndim in (2, 3) and x.shape[-1] == self.n_inputs:
            x = x.reshape(x.shape[:-1] + (C, H, W))
        if x.ndim not in (4, 5) or x.shape[-3:] != (C, H, W):
            raise ValueError(f"expected inputs (B, {C}, {H}, {W}) or (B, {self.n_inputs}) (or per genome (P, B, ...)), got shape {x.shape}")
        return np.moveaxis(x.astype(dtype, copy=False), -4, -1), per_genome

    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, B, n_out)`` for params ``(P, n)`` and inputs ``(B, C, H, W)`` or ``(B, C*H*W)`` shared by all P.

        Per-genome inputs ``(P, B, C, H, W)`` or ``(P, B, C*H*W)`` are accepted too.
        """
        params = np.asarray(params)
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise ValueError(f"expected parameters of shape (P, {self.n_params}), got {params.shape}")
        P = params.shape[0]
        if self.dtype != "float64":  # float32: the genome stack cast once per call, the inputs unless a task cast them
            params = params.astype(self.dtype)
            dtype = np.dtype(self.dtype)
        else:
            dtype = np.result_type(params.dtype, np.asarray(x).dtype, np.float32)
        h, per_genome = self._images(x, dtype)  # (C, H, W, B) or (P, C, H, W, B)
        if per_genome and h.shape[0] != P:
            raise ValueError(f"per-genome inputs have {h.shape[0]} genomes, params have {P}")
        batch = h.shape[-1]
        layers = self.unflatten(params)
        for geo, block, (W, b) in zip(self.geometry, self.conv_blocks, layers):
            # The first block's columns are shared by all P genomes (unless the inputs are per genome).
            a, _ = conv_pool_forward(pad_input(h, geo), W.reshape(P, geo.filters, geo.n_taps), geo)
            a += b[:, :, None]
            a = ACTIVATIONS[block.activation].forward(a, out=a)
            h = a.reshape(P, geo.filters, geo.out_height, geo.out_width, batch)
        # (P, C*H*W, B) in (C, H, W) order -> (P, B, C*H*W)
        h = h.reshape(P, -1, batch).transpose(0, 2, 1)
        activations = [OUTPUT_ACTIVATIONS[name] for name in self.dense_activations]
        return dense_stack_forward(h, layers[len(self.geometry) :], activations)

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_out)`` of one network given its flat vector ``(n,)``."""
        return self.forward(np.asarray(params)[None, :], x)[0]

    # -------------------------------------------------------------- training
    def _views(self, flat: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer ``W`` (conv: ``(F, C*k*k)``, dense: ``(n_in, n_out)``) and ``b`` as views of a flat vector."""
        out = []
        for _kind, shape, w, b in self._layer_slices():
            rows = shape[0]
            out.append((flat[w].reshape(rows, -1), flat[b]))
        return out

    def forward_train(
        self, params: np.ndarray, X: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None, return_logits: bool = True
    ) -> tuple[np.ndarray, CNNCache]:
        """Outputs ``(B, n_out)`` of one network and the cache :meth:`backward` needs.

        ``X`` is ``(B, C, H, W)`` or ``(B, C*H*W)``. For a softmax output layer
        the outputs are the logits unless ``return_logits=False``; dropout is
        inverted dropout on the inputs of the dense layers (module docstring).
        """
        params = np.asarray(params)
        if params.shape != (self.n_params,):
            raise ValueError(f"expected a flat parameter vector of shape ({self.n_params},), got {params.shape}")
        check_dropout(dropout, rng)
        dtype = np.result_type(params.dtype, np.asarray(X).dtype, np.float32)
        h, per_genome = self._images(X, dtype)
        if per_genome:
            raise ValueError(f"forward_train takes one batch (B, C, H, W) or (B, C*H*W), got shape {np.shape(X)}")
        batch = h.shape[-1]
        views = self._views(params)
        n_conv = len(self.geometry)

        blocks = []
        for geo, block, (W, b) in zip(self.geometry, self.conv_blocks, views):
            padded = pad_input(h, geo)
            pre, argmax = conv_pool_forward(padded, W, geo, track_argmax=True)
            pre += b[:, None]
            a = ACTIVATIONS[block.activation].forward(pre)
            blocks.append(BlockRecord(padded, argmax, pre, a))
            h = a.reshape(geo.filters, geo.out_height, geo.out_width, batch)

        h = h.reshape(-1, batch).T  # (B, C*H*W) view, (C, H, W) order
        out, dense, is_logits = dense_train_forward(
            h, views[n_conv:], self.dense_activations, dropout, rng, drop_first_input=True, return_logits=return_logits
        )
        return out, CNNCache(blocks, dense, is_logits, batch)

    def backward(self, params: np.ndarray, cache: CNNCache, d_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient ``(n_params,)`` of the loss w.r.t. ``params`` given ``d_out = d loss / d outputs``.

        With a softmax output returned as logits, ``d_out`` is ``d loss / d logits``.
        ``params`` and ``cache`` must come from the same :meth:`forward_train`
        call; ``out``, if given, is a float ``(n_params,)`` buffer the gradient
        is written into (and returned).
        """
        params = np.asarray(params)
        grad = np.empty(self.n_params, dtype=np.result_type(params.dtype, np.float32)) if out is None else out
        weights = self._views(params)
        grads = self._views(grad)
        n_conv = len(self.geometry)
        dense_weights = [W for W, _ in weights[n_conv:]]
        dz = dense_train_backward(
            np.asarray(d_out), cache.dense, dense_weights, grads[n_conv:], self.dense_activations, cache.output_is_logits
        )
        # Straight into the last block's (F, H'*W'*B) layout: (W dz^T) is (C*H*W, B).
        d = dense_weights[0] @ dz.T
        mask = cache.dense[0].mask
        if mask is not None:
            d *= mask.T
        d = d.reshape(self.geometry[-1].filters, -1)

        for i in range(n_conv - 1, -1, -1):
            geo, record = self.geometry[i], cache.blocks[i]
            d_pre = ACTIVATIONS[self.conv_blocks[i].activation].backward(d, record.pre, record.post)
            dW, db = grads[i]
            np.sum(d_pre, axis=1, out=db)
            # No gradient w.r.t. the data: the first block skips col2im.
            dW[...], d_padded = conv_pool_backward(d_pre, record.padded, weights[i][0], record.argmax, geo, input_grad=i > 0)
            if d_padded is not None:  # i > 0
                d = unpad_gradient(d_padded, geo).reshape(geo.channels, -1)
        return grad

    # ----------------------------------------------------------- description
    def describe(self) -> dict:
        """JSON-able description, enough to rebuild the spec."""
        return {
            "type": "cnn",
            "input_shape": list(self.input_shape),
            "conv_blocks": [block.describe() for block in self.conv_blocks],
            "hidden": list(self.hidden),
            "activation": self.activation,
            "output_size": self.n_outputs,
            "output_activation": self.output_activation,
            **dtype_description(self.dtype),
            "n_params": self.n_params,
            "layout": (
                "per conv block: W (F, C, k, k) row-major, then b (F); then per dense layer: W (n_in, n_out) "
                "row-major, then b (n_out); the first dense layer reads the maps flattened in (C, H, W) order"
            ),
        }

    @classmethod
    def from_description(cls, description: dict) -> CNN:
        """Rebuild from :meth:`describe` output."""
        return cls(
            input_shape=tuple(description["input_shape"]),
            conv_blocks=tuple(ConvBlock.parse(dict(block), f"conv block {i}") for i, block in enumerate(description["conv_blocks"])),
            output_size=description["output_size"],
            hidden=tuple(description.get("hidden", ())),
            activation=description.get("activation", "relu"),
            dtype=description.get("dtype", "float64"),
            output_activation=description.get("output_activation", "identity"),
        )
