"""CNN speed: one training step against PyTorch, and the population forward evolution runs.

Part 1, forward + backward (the weight gradients) of one network, one batch,
structure ``conv (padding "same") -> relu -> 2x2 max pool -> flatten -> dense
10 -> softmax cross-entropy``:

  (a) a (256, 1, 8, 8) batch, 16 filters 3x3, padding 1;
  (b) a (64, 1, 28, 28) batch, 32 filters 5x5, padding 2.

Ours: ``CNN.forward_train`` -> ``networks.losses.softmax_cross_entropy`` ->
``CNN.backward`` (into a preallocated gradient), in float64 (the trainer's and
the genomes' precision) and float32. PyTorch, when ``import torch`` works (it
is not a dependency of this project): ``conv2d -> relu -> max_pool2d ->
flatten -> linear -> cross_entropy -> backward`` on the CPU with
``torch.set_num_threads(1)``, float32 (its default) and float64, gradients
reset to None each step; NumPy's BLAS is limited to one thread too
(threadpoolctl). Both start from the same weights and the script checks that
they agree on the loss and the gradient before timing. Each figure is the best
single step over ``--repeats`` steps, the contenders interleaved in rounds so
that a busy machine slows them alike.

Part 2, the evolution side: ``CNN.forward`` of 64 genomes of the digits CNN
(1x8x8 -> 8 filters 3x3, padding 1, relu, 2x2 max pool -> dense 10 softmax) on
256 digits images, as one population-batched pass, against a loop of
``predict`` over the genomes (the two must agree).

    python benchmarks/cnn_speed.py [--repeats 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from networks.cnn import CNN  # noqa: E402
from networks.losses import softmax_cross_entropy  # noqa: E402

CASES = {
    "a": dict(batch=256, size=8, filters=16, kernel=3, padding=1),
    "b": dict(batch=64, size=28, filters=32, kernel=5, padding=2),
}


def make_case(case: dict, seed: int = 0):
    """The network spec, one parameter vector, a batch of images and labels."""
    net = CNN(
        (1, case["size"], case["size"]),
        [{"filters": case["filters"], "kernel_size": case["kernel"], "padding": case["padding"], "activation": "relu", "pool": 2}],
        output_size=10,
        output_activation="softmax",
    )
    rng = np.random.default_rng(seed)
    params = net.init_params(rng, 1)[0]
    X = rng.normal(size=(case["batch"], 1, case["size"], case["size"]))
    y = rng.integers(0, 10, size=case["batch"])
    return net, params, X, y


def ours_step(net: CNN, params: np.ndarray, X: np.ndarray, y: np.ndarray):
    """A closure running one forward + loss + backward of our CNN; returns (step, loss and gradient of one run)."""
    grad = np.empty_like(params)

    def step():
        logits, cache = net.forward_train(params, X)
        loss, d_logits = softmax_cross_entropy(logits, y)
        net.backward(params, cache, d_logits, out=grad)
        return loss

    loss = step()
    return step, loss, grad.copy()


def torch_step(net: CNN, params: np.ndarray, X: np.ndarray, y: np.ndarray, dtype_name: str):
    """The same step in PyTorch from the same weights; returns (step, loss, gradient in our flat layout)."""
    import torch

    dtype = getattr(torch, dtype_name)
    (W1, b1), (W2, b2) = net.unflatten(params[None])
    pad = net.conv_blocks[0].padding
    conv_w = torch.tensor(W1[0], dtype=dtype, requires_grad=True)
    conv_b = torch.tensor(b1[0], dtype=dtype, requires_grad=True)
    lin_w = torch.tensor(W2[0].T.copy(), dtype=dtype, requires_grad=True)  # torch keeps (out, in)
    lin_b = torch.tensor(b2[0, 0], dtype=dtype, requires_grad=True)
    weights = (conv_w, conv_b, lin_w, lin_b)
    x = torch.tensor(X, dtype=dtype)
    labels = torch.tensor(y, dtype=torch.long)
    F = torch.nn.functional

    def step():
        for w in weights:
            w.grad = None
        h = F.max_pool2d(F.relu(F.conv2d(x, conv_w, conv_b, padding=pad)), 2)
        loss = F.cross_entropy(F.linear(h.flatten(1), lin_w, lin_b), labels)
        loss.backward()
        return loss

    loss = float(step().detach())
    grad = np.concatenate(
        [w.grad.double().numpy().ravel() for w in (conv_w, conv_b)] + [lin_w.grad.double().numpy().T.ravel(), lin_b.grad.double().numpy()]
    )
    return step, loss, grad


def best_times(steps: dict, repeats: int, rounds: int = 10) -> dict:
    """Best seconds per call of each closure, the closures interleaved in ``rounds`` rounds."""
    best = {name: float("inf") for name in steps}
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(per_round):
                start = time.perf_counter()
                step()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def training_step(repeats: int) -> None:
    """Part 1: ms per forward + backward, ours against PyTorch."""
    try:
        import torch
    except ImportError:
        torch = None
    else:
        torch.set_num_threads(1)
    print("Part 1: forward + backward (weight gradients), conv -> relu -> 2x2 max pool -> dense 10 -> softmax cross-entropy;")
    print(f"        best single step of {repeats}, BLAS and torch on 1 thread")
    for name, case in CASES.items():
        net, params, X, y = make_case(case)
        label = f"({name}) ({case['batch']}, 1, {case['size']}, {case['size']}), {case['filters']} {case['kernel']}x{case['kernel']} filters, padding {case['padding']}"
        steps = {}
        ref_step, ref_loss, ref_grad = ours_step(net, params, X, y)
        steps["ours float64"] = ref_step
        steps["ours float32"] = ours_step(net, params.astype(np.float32), X.astype(np.float32), y)[0]
        if torch is not None:
            for dtype_name in ("float32", "float64"):
                step, loss, grad = torch_step(net, params, X, y, dtype_name)
                tol = 1e-9 if dtype_name == "float64" else 1e-4
                if abs(loss - ref_loss) > tol * max(1.0, abs(ref_loss)) or not np.allclose(grad, ref_grad, rtol=tol * 10, atol=tol):
                    raise SystemExit(f"{label}: PyTorch {dtype_name} disagrees with ours (loss {loss} vs {ref_loss})")
                steps[f"PyTorch {dtype_name}"] = step
        best = best_times(steps, repeats)
        print(f"  {label}")
        for contender, seconds in best.items():
            print(f"    {contender:<16} {seconds * 1e3:8.3f} ms")
        if torch is None:
            print("    PyTorch not installed; skipping the comparison")
        else:
            ours = best["ours float64"]
            print(
                f"    ours float64 / PyTorch float32 = {ours / best['PyTorch float32']:.2f}   "
                f"ours float64 / PyTorch float64 = {ours / best['PyTorch float64']:.2f}   "
                f"ours float32 / PyTorch float32 = {best['ours float32'] / best['PyTorch float32']:.2f}   (target <= 2)"
            )


def population_forward(repeats: int, population: int = 64, batch: int = 256) -> None:
    """Part 2: ms per population forward of the digits CNN, against a per-genome loop."""
    from evo.tasks.datasets import load_digits

    X, _ = load_digits()
    images = X[:batch].reshape(batch, 1, 8, 8)
    net = CNN((1, 8, 8), [{"filters": 8, "kernel_size": 3, "padding": 1, "activation": "relu", "pool": 2}], 10, output_activation="softmax")
    genomes = net.init_params(np.random.default_rng(0), population)
    batched = net.forward(genomes, images)
    looped = np.stack([net.predict(genome, images) for genome in genomes])
    np.testing.assert_allclose(batched, looped, rtol=1e-10, atol=1e-12)
    best = best_times(
        {
            "population": lambda: net.forward(genomes, images),
            "loop": lambda: [net.predict(genome, images) for genome in genomes],
        },
        max(10, repeats // 10),
    )
    print(
        f"\nPart 2: digits CNN {net.n_params} parameters (1x8x8 -> 8 3x3 filters, pad 1, relu, pool 2 -> dense 10 softmax), "
        f"{population} genomes on {batch} digits images, BLAS on 1 thread"
    )
    print(
        f"  population-batched forward {best['population'] * 1e3:8.2f} ms per population "
        f"({best['population'] / population * 1e6:.0f} us per genome)"
    )
    print(f"  loop of predict per genome {best['loop'] * 1e3:8.2f} ms   (batched speed-up {best['loop'] / best['population']:.2f}x)")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=300, help="steps timed per contender (best one reported)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with threadpool_limits(limits=1):
        training_step(args.repeats)
        population_forward(args.repeats)


if __name__ == "__main__":
    main()
