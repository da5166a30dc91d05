"""Convolution with max pooling: forward and backward side by side, batch last, for a stack of genomes.

A conv block is ``conv (F filters, k x k, stride s, padding) -> activation ->
max pool (p x p, stride p, optional)``: :class:`ConvBlock` is its spec,
:class:`ConvGeometry` its sizes on a given input.
Filters are laid out ``W (F, C, k, k)`` (PyTorch's ``Conv2d``), used here as
``(F, C*k*k)``.

How the forward pass is computed (no Python loop over genomes, samples or pixels):

* A feature map is stored *batch last*, ``(C, H, W, B)`` (with a leading
  genome axis ``P`` where genomes differ). im2col is then one strided copy
  (``as_strided`` view, then ``reshape``) whose innermost run is the whole
  batch, giving columns ``(C*k*k, H'*W'*B)`` whose rows ``(c, i, j)`` match
  the filter layout, so a convolution is one matmul ``(F, C*k*k) @ cols``.
  The last block's maps ``(C, H, W, B)`` flatten to ``(C*H*W, B)``, already
  in ``(C, H, W)`` order (``torch.flatten``'s), for free.
* Columns shared by the whole population (the first block's) are built once,
  and the P genomes' filters, stacked as ``(P*F, C*k*k)``, go through one
  matmul. Per-genome maps use a batched matmul ``(P, F, K) @ (P, K, N)``.
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
  with the bias and the activation applied to a map p*p times smaller. A
  block with pooling therefore needs an activation marked ``non_decreasing``
  in :data:`networks.activations.ACTIVATIONS`.

Backward (one network), beside each forward below:

* max pool: the forward keeps the argmax offset of each window (``uint8``,
  the first one on ties, as PyTorch); the gradient of a window goes to it.
* conv, per pooling offset: ``dz = d_pooled * [argmax == o]``,
  ``dW += dz cols^T``, ``dcols = W^T dz``; col2im adds ``dcols`` back into
  the padded input with one strided add per kernel tap (k*k adds, no
  ``np.add.at``). The columns are rebuilt from the cached padded input
  (cheaper than keeping them), and a first block can skip ``dcols``
  altogether (no gradient w.r.t. the data is needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, TypeGuard, cast

import numpy as np
from numpy.lib.stride_tricks import as_strided

from networks.activations import ACTIVATIONS


class ConvGeometry(NamedTuple):
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
        """Height and width after zero padding."""
        top, bottom, left, right = self.pad
        return self.height + top + bottom, self.width + left + right

    @property
    def n_taps(self) -> int:
        """Rows of the im2col matrix: C * k * k."""
        return self.channels * self.kernel * self.kernel


_BLOCK_KEYS = ("filters", "kernel_size", "stride", "padding", "activation", "pool")


def is_int(value: object) -> TypeGuard[int | np.integer]:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


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
            if not is_int(value) or value < 1:
                raise ValueError(f"{where}: {name} = {value!r}; must be an integer >= 1")
        if not (self.padding == "same" or (is_int(self.padding) and self.padding >= 0)):
            raise ValueError(f"{where}: padding = {self.padding!r}; must be an integer >= 0 or 'same'")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{where}: activation = {self.activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
        if not is_int(self.pool) or self.pool < 0 or self.pool == 1:
            raise ValueError(f"{where}: pool = {self.pool!r}; must be 0 (no pooling) or a window size >= 2")
        if self.pool and not ACTIVATIONS[self.activation].non_decreasing:
            non_decreasing = sorted(name for name, act in ACTIVATIONS.items() if act.non_decreasing)
            raise ValueError(
                f"{where}: pool = {self.pool} after activation {self.activation!r}: pooling is computed before the "
                f"activation, which is exact only for non-decreasing ones {non_decreasing}"
            )

    def describe(self) -> dict:
        """JSON-able fields."""
        return {name: getattr(self, name) for name in _BLOCK_KEYS}

    def normalised(self) -> ConvBlock:
        """The same block with plain Python ints (NumPy integers would not serialise to JSON)."""
        padding = self.padding if self.padding == "same" else int(self.padding)
        return ConvBlock(int(self.filters), int(self.kernel_size), int(self.stride), padding, self.activation, int(self.pool))

    @classmethod
    def parse(cls, block: ConvBlock | dict, where: str) -> ConvBlock:
        """A validated block (plain ints) from a ConvBlock or a dict of its fields; ValueError naming ``where``."""
        if isinstance(block, dict):
            unknown = sorted(set(block) - set(_BLOCK_KEYS))
            if unknown:
                raise ValueError(f"{where}: unknown field(s) {unknown}; allowed: {list(_BLOCK_KEYS)}")
            missing = [key for key in ("filters", "kernel_size") if key not in block]
            if missing:
                raise ValueError(f"{where}: missing field(s) {missing}")
            block = cls(**block)
        elif not isinstance(block, cls):
            raise ValueError(f"{where} = {block!r}; must be a ConvBlock or a dict of its fields")
        block.validate(where)
        return block.normalised()

    def geometry(self, channels: int, height: int, width: int, where: str) -> ConvGeometry:
        """Sizes of this block on a ``(channels, height, width)`` input; ValueError naming ``where`` when it does not fit."""
        k, s = self.kernel_size, self.stride
        if self.padding == "same":
            out_h, out_w = -(-height // s), -(-width // s)
            pad_h = max((out_h - 1) * s + k - height, 0)
            pad_w = max((out_w - 1) * s + k - width, 0)
            pad = (pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2)
        else:
            pad = (cast(int, self.padding),) * 4  # not "same": validate() allows only an integer besides
        padded_h, padded_w = height + pad[0] + pad[1], width + pad[2] + pad[3]
        if k > padded_h or k > padded_w:
            raise ValueError(
                f"{where}: kernel_size {k} is larger than its input {height}x{width} "
                f"(padded to {padded_h}x{padded_w}); use a smaller kernel, padding, or fewer pooling layers before it"
            )
        conv_h, conv_w = (padded_h - k) // s + 1, (padded_w - k) // s + 1
        p = self.pool or 1
        if p > conv_h or p > conv_w:
            raise ValueError(
                f"{where}: pool {p} does not fit the {conv_h}x{conv_w} convolution output; use a smaller pool, "
                "pool = 0, padding, or a larger input"
            )
        return ConvGeometry(channels, height, width, pad, k, s, p, self.filters, conv_h // p, conv_w // p)


# ================================================= forward | backward
def pad_input(x: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """Zero-pad a ``(..., C, H, W, B)`` map to ``(..., C, H + top + bottom, W + left + right, B)``."""
    top, bottom, left, right = geo.pad
    if not (top or bottom or left or right):
        return x
    hp, wp = geo.padded
    out = np.zeros(x.shape[:-3] + (hp, wp, x.shape[-1]), dtype=x.dtype)
    out[..., top : top + geo.height, left : left + geo.width, :] = x
    return out


def unpad_gradient(d_padded: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """Backward of :func:`pad_input`: the gradient on the un-padded region."""
    top, _, left, _ = geo.pad
    return d_padded[..., top : top + geo.height, left : left + geo.width, :]


def _window_view(padded: np.ndarray, geo: ConvGeometry, offset: int) -> np.ndarray:
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


def im2col(padded: np.ndarray, geo: ConvGeometry, offset: int = 0, out: np.ndarray | None = None) -> np.ndarray:
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


def col2im_add(d_padded: np.ndarray, d_cols: np.ndarray, geo: ConvGeometry, offset: int = 0) -> None:
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
    padded: np.ndarray, W: np.ndarray, geo: ConvGeometry, track_argmax: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max pool of the convolution (no bias): ``(..., F, H'*W'*B)``, and the argmax offset when asked.

    ``padded`` is ``(C, Hp, Wp, B)`` (shared by all genomes) or ``(P, C, Hp, Wp, B)``;
    ``W`` is ``(F, C*k*k)`` or ``(P, F, C*k*k)``. For each of the p*p pooling
    offsets: im2col, one matmul ``W @ cols``, and a running element-wise max,
    so the full-resolution convolution output is never stored. The argmax
    (``uint8``, first offset on ties) is what :func:`conv_pool_backward` needs.
    """
    if padded.ndim == 4 and W.ndim == 3 and W.dtype == np.float64:
        # Columns shared by the population: one (P*F, K) @ (K, N) matmul per offset. Not in float32: OpenBLAS's
        # sgemm rounds a row differently with the number of rows (measured), so a genome's outputs would depend on
        # how many genomes share its call (the chunk size); there a batched matmul gives each genome its own
        # (F, K) @ (K, N), the same shapes whatever the stack.
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
    d_pooled: np.ndarray, padded: np.ndarray, W: np.ndarray, argmax: np.ndarray | None, geo: ConvGeometry, input_grad: bool
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
        if hit is not None:  # pooling
            assert argmax is not None, "a pooled forward records its argmax"
            np.equal(argmax, o, out=hit)
            np.multiply(d_pooled, hit, out=dz)
        cols = im2col(padded, geo, o, out=cols)
        dW += np.matmul(dz, cols.T, out=dW_offset)
        if d_padded is not None:  # input_grad
            d_cols = np.matmul(W.T, dz, out=d_cols)
            col2im_add(d_padded, d_cols, geo, o)
    return dW, d_padded
