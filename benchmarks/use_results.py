"""Using what evolved: `evo predict` on raw digits against the run's own test figure, and ONNX against `evo predict`.

1. Digits: ``evo run configs/digits-mlp.toml`` and ``evo train configs/digits-mlp.toml``,
   then ``evo predict RUN_DIR test.csv`` on the test split as scikit-learn
   ships it (pixels 0..16, never divided by 16 by hand): the accuracy printed
   must equal the run's ``test_accuracy`` exactly. Beside it, the bare
   network fed the same raw pixels (what a user without the recorded
   preprocessing would get).
2. ONNX: ``evo export`` of runs of the shipped configs (MLP, CNN, NEAT,
   searched CNN; XOR-NEAT for a graph with hidden nodes), run in
   onnxruntime on the raw test split (XOR: its truth table); the largest
   absolute difference from ``evo predict``'s probabilities per network type.

    python benchmarks/use_results.py [--generations-scale 1.0]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

#: config -> generations for the ONNX part (the golden tool's counts: short, but past the first structural changes)
ONNX_RUNS = {"digits-mlp": 150, "digits-cnn": 15, "digits-neat": 15, "digits-cnn-search": 2, "xor-neat": 100}


def evo(*argv: str) -> dict:
    """Run an `evo` command with --json; its JSON document."""
    env = {**os.environ, "PYTHONPATH": ROOT, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "evo.cli", *argv, "--json"], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"evo {' '.join(argv)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)


def main() -> None:
    """Both parts; one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations-scale", type=float, default=1.0, help="scale the generation counts (smoke runs)")
    args = parser.parse_args()
    import onnxruntime as ort

    from evo.tasks.datasets import DIGITS_IMAGE_SHAPE, load_digits_raw, stratified_split
    from networks import load_model
    from networks.export_onnx import to_onnx
    from networks.neat import NEATSpec

    X, y = load_digits_raw()
    split = stratified_split(X, y, 0.1, 0.2, 0, image_shape=DIGITS_IMAGE_SHAPE)  # the shipped configs' split
    work = Path(tempfile.mkdtemp())
    test_csv = work / "digits-test.csv"
    with open(test_csv, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"pixel{i}" for i in range(64)] + ["digit"])
        writer.writerows([[int(v) for v in row] + [int(t)] for row, t in zip(split.X_test, split.y_test)])

    print("1. digits, raw test split (pixels 0..16) through `evo predict`:")
    generations = str(max(1, int(150 * args.generations_scale)))
    runs = {
        "evolution": evo("run", "configs/digits-mlp.toml", "--generations", generations, "--out", str(work), "--no-progress"),
        "backprop": evo(
            "train",
            "configs/digits-mlp.toml",
            "--epochs",
            str(max(1, int(30 * args.generations_scale))),
            "--out",
            str(work),
            "--no-progress",
        ),
    }
    run_dirs = {
        k: next(p for p in work.iterdir() if p.is_dir() and p.name.startswith("digits-mlp-train" if k == "backprop" else "digits-mlp-2"))
        for k in runs
    }
    for method, summary in runs.items():
        predicted = evo("predict", str(run_dirs[method]), str(test_csv))
        model = load_model(run_dirs[method])
        bare = float(np.mean(np.argmax(model.spec.predict(model.params, split.X_test), axis=1) == split.y_test))
        same = "exactly" if predicted["accuracy"] == summary["test_accuracy"] else "DIFFERENT"
        print(
            f"   {method:9s} run test_accuracy {summary['test_accuracy']:.6f}   evo predict {predicted['accuracy']:.6f} ({same})"
            f"   bare network on raw pixels {bare:.6f}"
        )

    print("2. ONNX (onnxruntime, float32) against `evo predict` (float64), largest absolute difference on the test split:")
    for name, gens in ONNX_RUNS.items():
        out = work / name
        evo(
            "run",
            f"configs/{name}.toml",
            "--generations",
            str(max(1, int(gens * args.generations_scale))),
            "--out",
            str(out),
            "--no-progress",
        )
        (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
        model = load_model(run_dir)
        inputs = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]) if name.startswith("xor") else split.X_test
        session = ort.InferenceSession(to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
        onnx_out = session.run(None, {"input": inputs.astype(np.float32)})[0]
        diff = float(np.abs(onnx_out - model.predict_proba(inputs)).max())
        extra = f", {model.spec.count_hidden(model.params)} hidden nodes" if isinstance(model.spec, NEATSpec) else ""
        print(
            f"   {name:18s} {model.spec.describe()['type']:5s} ({model.spec.n_params} parameters{extra}): {diff:.2e}  (< 1e-5: {diff < 1e-5})"
        )


if __name__ == "__main__":
    main()
