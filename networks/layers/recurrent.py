"""Recurrent layers (Elman, LSTM, GRU): one time step, a sequence forward, and backpropagation through time, side by side.

Every function works on arrays with any leading axes before ``(B, ...)``: a
stack of P genomes ``(P, B, H)`` in evolution, one network ``(B, H)`` in the
trainer. A layer's weights are one matrix ``W (F + H, G H)`` (its first F
rows read the input, the last H the previous state; G gates) and a bias
``b (G H)``; the GRU adds ``b_hn (H)``. The sequence forward computes the
input projection ``xp[t] = x[t] W_x + b`` of all steps at once, so the time
loop holds one matmul per step (``h W_h``); a single step (a control
episode's) does ``[x, h] W`` in one matmul as well (the GRU needs two).

Cells (gate order as PyTorch's, so weights can be compared one to one):

* Elman:  ``h' = f(a)``, ``a = x W_x + h W_h + b`` (f: tanh by default).
* LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000):
  ``[i, f, g, o] = [sigma, sigma, tanh, sigma](a)``; ``c' = f c + i g``; ``h' = o tanh(c')``.
* GRU (Cho et al. 2014, PyTorch's form): ``[r, z] = sigma(ax_rz + ah_rz)``,
  ``n = tanh(ax_n + r (ah_n + b_hn))``, ``h' = (1 - z) n + z h``.

Backward (BPTT) of one layer, given ``dH[t]`` (the loss's gradient w.r.t.
each step's output from above; zero where nothing reads it) returns the
gradient w.r.t. the input projection of every step, ``dxp (T, B, G H)``, from
which ``dW_x = X^T dxp``, ``db = sum dxp`` and ``dX = dxp W_x^T`` are one
matmul each (:func:`layer_input_grads`); ``dW_h = H_prev^T dxp`` (GRU:
with the ``r``-scaled candidate part) likewise. ``truncate = k`` (> 0) stops
the gradient k steps before the end of the sequence (truncated BPTT, as for
a loss read at the last step only): steps earlier than ``T - k`` get none.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from networks.activations import ACTIVATIONS, Activation, sigmoid

#: Gates per cell: the width of a layer's pre-activation is ``gates * hidden``.
CELL_GATES = {"elman": 1, "lstm": 4, "gru": 3}
#: State values per hidden unit: the LSTM carries ``h`` and ``c``.
CELL_STATE = {"elman": 1, "lstm": 2, "gru": 1}


class LayerCache(NamedTuple):
    """What one layer's backward needs from its sequence forward (time axis first)."""

    hs: np.ndarray  # (T + 1, B, H): the initial state, then each step's output
    acts: np.ndarray  # elman: pre-activations (T, B, H); lstm: gates [i f g o] (T, B, 4H); gru: [r z] (T, B, 2H)
    extra: np.ndarray | None  # lstm: cells (T + 1, B, H); gru: n (T, B, H)
    extra2: np.ndarray | None  # lstm: tanh(c) (T, B, H); gru: ah_n + b_hn (T, B, H)


_FLOAT64 = np.dtype(np.float64)


@functools.lru_cache(maxsize=64)
def _lstm_gate_scales(H: int, dtype: np.dtype = _FLOAT64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sigma(a) = 0.5 + 0.5 tanh(a / 2): one tanh over all four gates, then ``y * half + offset`` (in ``dtype``)."""
    pre = np.concatenate([np.full(2 * H, 0.5), np.ones(H), np.full(H, 0.5)]).astype(dtype)
    half = pre.copy()
    offset = np.concatenate([np.full(2 * H, 0.5), np.zeros(H), np.full(H, 0.5)]).astype(dtype)
    for array in (pre, half, offset):
        array.flags.writeable = False  # shared by every call (cached)
    return pre, half, offset


# ----------------------------------------------------------------- one step
def _activate_into(activation: Activation, a: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = f(a)``, computed into ``out`` when the activation can (``a`` is left as it is)."""
    result = activation.forward(a, out)
    if result is not out:
        out[...] = result


def lstm_update(a: np.ndarray, c: np.ndarray, h_out: np.ndarray, c_out: np.ndarray, tc_out: np.ndarray | None = None) -> np.ndarray:
    """Gates from pre-activations ``a (..., 4H)`` (overwritten with [i f g o]); new ``c`` and ``h`` into the buffers."""
    H = c.shape[-1]
    pre, half, offset = _lstm_gate_scales(H, a.dtype)
    a *= pre
    np.tanh(a, out=a)
    a *= half
    a += offset
    i, f, g, o = a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]
    np.multiply(f, c, out=c_out)
    c_out += i * g
    tc = np.tanh(c_out, out=tc_out)
    np.multiply(o, tc, out=h_out)
    return a


