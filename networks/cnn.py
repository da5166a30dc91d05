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

How the forward pass is computed (no Python loop over genomes, samples or pixels):

* Internally a feature map is stored *batch last*, ``(C, H, W, B)`` (with a
  leading genome axis ``P`` where genomes differ). im2col is then one strided
  copy (``as_strided`` view, then ``reshape``) whose innermost run is the
  whole batch, giving columns ``(C*k*k, H'*W'*B)`` whose rows ``(c, i, j)``
  match the filter layout, so a convolution is one matmul
  ``(F, C*k*k) @ cols``. The last block's maps ``(C, H, W, B)`` flatten to
  ``(C*H*W, B)``, already in ``(C, H, W)`` order, for free.
* The first block's columns are shared by the whole population: built once,
  and the P genomes' filters, stacked as ``(P*F, C*k*k)``, go through one
  matmul. Later blocks (and per-genome inputs) use a batched matmul
  ``(P, F, K) @ (P, K, N)``.
* Max pooling (p x p, stride p) loops over the p*p *pooling offsets*
  ``(u, v)``: the columns of offset ``(u, v)`` are the conv outputs at rows
  ``p*h + u``, columns ``p*w + v``, so ``im2col -> matmul -> running max``
  per offset gives the pooled map without ever storing the full-resolution
  convolution output (p*p times larger). Measured on the benchmark's
  (64, 1, 28, 28) case, this beats one big matmul followed by a max over the
  offsets: the big intermediate costs more in memory traffic and page faults
  than the p*p smaller matmuls. Rows and columns that do not fill a whole
  pooling window are dropped (floor mode, PyTorch's default) and never computed.
* Max pooling commutes with a per-channel bias and with any non-decreasing
  activation (``max_i f(z_i + b) = f(max_i z_i + b)``), so a block computes
  ``f(maxpool(conv(x)) + b)``: the same function as ``maxpool(f(conv(x) + b))``
  with the bias and the activation applied to a map p*p times smaller.
  Every activation in :mod:`networks.activations` is non-decreasing; a block
  with pooling refuses any other (``_NON_DECREASING``).

Backward (one network, for :mod:`networks.trainer`), forward and backward
side by side below (:func:`conv_pool_forward` / :func:`conv_pool_backward`,
:func:`im2col` / :func:`col2im_add`, :func:`dense_forward` / :func:`dense_backward`):

* max pool: the forward keeps the argmax offset of each window (``uint8``,
  the first one on ties, as PyTorch); the gradient of a window goes to it.
* conv, per pooling offset: ``dz = d_pooled * [argmax == o]``,
  ``dW += dz cols^T``, ``dcols = W^T dz``; col2im adds ``dcols`` back into
  the padded input with one strided add per kernel tap (k*k adds, no
  ``np.add.at``). The columns are rebuilt from the cached padded input
  (cheaper than keeping them), and the first block skips ``dcols``
  altogether (no gradient w.r.t. the data is needed).

Dropout (training only) is inverted dropout on the inputs of the dense layers
(the flattened conv features and each dense hidden layer's output), as the
MLP's dropout on its hidden layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from networks.activations import ACTIVATIONS, BACKWARD, OUTPUT_ACTIVATIONS, softmax

# He initialisation suits rectifiers, Glorot (Xavier) the saturating ones (as the MLP).
_HE = {"relu", "leaky_relu"}

# Activations known to be non-decreasing: pooling before them is exact (see the module docstring).
_NON_DECREASING = {"relu", "leaky_relu", "tanh", "sigmoid", "identity"}

_BLOCK_KEYS = ("filters", "kernel_size", "stride", "padding", "activation", "pool")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# ============================================================ conv block spec
@dataclass(frozen=True)
class ConvBlock:
    """One conv block: ``filters`` maps of ``kernel_size`` x ``kernel_size``, then the activation, then a max pool.

    ``padding`` is a number of zero rows/columns on each side or ``"same"``
    (output size ``ceil(H / stride)``, any odd extra row/column at the bottom
    and right, as TensorFlow). ``pool`` is 0 (none) or the size p of a p x p
    max pool with stride p.
    """

    filters: int
    kernel_size: int
    stride: int = 1
    padding: int | str = 0
    activation: str = "relu"
    pool: int = 0

    def validate(self, where: str) -> None:
        """Raise ValueError naming the block, the field, the value and what is allowed."""
        for name in ("filters", "kernel_size", "stride"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{where}: {name} = {value!r}; must be an integer >= 1")
        if not (self.padding == "same" or (_is_int(self.padding) and self.padding >= 0)):
            raise ValueError(f"{where}: padding = {self.padding!r}; must be an integer >= 0 or 'same'")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{where}: activation = {self.activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
        if not _is_int(self.pool) or self.pool < 0 or self.pool == 1:
            raise ValueError(f"{where}: pool = {self.pool!r}; must be 0 (no pooling) or a window size >= 2")
        if self.pool and self.activation not in _NON_DECREASING:
            raise ValueError(
                f"{where}: pool = {self.pool} after activation {self.activation!r}: pooling is computed before the "
                f"activation, which is exact only for non-decreasing ones {sorted(_NON_DECREASING)}"
            )

    def describe(self) -> dict:
        """JSON-able fields."""
        return {name: getattr(self, name) for name in _BLOCK_KEYS}

    def normalised(self) -> "ConvBlock":
        """The same block with plain Python ints (NumPy integers would not serialise to JSON)."""
        padding = self.padding if self.padding == "same" else int(self.padding)
        return ConvBlock(int(self.filters), int(self.kernel_size), int(self.stride), padding, self.activation, int(self.pool))


class _Geometry(NamedTuple):
    """Sizes of one conv block, fixed by the spec (computed once)."""

    channels: int  # C, input channels
    height: int  # H, input height
    width: int  # W, input width
    pad: tuple[int, int, int, int]  # top, bottom, left, right
    kernel: int  # k
    stride: int  # s
    pool: int  # p (1 = no pooling)
    filters: int  # F
    out_height: int  # H', after pooling (or the conv output height without pooling)
    out_width: int  # W'

    @property
    def padded(self) -> tuple[int, int]:
        top, bottom, left, right = self.pad
        return self.height + top + bottom, self.width + left + right

    @property
    def n_taps(self) -> int:
        """Rows of the im2col matrix: C * k * k."""
        return self.channels * self.kernel * self.kernel


def _block_geometry(block: ConvBlock, channels: int, height: int, width: int, where: str) -> _Geometry:
    """Sizes of a block on a ``(channels, height, width)`` input; ValueError when it does not fit."""
    k, s = block.kernel_size, block.stride
    if block.padding == "same":
        out_h, out_w = -(-height // s), -(-width // s)
        pad_h = max((out_h - 1) * s + k - height, 0)
        pad_w = max((out_w - 1) * s + k - width, 0)
        pad = (pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2)
    else:
        pad = (block.padding,) * 4
    padded_h, padded_w = height + pad[0] + pad[1], width + pad[2] + pad[3]
    if k > padded_h or k > padded_w:
        raise ValueError(
            f"{where}: kernel_size {k} is larger than its input {height}x{width} "
            f"(padded to {padded_h}x{padded_w}); use a smaller kernel, padding, or fewer pooling layers before it"
        )
    conv_h, conv_w = (padded_h - k) // s + 1, (padded_w - k) // s + 1
    p = block.pool or 1
    if p > conv_h or p > conv_w:
        raise ValueError(
            f"{where}: pool {p} does not fit the {conv_h}x{conv_w} convolution output; use a smaller pool, "
            "pool = 0, padding, or a larger input"
        )
    return _Geometry(channels, height, width, pad, k, s, p, block.filters, conv_h // p, conv_w // p)


# ================================================= layers: forward | backward
def pad_input(x: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Zero-pad a ``(..., C, H, W, B)`` map to ``(..., C, H + top + bottom, W + left + right, B)``."""
    top, bottom, left, right = geo.pad
    if not (top or bottom or left or right):
        return x
    hp, wp = geo.padded
    out = np.zeros(x.shape[:-3] + (hp, wp, x.shape[-1]), dtype=x.dtype)
    out[..., top : top + geo.height, left : left + geo.width, :] = x
    return out


def unpad_gradient(d_padded: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Backward of :func:`pad_input`: the gradient on the un-padded region."""
    top, _, left, _ = geo.pad
    return d_padded[..., top : top + geo.height, left : left + geo.width, :]


def _window_view(padded: np.ndarray, geo: _Geometry, offset: int) -> np.ndarray:
    """Strided view ``(..., C, k, k, H', W', B)`` of a padded ``(..., C, Hp, Wp, B)`` map, for one pooling offset.

    With ``(u, v) = divmod(offset, p)``, element ``[c, i, j, h, w, b]`` is
    ``padded[c, s*(p*h + u) + i, s*(p*w + v) + j, b]``: tap ``(i, j)`` of the
    convolution output at row ``p*h + u``, column ``p*w + v``, i.e. offset
    ``(u, v)`` of pooling window ``(h, w)`` (``p = 1`` without pooling).
    """
    k, s, p = geo.kernel, geo.stride, geo.pool
    u, v = divmod(offset, p)
    start = padded[..., s * u :, s * v :, :]
    *lead_strides, s_c, s_h, s_w, s_b = padded.strides
    shape = padded.shape[:-3] + (k, k, geo.out_height, geo.out_width, padded.shape[-1])
    strides = (*lead_strides, s_c, s_h, s_w, s * p * s_h, s * p * s_w, s_b)
    return as_strided(start, shape=shape, strides=strides, writeable=False)


def im2col(padded: np.ndarray, geo: _Geometry, offset: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Columns ``(..., C*k*k, H'*W'*B)`` of a padded ``(..., C, Hp, Wp, B)`` map for one pooling offset.

    One strided copy (into ``out`` when given), innermost run the whole batch.
    Row ``(c, i, j)`` matches the filter layout ``W (F, C, k, k)``.
    """
    view = _window_view(padded, geo, offset)
    shape = padded.shape[:-4] + (geo.n_taps, geo.out_height * geo.out_width * padded.shape[-1])
    if out is None:
        return np.ascontiguousarray(view).reshape(shape)
    np.copyto(out.reshape(view.shape), view)
    return out


def col2im_add(d_padded: np.ndarray, d_cols: np.ndarray, geo: _Geometry, offset: int = 0) -> None:
    """Backward of :func:`im2col` for one network: add ``d_cols (C*k*k, H'*W'*B)`` into ``d_padded (C, Hp, Wp, B)``.

    One strided add per kernel tap ``(i, j)``: within one tap and one pooling
    offset no two columns read the same pixel, so a plain ``+=`` is exact
    (no ``np.add.at``).
    """
    k, s, p = geo.kernel, geo.stride, geo.pool
    u, v = divmod(offset, p)
    s_c, s_h, s_w, s_b = d_padded.strides
    shape = (geo.channels, geo.out_height, geo.out_width, d_padded.shape[-1])
    strides = (s_c, s * p * s_h, s * p * s_w, s_b)
    taps = d_cols.reshape((geo.channels, k, k) + shape[1:])
    for i in range(k):
        for j in range(k):
            target = as_strided(d_padded[:, s * u + i :, s * v + j :, :], shape=shape, strides=strides)
            target += taps[:, i, j]


def conv_pool_forward(
    padded: np.ndarray, W: np.ndarray, geo: _Geometry, track_argmax: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max pool of the convolution (no bias): ``(..., F, H'*W'*B)``, and the argmax offset when asked.

    ``padded`` is ``(C, Hp, Wp, B)`` (shared by all genomes) or ``(P, C, Hp, Wp, B)``;
    ``W`` is ``(F, C*k*k)`` or ``(P, F, C*k*k)``. For each of the p*p pooling
    offsets: im2col, one matmul ``W @ cols``, and a running element-wise max,
    so the full-resolution convolution output is never stored. The argmax
    (``uint8``, first offset on ties) is what :func:`conv_pool_backward` needs.
    """
    if padded.ndim == 4 and W.ndim == 3:
        # Columns shared by the population: one (P*F, K) @ (K, N) matmul per offset.
        P, F, K = W.shape
        W, split = W.reshape(P * F, K), (P, F)
    else:
        split = None
    cols = z = argmax = None
    for o in range(geo.pool * geo.pool):
        cols = im2col(padded, geo, o, out=cols)
        if o == 0:
            pooled = np.matmul(W, cols)
            if track_argmax and geo.pool > 1:
                argmax = np.zeros(pooled.shape, dtype=np.uint8)
                greater = np.empty(pooled.shape, dtype=bool)
                candidate = np.empty(pooled.shape, dtype=np.uint8)
            continue
        z = np.matmul(W, cols, out=z)
        if argmax is not None:
            np.greater(z, pooled, out=greater)  # strictly: the first offset wins a tie
            # argmax = o where greater: offsets come in increasing order, so a max does it
            # (20x faster than np.copyto(..., where=) or boolean indexing).
            np.multiply(greater.view(np.uint8), np.uint8(o), out=candidate)
            np.maximum(argmax, candidate, out=argmax)
        np.maximum(pooled, z, out=pooled)
    if split is not None:
        pooled = pooled.reshape(split + pooled.shape[-1:])
    return pooled, argmax


def conv_pool_backward(
    d_pooled: np.ndarray, padded: np.ndarray, W: np.ndarray, argmax: np.ndarray | None, geo: _Geometry, input_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """``dW (F, C*k*k)`` and, when ``input_grad``, ``d_padded (C, Hp, Wp, B)`` given ``d_pooled (F, H'*W'*B)``.

    Per pooling offset: the gradient reaches the convolution output only where
    that offset held the window's maximum (``dz = d_pooled * [argmax == o]``);
    then ``dW += dz cols^T`` and ``dcols = W^T dz`` goes back through col2im.
    The columns are rebuilt from the padded input rather than cached.
    """
    dW = np.zeros(W.shape, dtype=d_pooled.dtype)
    dW_offset = np.empty_like(dW)
    d_padded = np.zeros(padded.shape, dtype=d_pooled.dtype) if input_grad else None
    pooling = geo.pool > 1
    dz = np.empty_like(d_pooled) if pooling else d_pooled
    hit = np.empty(d_pooled.shape, dtype=bool) if pooling else None
    cols = d_cols = None
    for o in range(geo.pool * geo.pool):
        if pooling:
            np.equal(argmax, o, out=hit)
            np.multiply(d_pooled, hit, out=dz)
        cols = im2col(padded, geo, o, out=cols)
        dW += np.matmul(dz, cols.T, out=dW_offset)
        if input_grad:
            d_cols = np.matmul(W.T, dz, out=d_cols)
            col2im_add(d_padded, d_cols, geo, o)
    return dW, d_padded


def dense_forward(h: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``z = h W + b``."""
    z = h @ W
    z += b
    return z


def dense_backward(dz: np.ndarray, h: np.ndarray, dW: np.ndarray, db: np.ndarray) -> None:
    """``dW = h^T dz`` and ``db = sum_batch dz``, written into ``dW``, ``db``; the input's gradient is ``dz W^T``."""
    np.matmul(h.T, dz, out=dW)
    np.sum(dz, axis=0, out=db)


# ============================================================ training cache
class BlockRecord(NamedTuple):
    """What one conv block's backward needs from its forward."""

    padded: np.ndarray  # the block's zero-padded input, (C, Hp, Wp, B)
    argmax: np.ndarray | None  # pooling offset holding each window's maximum, uint8 (F, H'*W'*B); None without pooling
    pre: np.ndarray  # max-pooled convolution + b, the activation's input, (F, H'*W'*B)
    post: np.ndarray  # activation output, (F, H'*W'*B)


class DenseRecord(NamedTuple):
    """What one dense layer's backward needs from its forward."""

    inputs: np.ndarray  # (B, n_in), after dropout
    pre: np.ndarray  # (B, n_out)
    post: np.ndarray  # (B, n_out); the logits themselves for a softmax returned as logits
    mask: np.ndarray | None  # inverted-dropout mask applied to ``inputs``, (B, n_in)


class CNNCache(NamedTuple):
    """Records of :meth:`CNN.forward_train`, consumed by :meth:`CNN.backward`."""

    blocks: list[BlockRecord]
    dense: list[DenseRecord]
    output_is_logits: bool
    batch: int


# ================================================================= the spec
@dataclass(frozen=True)
class CNN:
    """A convolutional network spec: shapes and activations, no weights.

    ``conv_blocks`` holds :class:`ConvBlock` objects or dicts with their fields
    (``filters``, ``kernel_size``, ``stride``, ``padding``, ``activation``,
    ``pool``). ``hidden`` are the widths of the dense hidden layers after the
    flatten (with ``activation``), ``output_size`` the output width.
    """

    input_shape: tuple[int, int, int]
    conv_blocks: tuple[ConvBlock, ...]
    output_size: int
    hidden: tuple[int, ...] = ()
    activation: str = "relu"
    output_activation: str = "identity"
    geometry: tuple[_Geometry, ...] = field(init=False, repr=False)
    dense_shapes: tuple[tuple[int, int], ...] = field(init=False, repr=False)
    offsets: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (tuple, list)) else None
        if shape is None or len(shape) != 3 or not all(_is_int(v) and v >= 1 for v in shape):
            raise ValueError(f"input_shape = {self.input_shape!r}; must be (channels, height, width), integers >= 1")
        object.__setattr__(self, "input_shape", tuple(int(v) for v in shape))
        if not isinstance(self.conv_blocks, (tuple, list)) or not self.conv_blocks:
            raise ValueError(
                f"conv_blocks = {self.conv_blocks!r}; must hold at least one conv block (use MLP for a network without convolutions)"
            )
        blocks = []
        for i, block in enumerate(self.conv_blocks):
            where = f"conv block {i}"
            if isinstance(block, dict):
                unknown = sorted(set(block) - set(_BLOCK_KEYS))
                if unknown:
                    raise ValueError(f"{where}: unknown field(s) {unknown}; allowed: {list(_BLOCK_KEYS)}")
                missing = [key for key in ("filters", "kernel_size") if key not in block]
                if missing:
                    raise ValueError(f"{where}: missing field(s) {missing}")
                block = ConvBlock(**block)
            elif not isinstance(block, ConvBlock):
                raise ValueError(f"{where} = {block!r}; must be a ConvBlock or a dict of its fields")
            block.validate(where)
            blocks.append(block.normalised())
        object.__setattr__(self, "conv_blocks", tuple(blocks))
        hidden = tuple(self.hidden) if isinstance(self.hidden, (tuple, list)) else None
        if hidden is None or not all(_is_int(v) and v >= 1 for v in hidden):
            raise ValueError(f"hidden = {self.hidden!r}; must be a list of dense layer widths, integers >= 1")
        object.__setattr__(self, "hidden", tuple(int(v) for v in hidden))
        if not _is_int(self.output_size) or self.output_size < 1:
            raise ValueError(f"output_size = {self.output_size!r}; must be an integer >= 1")
        object.__setattr__(self, "output_size", int(self.output_size))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation = {self.activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation = {self.output_activation!r} is not known; allowed: {sorted(OUTPUT_ACTIVATIONS)}"
            )

        geometry = []
        channels, height, width = self.input_shape
        offsets = [0]
        for i, block in enumerate(blocks):
            geo = _block_geometry(block, channels, height, width, f"conv block {i}")
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

    def _layer_slices(self):
        """Per layer: ``(kind, weight shape, weight slice, bias slice)`` in the flat layout."""
        out = []
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
        ``W (P, n_in, n_out)``, ``b (P, 1, n_out)`` (as the MLP).
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

    def flatten(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Inverse of :meth:`unflatten`: per-layer tensors back to ``(P, n_params)``."""
        P = layers[0][0].shape[0]
        parts = []
        for W, b in layers:
            parts.append(W.reshape(P, -1))
            parts.append(b.reshape(P, -1))
        return np.concatenate(parts, axis=1)

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
            std = np.sqrt(2.0 / fan_in) if act in _HE else np.sqrt(2.0 / (fan_in + fan_out))
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
            raise ValueError(
                f"expected inputs (B, {C}, {H}, {W}) or (B, {self.n_inputs}) (or per genome (P, B, ...)), got shape {x.shape}"
            )
        return np.moveaxis(x.astype(dtype, copy=False), -4, -1), per_genome

    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, B, n_out)`` for params ``(P, n)`` and inputs ``(B, C, H, W)`` or ``(B, C*H*W)`` shared by all P.

        Per-genome inputs ``(P, B, C, H, W)`` or ``(P, B, C*H*W)`` are accepted too.
        """
        params = np.asarray(params)
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise ValueError(f"expected parameters of shape (P, {self.n_params}), got {params.shape}")
        P = params.shape[0]
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
            a = ACTIVATIONS[block.activation][0](a)
            h = a.reshape(P, geo.filters, geo.out_height, geo.out_width, batch)
        # (P, C*H*W, B) in (C, H, W) order -> (P, B, C*H*W)
        h = h.reshape(P, -1, batch).transpose(0, 2, 1)
        for i, (W, b) in enumerate(layers[len(self.geometry) :]):
            z = dense_forward(h, W, b)
            name = self.dense_activation(i)
            h = softmax(z) if name == "softmax" else ACTIVATIONS[name][0](z)
        return h

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_out)`` of one network given its flat vector ``(n,)``."""
        return self.forward(np.asarray(params)[None, :], x)[0]

    # -------------------------------------------------------------- training
    def _views(self, flat: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer ``W`` (conv: ``(F, C*k*k)``, dense: ``(n_in, n_out)``) and ``b`` as views of a flat vector."""
        out = []
        for kind, shape, w, b in self._layer_slices():
            rows = shape[0]
            out.append((flat[w].reshape(rows, -1), flat[b]))
        return out

    def forward_train(
        self,
        params: np.ndarray,
        X: np.ndarray,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
        return_logits: bool = True,
    ) -> tuple[np.ndarray, CNNCache]:
        """Outputs ``(B, n_out)`` of one network and the cache :meth:`backward` needs.

        ``X`` is ``(B, C, H, W)`` or ``(B, C*H*W)``. For a softmax output layer
        the outputs are the logits unless ``return_logits=False``; dropout is
        inverted dropout on the inputs of the dense layers (module docstring).
        """
        params = np.asarray(params)
        if params.shape != (self.n_params,):
            raise ValueError(f"expected a flat parameter vector of shape ({self.n_params},), got {params.shape}")
        if dropout:
            if not 0.0 <= dropout < 1.0:
                raise ValueError(f"dropout = {dropout!r}: must be in [0, 1)")
            if rng is None:
                raise ValueError("dropout > 0 needs a random generator: pass rng=np.random.default_rng(seed)")
            keep_scale = 1.0 / (1.0 - dropout)
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
            a = ACTIVATIONS[block.activation][0](pre)
            blocks.append(BlockRecord(padded, argmax, pre, a))
            h = a.reshape(geo.filters, geo.out_height, geo.out_width, batch)

        h = h.reshape(-1, batch).T  # (B, C*H*W) view, (C, H, W) order
        dense = []
        last = len(self.dense_shapes) - 1
        for i, (W, b) in enumerate(views[n_conv:]):
            mask = None
            if dropout:
                mask = (rng.random(h.shape) >= dropout) * keep_scale
                h = h * mask
            z = dense_forward(h, W, b)
            name = self.dense_activation(i)
            if i == last and name == "softmax":
                a = z if return_logits else softmax(z)
            else:
                a = ACTIVATIONS[name][0](z)
            dense.append(DenseRecord(h, z, a, mask))
            h = a
        return h, CNNCache(blocks, dense, return_logits and self.output_activation == "softmax", batch)

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
        last = len(cache.dense) - 1

        d = np.asarray(d_out)  # gradient w.r.t. the current layer's output
        for i in range(last, -1, -1):
            h, z, a, mask = cache.dense[i]
            if i == last and cache.output_is_logits:
                dz = d
            else:
                dz = BACKWARD[self.dense_activation(i)](d, z, a)
            W = weights[n_conv + i][0]
            dense_backward(dz, h, *grads[n_conv + i])
            if i:
                d = dz @ W.T  # w.r.t. this layer's (dropped-out) input
                if mask is not None:
                    d *= mask
            else:
                # Straight into the last block's (F, H'*W'*B) layout: (W dz^T) is (C*H*W, B).
                d = W @ dz.T
                if mask is not None:
                    d *= mask.T
                d = d.reshape(self.geometry[-1].filters, -1)

        for i in range(n_conv - 1, -1, -1):
            geo, record = self.geometry[i], cache.blocks[i]
            d_pre = BACKWARD[self.conv_blocks[i].activation](d, record.pre, record.post)
            dW, db = grads[i]
            np.sum(d_pre, axis=1, out=db)
            # No gradient w.r.t. the data: the first block skips col2im.
            dW[...], d_padded = conv_pool_backward(d_pre, record.padded, weights[i][0], record.argmax, geo, input_grad=i > 0)
            if i:
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
            "n_params": self.n_params,
            "layout": (
                "per conv block: W (F, C, k, k) row-major, then b (F); then per dense layer: W (n_in, n_out) "
                "row-major, then b (n_out); the first dense layer reads the maps flattened in (C, H, W) order"
            ),
        }

    @classmethod
    def from_description(cls, description: dict) -> "CNN":
        """Rebuild from :meth:`describe` output."""
        return cls(
            input_shape=tuple(description["input_shape"]),
            conv_blocks=tuple(dict(block) for block in description["conv_blocks"]),
            output_size=description["output_size"],
            hidden=tuple(description.get("hidden", ())),
            activation=description.get("activation", "relu"),
            output_activation=description.get("output_activation", "identity"),
        )
