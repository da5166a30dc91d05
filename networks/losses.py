"""Losses for the gradient-descent trainer, each returning ``(loss, gradient)``.

Every loss is a mean over the batch, so its gradient carries the ``1 / B``
factor and a step size does not depend on the batch size. The gradient is
with respect to the loss's first argument (network outputs or logits).

``softmax_cross_entropy`` takes *logits* and folds the softmax into the loss:
its gradient is simply ``(softmax(logits) - onehot(labels)) / B``, which is
both cheaper and better conditioned than back-propagating through softmax.
"""

from __future__ import annotations

import numpy as np

from networks.spec import Trainable

# Smallest probability whose log is taken when reporting from probabilities.
LOG_CLIP = 1e-12


def mean_squared_error(outputs: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of ``(outputs - targets)^2`` over all entries, and its gradient w.r.t. ``outputs``.

    ``targets`` must have the shape of ``outputs`` (a 1-D target is accepted
    for a single output column). The mean runs over the batch *and* the output
    columns (as PyTorch's ``MSELoss``), so ``d_outputs = 2 (outputs - targets) / outputs.size``.
    """
    outputs = np.asarray(outputs)
    targets = np.asarray(targets)
    if targets.shape != outputs.shape:
        if outputs.ndim == 2 and outputs.shape[1] == 1 and targets.shape == outputs.shape[:1]:
            targets = targets[:, None]
        else:
            raise ValueError(f"mean_squared_error: targets of shape {targets.shape} do not match outputs {outputs.shape}")
    diff = outputs - targets
    loss = float(np.vdot(diff, diff)) / diff.size
    diff *= 2.0 / diff.size
    return loss, diff


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean ``-log softmax(logits)[label]`` over the batch, and its gradient w.r.t. ``logits``.

    ``logits`` is ``(B, K)``, ``labels`` is ``(B,)`` integer class indices in
    ``0..K-1``. The log-softmax is computed as ``z - max(z) - log(sum(exp(z - max(z))))``
    (log-sum-exp): after the shift the sum is at least 1, so the log never sees
    0 and no probability is clipped; the loss stays finite for any finite logits.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"softmax_cross_entropy: expected logits (B, K) and labels (B,), got {logits.shape} and {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"softmax_cross_entropy: labels must be integer class indices, got dtype {labels.dtype}")
    batch = logits.shape[0]
    rows = np.arange(batch)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1)
    # -log p[label] = log(sum exp) - shifted[label]
    loss = float(np.sum(np.log(sum_exp)) - np.sum(shifted[rows, labels])) / batch
    # d loss / d logits = (softmax - onehot) / B; reuse ``exp`` as the buffer.
    exp *= (1.0 / batch) / sum_exp[:, None]
    exp[rows, labels] -= 1.0 / batch
    return loss, exp


def cross_entropy_from_probs(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log probs[label]`` with probabilities clipped to ``[1e-12, 1]`` (for reporting)."""
    probs = np.asarray(probs)
    labels = np.asarray(labels)
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, LOG_CLIP, 1.0))))


def l2_penalty(net: Trainable, params: np.ndarray, weight_decay: float) -> tuple[float, np.ndarray]:
    """``0.5 * weight_decay * sum(W^2)`` over the genes ``net.weight_mask()`` marks (weights, not biases), and its gradient."""
    grad = np.where(net.weight_mask(), weight_decay * params, 0.0)
    return 0.5 * float(np.vdot(grad, params)), grad


LOSSES = {"mse": mean_squared_error, "cross_entropy": softmax_cross_entropy}