def gru_update(
    ax: np.ndarray, ah: np.ndarray, b_hn: np.ndarray, h: np.ndarray, h_out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``r, z`` (..., 2H), ``n`` and ``ah_n + b_hn`` (..., H) of one step from ``ax = x W_x + b`` and ``ah = h W_h``; ``h'`` into ``h_out``."""
    H = h.shape[-1]
    ahn = ah[..., 2 * H :]
    ahn += b_hn
    rz = ax[..., : 2 * H] + ah[..., : 2 * H]
    sigmoid(rz, rz)
    n = ahn * rz[..., :H]
    n += ax[..., 2 * H :]
    np.tanh(n, out=n)
    np.subtract(h, n, out=h_out)
    h_out *= rz[..., H:]
    h_out += n
    return rz, n, ahn


def layer_step(
    cell: str, activation: Activation, W: np.ndarray, b: np.ndarray, b_hn: np.ndarray | None, x: np.ndarray, state: np.ndarray
) -> np.ndarray:
    """One step of one layer: new state ``(..., B, S)`` (h, then c for an LSTM) from input ``x (..., B, F)`` and ``state``.

    ``W (..., F + H, G H)``, ``b (..., 1, G H)``; the output is the new state's first H values.
    """
    F = x.shape[-1]
    H = W.shape[-2] - F
    h = state[..., :H]
    new = np.empty_like(state)
    if cell == "gru":
        if b_hn is None:
            raise ValueError("a GRU layer needs b_hn")
        ax = np.matmul(x, W[..., :F, :])
        ax += b
        gru_update(ax, np.matmul(h, W[..., F:, :]), b_hn, h, new)
        return new
    a = np.matmul(np.concatenate([x, h], axis=-1), W)
    a += b
    if cell == "lstm":
        lstm_update(a, state[..., H:], new[..., :H], new[..., H:])
    else:
        _activate_into(activation, a, new)
    return new


# ------------------------------------------------------------- a sequence
def layer_sequence(
    cell: str,
    activation: Activation,
    xp: np.ndarray,
    Wh: np.ndarray,
    b_hn: np.ndarray | None,
    state0: np.ndarray,
    keep: bool = False,
) -> tuple[np.ndarray, np.ndarray, LayerCache | None]:
    """All steps of one layer from input projections ``xp (T, ..., B, G H)`` (``x W_x + b``, not modified).

    Returns each step's output ``(T, ..., B, H)``, the final state ``(..., B, S)``
    and, with ``keep``, the cache :func:`layer_backward` reads.
    """
    T = xp.shape[0]
    H = Wh.shape[-2]
    dtype = xp.dtype  # float64, or float32 for a float32 network's forward
    hs = np.empty((T + 1, *state0.shape[:-1], H), dtype=dtype)
    hs[0] = state0[..., :H]
    # The per-step records are kept either way (they are the working buffers); only the cache is optional.
    extra: np.ndarray | None = None
    extra2: np.ndarray | None = None
    if cell == "lstm":
        cs = np.empty_like(hs)
        cs[0] = state0[..., H:]
        acts = np.empty(xp.shape, dtype=dtype)
        tcs = np.empty((T, *hs.shape[1:]), dtype=dtype)
        for t in range(T):
            a = np.matmul(hs[t], Wh, out=acts[t])
            a += xp[t]
            lstm_update(a, cs[t], hs[t + 1], cs[t + 1], tcs[t])
        extra, extra2 = cs, tcs
        final = np.concatenate([hs[T], cs[T]], axis=-1)
    elif cell == "gru":
        if b_hn is None:
            raise ValueError("a GRU layer needs b_hn")
        acts = np.empty((T, *hs.shape[1:-1], 2 * H), dtype=dtype)
        ns, ahns = np.empty((T, *hs.shape[1:]), dtype=dtype), np.empty((T, *hs.shape[1:]), dtype=dtype)
        for t in range(T):
            rz, n, ahn = gru_update(xp[t], np.matmul(hs[t], Wh), b_hn, hs[t], hs[t + 1])
            acts[t], ns[t], ahns[t] = rz, n, ahn
        extra, extra2 = ns, ahns
        final = hs[T].copy()
    else:
        acts = np.empty((T, *hs.shape[1:]), dtype=dtype)
        for t in range(T):
            a = np.matmul(hs[t], Wh, out=acts[t])
            a += xp[t]
            _activate_into(activation, a, hs[t + 1])  # the pre-activations stay in acts
        final = hs[T].copy()
    return hs[1:], final, (LayerCache(hs, acts, extra, extra2) if keep else None)


# ------------------------------------------------------------ backward (BPTT)
def layer_backward(
    cell: str, activation: Activation, cache: LayerCache, dH: np.ndarray, Wh: np.ndarray, truncate: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """BPTT through one layer of one network: ``dxp (T, B, G H)``, ``dW_h (H, G H)`` and (GRU) ``db_hn (H,)``.

    ``dH (T, B, H)`` is the gradient w.r.t. each step's output from the layer
    above or the readout. ``truncate = k > 0`` keeps only the last k steps.
    """
    T, B, H = dH.shape
    stop = max(0, T - truncate) if truncate else 0
    hs = cache.hs
    G = CELL_GATES[cell]
    dxp = np.zeros((T, B, G * H))
    dh_next = np.zeros((B, H))
    WhT = np.ascontiguousarray(Wh.T)  # BLAS runs a stored transpose faster than a transposed view
    if cell == "lstm":
        cs, tcs, gates = cache.extra, cache.extra2, cache.acts
        assert cs is not None and tcs is not None  # an LSTM's cache holds its cells
        dc_next = np.zeros((B, H))
        # The gates' derivatives for all steps at once: sigma' = s (1 - s) on i, f, o; tanh' = 1 - g^2 on g; tanh'(c).
        slopes = gates[stop:] * (1.0 - gates[stop:])
        g_all = gates[stop:, :, 2 * H : 3 * H]
        np.subtract(1.0, g_all * g_all, out=slopes[:, :, 2 * H : 3 * H])
        tc_slopes = 1.0 - tcs[stop:] * tcs[stop:]
        for t in range(T - 1, stop - 1, -1):
            y = gates[t]
            i, f, g, o = y[:, :H], y[:, H : 2 * H], y[:, 2 * H : 3 * H], y[:, 3 * H :]
            dh = dH[t] + dh_next
            dc = dh * o
            dc *= tc_slopes[t - stop]
            dc += dc_next
            da = dxp[t]
            np.multiply(dc, g, out=da[:, :H])
            np.multiply(dc, cs[t], out=da[:, H : 2 * H])
            np.multiply(dc, i, out=da[:, 2 * H : 3 * H])
            np.multiply(dh, tcs[t], out=da[:, 3 * H :])
            da *= slopes[t - stop]
            dc_next = dc * f
            dh_next = da @ WhT
        dWh = hs[stop:T].reshape(-1, H).T @ dxp[stop:].reshape(-1, G * H)
        return dxp, dWh, None
    if cell == "gru":
        rz, ns, ahns = cache.acts, cache.extra, cache.extra2
        assert ns is not None and ahns is not None  # a GRU's cache holds n and ah_n + b_hn
        dah = np.zeros((T, B, G * H))  # gradient w.r.t. h W_h (the candidate part scaled by r)
        for t in range(T - 1, stop - 1, -1):
            r, z = rz[t, :, :H], rz[t, :, H:]
            n, ahn = ns[t], ahns[t]
            dh = dH[t] + dh_next
            dan = dh * (1.0 - z)
            dan *= 1.0 - n * n
            dx, da = dxp[t], dah[t]
            dx[:, 2 * H :] = dan
            np.multiply(dan, r, out=da[:, 2 * H :])
            np.multiply(dan * ahn, r * (1.0 - r), out=dx[:, :H])
            np.multiply(dh * (hs[t] - n), z * (1.0 - z), out=dx[:, H : 2 * H])
            da[:, : 2 * H] = dx[:, : 2 * H]
            dh_next = dh * z
            dh_next += da @ WhT
        dWh = hs[stop:T].reshape(-1, H).T @ dah[stop:].reshape(-1, G * H)
        db_hn = dah[stop:, :, 2 * H :].sum(axis=(0, 1))
        return dxp, dWh, db_hn
    pre = cache.acts
    for t in range(T - 1, stop - 1, -1):
        dh = dH[t] + dh_next
        dxp[t] = activation.backward(dh, pre[t], hs[t + 1])
        dh_next = dxp[t] @ WhT
    dWh = hs[stop:T].reshape(-1, H).T @ dxp[stop:].reshape(-1, G * H)
    return dxp, dWh, None


def layer_input_grads(X: np.ndarray, dxp: np.ndarray, Wx: np.ndarray, need_dX: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``dW_x = X^T dxp``, ``db = sum dxp`` and (when needed) ``dX = dxp W_x^T`` over all steps at once; ``X (T, B, F)``."""
    F, GH = Wx.shape
    flat = dxp.reshape(-1, GH)
    dWx = X.reshape(-1, F).T @ flat
    db = flat.sum(axis=0)
    dX = (flat @ Wx.T).reshape(X.shape) if need_dX else None
    return dWx, db, dX


def check_cell(cell: str, activation: str) -> Activation:
    """The Elman activation's table entry; ValueError naming the allowed cells and activations."""
    if cell not in CELL_GATES:
        raise ValueError(f"cell {cell!r} is not known; allowed: {sorted(CELL_GATES)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[activation]
