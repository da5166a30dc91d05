"""Recurrent layers (Elman, LSTM, GRU): one time step, a sequence forward, and backpropagation through time, side by side.

Every function works on arrays with any leading axes before ``(B, ...)``: a
stack of P genomes ``(P, B, H)`` in evolution, one network ``(B, H)`` in the
trainer. A layer's weights are one matrix ``W (F + H, G H)`` (its first F
rows read the input, the last H the previous state; G gates) and a bias
``b (G H)``; the GRU adds ``b_hn (H)``. The sequence forward computes the
input projection ``xp[t] = x[t] W_x + b`` of all steps at once
(:func:`input_projection`), so the time loop holds one matmul per step
(``h W_h``); a single step (a control episode's) does ``[x, h] W`` in one
matmul as well (the GRU needs two).

Speed without changing a bit: sigma(a) is computed as (1 + tanh(a / 2)) / 2
(never overflows), and the ``/ 2`` is folded into halved copies of the
weights' sigmoid columns (exact in binary floating point), so the loop does
not pay a pass for it; the projection buffer becomes the gates in place; the
step records and the backward's work arrays come from
:mod:`networks.layers.scratch` (recycled, so a training step does not fault
in fresh memory pages); derivative factors that need no step's gradient are
computed for all steps at once, outside the loop.

Cells (gate order as PyTorch's, so weights can be compared one to one):

* Elman:  ``h' = f(a)``, ``a = x W_x + h W_h + b`` (f: tanh by default).
* LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000):
  ``[i, f, g, o] = [sigma, sigma, tanh, sigma](a)``; ``c' = f c + i g``; ``h' = o tanh(c')``.
* GRU (Cho et al. 2014, PyTorch's form): ``[r, z] = sigma(ax_rz + ah_rz)``,
  ``n = tanh(ax_n + r (ah_n + b_hn))``, ``h' = (1 - z) n + z h``.

Backward (BPTT) of one layer, given ``dH[t]`` (the loss's gradient w.r.t.
each step's output from above; or only the last step's, when nothing else
reads the layer) returns the
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
from networks.layers.scratch import scratch

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
def _sigmoid_columns(cell: str, H: int) -> tuple[slice, ...]:
    """The pre-activation columns that go through a sigmoid: LSTM i, f, o; GRU r, z (none for Elman)."""
    if cell == "lstm":
        return (slice(0, 2 * H), slice(3 * H, 4 * H))
    if cell == "gru":
        return (slice(0, 2 * H),)
    return ()


def _half_scaled(W: np.ndarray, columns: tuple[slice, ...]) -> np.ndarray:
    """A copy of ``W`` with ``columns`` (of the last axis) halved: the ``z / 2`` of sigma(z) = (1 + tanh(z / 2)) / 2 folded into the weights.

    Halving is exact in binary floating point (short of subnormals), so
    ``x (W_x / 2) + b / 2 + h (W_h / 2)`` is bit for bit ``(x W_x + b + h W_h) / 2``
    and the step loop saves a pass over the gates.
    """
    scaled = scratch(W.shape, W.dtype)
    np.copyto(scaled, W)
    for part in columns:
        scaled[..., part] *= 0.5
    return scaled


def input_projection(cell: str, x: np.ndarray, Wx: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The input projections of many steps in one matmul, as :func:`layer_sequence` reads them: ``x W_x + b``, sigmoid columns halved.

    ``x (..., N, F)`` (N: steps x batch), ``W_x (..., F, G H)``, ``b`` broadcastable
    to the result ``(..., N, G H)``.
    """
    columns = _sigmoid_columns(cell, Wx.shape[-1] // CELL_GATES[cell])
    if columns:
        Wx, b = _half_scaled(Wx, columns), _half_scaled(b, columns)
    shape = (*np.broadcast_shapes(x.shape[:-2], Wx.shape[:-2]), x.shape[-2], Wx.shape[-1])
    xp = np.matmul(x, Wx, out=scratch(shape, np.result_type(x, Wx)))
    xp += b
    return xp


def layer_sequence(
    cell: str,
    activation: Activation,
    xp: np.ndarray,
    Wh: np.ndarray,
    b_hn: np.ndarray | None,
    state0: np.ndarray,
    keep: bool = False,
) -> tuple[np.ndarray, np.ndarray, LayerCache | None]:
    """All steps of one layer from input projections ``xp (T, ..., B, G H)`` (of :func:`input_projection`; overwritten: the working buffer).

    Returns each step's output ``(T, ..., B, H)``, the final state ``(..., B, S)``
    and, with ``keep``, the cache :func:`layer_backward` reads (the LSTM's
    gates and the Elman pre-activations are ``xp`` itself, rewritten step
    by step).
    """
    T = xp.shape[0]
    H = Wh.shape[-2]
    lead = state0.shape[:-1]
    step_shape = (*lead, H)
    dtype = xp.dtype  # float64, or float32 for a float32 network's forward
    hw = scratch(xp.shape[1:], dtype)  # h W_h of the current step
    if cell == "lstm":
        # One allocation for the step records (fewer fresh pages to fault in than three).
        block = scratch((3 * T + 2 if keep else T + 4, *step_shape), dtype)
        hs = block[: T + 1]
        cs = block[T + 1 : 2 * T + 2] if keep else block[T + 1 : T + 3]  # without a cache: two cells, in turns
        tcs = block[2 * T + 2 :] if keep else block[T + 3 :]
        hs[0] = state0[..., :H]
        cs[0] = state0[..., H:]
        _, half, offset = _lstm_gate_scales(H)
        Wh_half = _half_scaled(Wh, _sigmoid_columns(cell, H))
        # Each step's views made once, up front (the loop's own cost is per NumPy call at these sizes).
        cells = list(cs) if keep else [cs[t % 2] for t in range(T + 1)]
        tanh_cells = list(tcs) if keep else [tcs[0]] * T
        i_gates, f_gates, g_gates, o_gates = (list(xp[..., k * H : (k + 1) * H]) for k in range(4))
        steps = zip(hs[:-1], hs[1:], xp, i_gates, f_gates, g_gates, o_gates, cells[:-1], cells[1:], tanh_cells)
        for h, h_new, a, i, f, g, o, c, c_new, tc in steps:
            np.matmul(h, Wh_half, out=hw)
            a += hw
            np.tanh(a, out=a)
            a *= half
            a += offset  # a = [i f g o]
            np.multiply(f, c, out=c_new)
            np.multiply(i, g, out=tc)
            c_new += tc
            np.tanh(c_new, out=tc)
            np.multiply(o, tc, out=h_new)
        c_last = cs[T] if keep else cs[T % 2]
        final = np.concatenate([hs[T], c_last], axis=-1)
        cache = LayerCache(hs, xp, cs, tcs) if keep else None
        return hs[1:], final, cache
    if cell == "gru":
        if b_hn is None:
            raise ValueError("a GRU layer needs b_hn")
        # The r, z columns are halved (as for the LSTM's sigmoid gates); the candidate's h W_h (+ b_hn) is not.
        Wh_half = _half_scaled(Wh, _sigmoid_columns(cell, H))
        records = T if keep else 1  # without a cache, one step's records, rewritten each step
        block = scratch((T + 1 + 2 * records, *step_shape), dtype)
        hs, ns, ahns = block[: T + 1], block[T + 1 : T + 1 + records], block[T + 1 + records :]
        rzs = scratch((records, *lead, 2 * H), dtype)
        hs[0] = state0[..., :H]
        for t in range(T):
            k = t if keep else 0
            np.matmul(hs[t], Wh_half, out=hw)
            ax = xp[t]
            rz, n, ahn = rzs[k], ns[k], ahns[k]
            np.add(hw[..., 2 * H :], b_hn, out=ahn)
            np.add(ax[..., : 2 * H], hw[..., : 2 * H], out=rz)
            np.tanh(rz, out=rz)
            rz += 1.0
            rz *= 0.5  # [r z] = sigma(a_rz), as activations.sigmoid computes it
            np.multiply(ahn, rz[..., :H], out=n)
            n += ax[..., 2 * H :]
            np.tanh(n, out=n)
            h_new = hs[t + 1]
            np.subtract(hs[t], n, out=h_new)
            h_new *= rz[..., H:]
            h_new += n
        final = hs[T].copy()
        cache = LayerCache(hs, rzs, ns, ahns) if keep else None
        return hs[1:], final, cache
    hs = scratch((T + 1, *step_shape), dtype)
    hs[0] = state0[..., :H]
    for t in range(T):
        np.matmul(hs[t], Wh, out=hw)
        a = xp[t]
        a += hw
        _activate_into(activation, a, hs[t + 1])  # the pre-activations stay in xp
    final = hs[T].copy()
    return hs[1:], final, (LayerCache(hs, xp, None, None) if keep else None)


# ------------------------------------------------------------ backward (BPTT)
def layer_backward(
    cell: str, activation: Activation, cache: LayerCache, dH: np.ndarray, Wh: np.ndarray, truncate: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """BPTT through one layer of one network: ``dxp (T, B, G H)``, ``dW_h (H, G H)`` and (GRU) ``db_hn (H,)``.

    ``dH`` is the gradient w.r.t. each step's output from the layer above,
    ``(T, B, H)``, or ``(B, H)`` when only the last step's output is read (the
    readout of the top layer). ``truncate = k > 0`` keeps only the last k steps.
    """
    hs = cache.hs
    T, H = hs.shape[0] - 1, hs.shape[-1]
    B = hs.shape[1]
    every_step = dH.ndim == 3
    stop = max(0, T - truncate) if truncate else 0
    G = CELL_GATES[cell]
    dxp = scratch((T, B, G * H))
    dxp[:stop] = 0.0
    WhT = scratch(Wh.shape[::-1])  # BLAS runs a stored transpose faster than a transposed view
    np.copyto(WhT, Wh.T)
    dh_next = np.zeros((B, H))  # d loss / d h_t through step t + 1
    dh_sum = scratch((B, H))

    def upstream(t: int) -> np.ndarray:
        """d loss / d h_t: from above (if anything reads step t) plus through step t + 1 (valid until the next call)."""
        if every_step:
            return np.add(dH[t], dh_next, out=dh_sum)
        return dH + dh_next if t == T - 1 else dh_next  # nothing above reads the earlier steps' outputs

    if cell == "lstm":
        cs, tcs, gates = cache.extra, cache.extra2, cache.acts
        assert cs is not None and tcs is not None  # an LSTM's cache holds its cells
        # The gates' derivatives for all steps at once, into dxp (each step then scales its own in place):
        # sigma' = s (1 - s) on i, f, o; tanh' = 1 - g^2 on g; and tanh'(c) = 1 - tanh(c)^2.
        slopes = dxp[stop:]
        np.subtract(1.0, gates[stop:], out=slopes)
        slopes *= gates[stop:]
        g_slopes = slopes[..., 2 * H : 3 * H]
        np.multiply(gates[stop:, :, 2 * H : 3 * H], gates[stop:, :, 2 * H : 3 * H], out=g_slopes)
        np.subtract(1.0, g_slopes, out=g_slopes)
        tc_slopes = np.multiply(tcs[stop:], tcs[stop:], out=scratch((T - stop, B, H)))
        np.subtract(1.0, tc_slopes, out=tc_slopes)
        # What dc multiplies for the i, f, g gates, [g, c_{t-1}, i], side by side for all steps: one call per step, not three.
        partners = scratch((T - stop, B, 3, H))
        np.copyto(partners[:, :, 0], gates[stop:, :, 2 * H : 3 * H])
        np.copyto(partners[:, :, 1], cs[stop:T])
        np.copyto(partners[:, :, 2], gates[stop:, :, :H])
        f_all, o_all = gates[:, :, H : 2 * H], gates[:, :, 3 * H :]
        dc, dc_next = scratch((B, H)), np.zeros((B, H))
        dc_by_gate = dc[:, None, :]
        products = scratch((B, 4, H))  # per gate: what its slope multiplies
        products_ifg, products_o, products_flat = products[:, :3], products[:, 3], products.reshape(B, G * H)
        for t in range(T - 1, stop - 1, -1):
            s = t - stop
            dh = upstream(t)
            np.multiply(dh, o_all[t], out=dc)
            dc *= tc_slopes[s]
            dc += dc_next
            np.multiply(dc_by_gate, partners[s], out=products_ifg)
            np.multiply(dh, tcs[t], out=products_o)
            da = dxp[t]
            da *= products_flat
            np.multiply(dc, f_all[t], out=dc_next)
            np.matmul(da, WhT, out=dh_next)  # (dh is no longer read: it may be this very buffer)
        dWh = np.matmul(hs[stop:T].reshape(-1, H).T, dxp[stop:].reshape(-1, G * H), out=scratch((H, G * H)))
        return dxp, dWh, None
    if cell == "gru":
        rz, ns, ahns = cache.acts, cache.extra, cache.extra2
        assert ns is not None and ahns is not None  # a GRU's cache holds n and ah_n + b_hn
        r_all, z_all, n_all = rz[stop:, :, :H], rz[stop:, :, H:], ns[stop:]
        # Per-step factors for all steps at once: 1 - z, tanh'(n) = 1 - n^2, sigma'(r), sigma'(z), h_{t-1} - n.
        factors = scratch((5, T - stop, B, H))
        one_minus_z, n_slopes, r_slopes, z_slopes, h_minus_n = factors
        np.subtract(1.0, z_all, out=one_minus_z)
        np.multiply(n_all, n_all, out=n_slopes)
        np.subtract(1.0, n_slopes, out=n_slopes)
        np.subtract(1.0, r_all, out=r_slopes)
        np.multiply(r_all, r_slopes, out=r_slopes)
        np.multiply(z_all, one_minus_z, out=z_slopes)
        np.subtract(hs[stop:T], n_all, out=h_minus_n)
        dah = scratch((T, B, G * H))  # gradient w.r.t. h W_h (the candidate part scaled by r); steps t >= stop are all set below
        dah[:stop] = 0.0
        product = np.empty((B, H))
        for t in range(T - 1, stop - 1, -1):
            s = t - stop
            dh = upstream(t)
            dx, da = dxp[t], dah[t]
            dan = dx[:, 2 * H :]
            np.multiply(dh, one_minus_z[s], out=dan)
            dan *= n_slopes[s]
            np.multiply(dan, rz[t, :, :H], out=da[:, 2 * H :])
            np.multiply(dan, ahns[t], out=product)
            np.multiply(product, r_slopes[s], out=dx[:, :H])
            np.multiply(dh, h_minus_n[s], out=product)
            np.multiply(product, z_slopes[s], out=dx[:, H : 2 * H])
            da[:, : 2 * H] = dx[:, : 2 * H]
            dh_next = dh * rz[t, :, H:]
            dh_next += da @ WhT
        dWh = np.matmul(hs[stop:T].reshape(-1, H).T, dah[stop:].reshape(-1, G * H), out=scratch((H, G * H)))
        db_hn = dah[stop:, :, 2 * H :].sum(axis=(0, 1))
        return dxp, dWh, db_hn
    pre = cache.acts
    for t in range(T - 1, stop - 1, -1):
        dh = upstream(t)
        dxp[t] = activation.backward(dh, pre[t], hs[t + 1])
        dh_next = dxp[t] @ WhT
    dWh = np.matmul(hs[stop:T].reshape(-1, H).T, dxp[stop:].reshape(-1, G * H), out=scratch((H, G * H)))
    return dxp, dWh, None


def layer_input_grads(X: np.ndarray, dxp: np.ndarray, Wx: np.ndarray, need_dX: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``dW_x = X^T dxp``, ``db = sum dxp`` and (when needed) ``dX = dxp W_x^T`` over all steps at once; ``X (T, B, F)``."""
    F, GH = Wx.shape
    flat = dxp.reshape(-1, GH)
    dWx = np.matmul(X.reshape(-1, F).T, flat, out=scratch((F, GH)))
    db = flat.sum(axis=0)
    dX = np.matmul(flat, Wx.T, out=scratch((len(flat), F))).reshape(X.shape) if need_dX else None
    return dWx, db, dX


def check_cell(cell: str, activation: str) -> Activation:
    """The Elman activation's table entry; ValueError naming the allowed cells and activations."""
    if cell not in CELL_GATES:
        raise ValueError(f"cell {cell!r} is not known; allowed: {sorted(CELL_GATES)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[activation]
