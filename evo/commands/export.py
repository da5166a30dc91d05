"""`evo export RUN_DIR --format onnx`: the run's model as an ONNX file (MLP, CNN, NEAT), preprocessing included."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evo.commands.common import Output, add_json, int_in
from evo.config import ConfigError


def add_parser(sub: Any) -> None:
    """The `evo export` options."""
    export = sub.add_parser(
        "export",
        help="export a run's model (MLP, CNN, NEAT) to ONNX",
        description=(
            "Writes RUN_DIR's model as ONNX (opset 17, float32): input 'input' holds raw samples (N, features), the "
            "preprocessing is part of the graph; output 'output' is what `evo predict` reports (class probabilities, "
            "or values). Labels, action mapping and preprocessing are in the metadata (evo_outputs, evo_preprocessing)."
        ),
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or a model.json)")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    export.add_argument("--out", metavar="FILE", help="where to write (default: RUN_DIR/model.onnx)")
    export.add_argument("--member", type=int_in(0), metavar="K", help="export Pareto-front member K")
    add_json(export, "where it went")


def run(args: argparse.Namespace, out: Output) -> int:
    """Load, convert, write atomically."""
    from evo.files import atomic_write_bytes
    from networks.export_onnx import to_onnx
    from networks.model import load_model

    try:
        model = load_model(args.run_dir, member=args.member)
        proto = to_onnx(model)
    except ValueError as exc:
        raise ConfigError(f"config error: export: {exc}") from None
    run_dir = Path(args.run_dir)
    default = (run_dir if run_dir.is_dir() else run_dir.parent) / (
        "model.onnx" if args.member is None else f"member-{args.member:03d}.onnx"
    )
    path = Path(args.out) if args.out else default
    data = proto.SerializeToString()
    atomic_write_bytes(path, data)
    out.say(f"onnx: {path} ({len(data)} bytes; {model.describe()})")
    out.result({"out": str(path), "bytes": len(data), "network": model.spec.describe().get("type"), "outputs": model.outputs_meaning})
    return 0
