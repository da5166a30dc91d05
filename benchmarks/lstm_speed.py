"""LSTM (and GRU) forward + backward: this project's NumPy BPTT against PyTorch on the CPU, one thread each.

Each case trains nothing: it times one training step's work, the forward
pass that keeps what the backward needs and the backward pass to every
weight gradient, for a recurrent layer plus a linear readout of the last
step, loss ``sum(R * outputs)``. Ours: ``networks.rnn.RNN.forward_train`` +
``backward`` (float64, as the trainer runs). PyTorch: ``nn.LSTM`` /
``nn.GRU`` + ``nn.Linear``, ``loss.backward()``, in float32 (its usual
training precision) and in float64 (ours). Both sides run on one thread
(``torch.set_num_threads(1)``; BLAS threads pinned to 1 through the
environment before NumPy loads). Before timing, the same weights are copied
into PyTorch and outputs and gradients are checked equal in float64 (this
also checks that the gate order is PyTorch's). Reported: the
fastest of ``--repeats`` timed steps after warm-up (as ``timeit`` advises:
on a shared machine the other processes only ever add time, and the median
then measures them), the three timed in turns, and the ratio ours / PyTorch
(below 1: ours is faster).

    python benchmarks/lstm_speed.py [--repeats 30] [--clock wall|cpu]

``--clock cpu`` times this process's CPU time instead of elapsed time: on a
machine shared with other work the waits for a core then do not count (the
page faults of fresh large arrays, which are system time, still do).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from networks.rnn import RNN  # noqa: E402

#: (cell, input size, hidden, steps, batch): digits read by rows; a mid-size sequence model; a larger one
CASES = [("lstm", 8, 16, 8, 32), ("lstm", 8, 64, 8, 32), ("lstm", 1, 32, 32, 32), ("lstm", 32, 128, 32, 64), ("gru", 8, 64, 8, 32)]


def torch_model(cell: str, F: int, H: int, n_out: int, dtype):
    import torch

    rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(F, H, batch_first=True).to(dtype)
    return rnn, torch.nn.Linear(H, n_out).to(dtype)


def copy_weights(net: RNN, params: np.ndarray, rnn, linear) -> None:
    """Our flat genome into the PyTorch modules (biases: ours in bias_ih, bias_hh zero but the GRU's candidate part)."""
    import torch

    ((W, b, b_hn),), ((Wr, br),) = net._views(params)
    F = net.input_size
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(W[:F].T.copy()))
        rnn.weight_hh_l0.copy_(torch.from_numpy(W[F:].T.copy()))
        rnn.bias_ih_l0.copy_(torch.from_numpy(b.copy()))
        hh = np.zeros_like(b)
        if b_hn is not None:
            hh[2 * net.hidden[0] :] = b_hn
        rnn.bias_hh_l0.copy_(torch.from_numpy(hh))
        linear.weight.copy_(torch.from_numpy(Wr.T.copy()))
        linear.bias.copy_(torch.from_numpy(br.copy()))


def ours_step(net: RNN, params: np.ndarray, X: np.ndarray, R: np.ndarray) -> np.ndarray:
    out, cache = net.forward_train(params, X)
    return net.backward(params, cache, R)


def torch_step(rnn, linear, x, R):
    rnn.zero_grad(set_to_none=True)
    linear.zero_grad(set_to_none=True)
    out = linear(rnn(x)[0][:, -1])
    (out * R).sum().backward()


def best_ms(functions: list, repeats: int, clock=time.perf_counter) -> list[float]:
    """Fastest milliseconds of each function, timed in turns (round robin) so that a busy machine weighs on all alike."""
    for fn in functions:
        for _ in range(3):
            fn()
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeats):
        for fn, slot in zip(functions, times):
            start = clock()
            fn()
            slot.append(clock() - start)
    return [1000.0 * min(slot) for slot in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (user + system), which a loaded machine's waits do not inflate",
    )
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch): nothing to compare against; skipped")
        return

    torch.set_num_threads(1)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print(
        f"numpy {np.__version__}, torch {torch.__version__}, 1 thread each; fastest of {args.repeats} steps (forward + backward), "
        f"{args.clock} clock; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"{'cell':5s} {'F':>3s} {'H':>4s} {'T':>3s} {'B':>3s} | {'ours f64 ms':>11s} {'torch f64 ms':>12s} {'ratio':>6s} | {'torch f32 ms':>12s} {'ratio':>6s}"
    )
    for cell, F, H, T, B in CASES:
        net = RNN(F, (H,), 10, cell=cell, steps=T)
        rng = np.random.default_rng(0)
        params = net.init_params(rng, 1)[0] + rng.normal(0, 0.1, net.n_params)
        X = rng.normal(size=(B, net.n_inputs))
        R = rng.normal(size=(B, 10))
        rnn64, lin64 = torch_model(cell, F, H, 10, torch.float64)
        copy_weights(net, params, rnn64, lin64)
        x64, R64 = torch.from_numpy(X.reshape(B, T, F).copy()), torch.from_numpy(R)
        # Same numbers first: outputs and the recurrent weights' gradient.
        out, cache = net.forward_train(params, X)
        grad = net.backward(params, cache, R)
        torch_step(rnn64, lin64, x64, R64)
        np.testing.assert_allclose(out, lin64(rnn64(x64)[0][:, -1]).detach().numpy(), rtol=1e-10, atol=1e-12)
        ((W_grad, _, _),), _ = net._views(grad)
        np.testing.assert_allclose(W_grad[F:].T, rnn64.weight_hh_l0.grad.numpy(), rtol=1e-8, atol=1e-10)
        rnn32, lin32 = torch_model(cell, F, H, 10, torch.float32)
        x32, R32 = x64.float(), R64.float()
        ours, t64, t32 = best_ms(
            [
                partial(ours_step, net, params, X, R),
                partial(torch_step, rnn64, lin64, x64, R64),
                partial(torch_step, rnn32, lin32, x32, R32),
            ],
            args.repeats,
            clock,
        )
        print(f"{cell:5s} {F:3d} {H:4d} {T:3d} {B:3d} | {ours:11.3f} {t64:12.3f} {ours / t64:6.2f} | {t32:12.3f} {ours / t32:6.2f}")


if __name__ == "__main__":
    main()
