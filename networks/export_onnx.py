"""ONNX export of a saved model (:class:`networks.model.Model`): MLP, CNN and NEAT graphs, preprocessing included.

The graph takes the *raw* samples, flattened: input ``"input"`` of shape
``(N, n_features)``; the model's preprocessing (``(x - offset) / scale``)
is the graph's first nodes, so an ONNX runtime is fed what `evo predict` is
fed. Its output ``"output"`` is what `evo predict` reports: class
probabilities for a classifier (``[1 - p, p]`` for one sigmoid output),
values in the user's units for a regressor (target scaling undone), the raw
network outputs for a controller (the action mapping is in the metadata).
``metadata_props`` carry the model's ``outputs`` record (labels, action
mapping) and the preprocessing as JSON.

Built node by node with ``onnx.helper`` (opset 17):

* MLP: ``Gemm`` per layer, then the activation (``Relu``, ``Tanh``, ``Sigmoid``,
  ``LeakyRelu`` alpha 0.01, ``Softmax``);
* CNN: ``Reshape`` to ``(N, C, H, W)``, per block ``Conv`` (explicit pads:
  top, left, bottom, right), the activation and ``MaxPool`` (p x p, stride p,
  floor mode, as ours), ``Flatten`` in ``(C, H, W)`` order, then the dense head;
* NEAT: by topological level, one ``MatMul`` per level and activation with a
  masked weight matrix over the values computed so far (zero where there is
  no enabled connection), ``* response + bias``, the activation, appended with
  ``Concat``; the outputs gathered by node id.

Weights are float32 (what runtimes run); within about 1e-6 of our float64
forward pass on the shipped configs (``tests/test_export.py``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

OPSET = 17
ONNX_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "leaky_relu": "LeakyRelu", "softmax": "Softmax"}


class _Graph:
    """A growing ONNX graph: constants as initializers, nodes in order, fresh names."""

    def __init__(self, dtype: type = np.float32) -> None:
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, value: Any, stem: str = "c", dtype: Any = None) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype or self.dtype), name=name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(stem or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def activation(self, x: str, name: str) -> str:
        if name == "identity":
            return x
        if name not in ONNX_ACTIVATIONS:
            raise ValueError(f"activation {name!r} has no ONNX counterpart; known: {sorted(ONNX_ACTIVATIONS)}")
        attrs: dict[str, Any] = {"alpha": 0.01} if name == "leaky_relu" else {"axis": -1} if name == "softmax" else {}
        return self.op(ONNX_ACTIVATIONS[name], [x], **attrs)

    def dense(self, x: str, W: np.ndarray, b: np.ndarray, activation: str) -> str:
        return self.activation(self.op("Gemm", [x, self.const(W, "W"), self.const(b, "b")]), activation)


def _mlp(g: _Graph, spec: Any, params: np.ndarray, x: str) -> str:
    for (W, b), act in zip(spec.unflatten(params[None]), spec.activations):
        x = g.dense(x, W[0], b[0, 0], act)
    return x


def _cnn(g: _Graph, spec: Any, params: np.ndarray, x: str) -> str:
    C, H, W_ = spec.input_shape
    x = g.op("Reshape", [x, g.const([-1, C, H, W_], "shape", np.int64)])
    layers = spec.unflatten(params[None])
    for geo, block, (W, b) in zip(spec.geometry, spec.conv_blocks, layers):
        top, bottom, left, right = geo.pad
        conv_inputs = [x, g.const(W[0], "filters"), g.const(b[0], "bias")]
        x = g.op("Conv", conv_inputs, kernel_shape=[geo.kernel] * 2, strides=[geo.stride] * 2, pads=[top, left, bottom, right])
        x = g.activation(x, block.activation)
        if geo.pool > 1:
            x = g.op("MaxPool", [x], kernel_shape=[geo.pool] * 2, strides=[geo.pool] * 2)
    x = g.op("Flatten", [x], axis=1)
    for (W, b), act in zip(layers[len(spec.geometry) :], spec.dense_activations):
        x = g.dense(x, W[0], b[0, 0], act)
    return x


def _neat(g: _Graph, spec: Any, params: np.ndarray, x: str) -> str:
    graph = spec.to_graph(params)
    n_in, n_out = spec.n_inputs, spec.n_outputs
    incoming: dict[int, list[tuple[int, float]]] = {}
    for c in graph["connections"]:
        incoming.setdefault(int(c["out"]), []).append((int(c["in"]), float(c["weight"])))
    columns = list(range(n_in))  # node id of each column of the values tensor so far
    by_level: dict[int, list[dict]] = {}
    for node in graph["nodes"]:
        if node["kind"] != "input":
            by_level.setdefault(int(node["level"]), []).append(node)
    for level in sorted(by_level):
        groups: dict[str, list[dict]] = {}
        for node in by_level[level]:
            # Outputs before a softmax are left linear here; the softmax runs over all of them at the end.
            act = "identity" if node["kind"] == "output" and node["activation"] == "softmax" else node["activation"]
            groups.setdefault(act, []).append(node)
        new_values, new_ids = [], []
        for act, nodes in groups.items():
            position = {node_id: i for i, node_id in enumerate(columns)}
            W = np.zeros((len(columns), len(nodes)))
            for j, node in enumerate(nodes):
                for src, weight in incoming.get(int(node["id"]), []):
                    W[position[src], j] += weight
            z = g.op("MatMul", [x, g.const(W, "W")])
            z = g.op("Mul", [z, g.const([n["response"] for n in nodes], "response")])
            z = g.op("Add", [z, g.const([n["bias"] for n in nodes], "bias")])
            new_values.append(g.activation(z, act))
            new_ids += [int(n["id"]) for n in nodes]
        x = g.op("Concat", [x, *new_values], axis=1)
        columns += new_ids
    position = {node_id: i for i, node_id in enumerate(columns)}
    out = g.op("Gather", [x, g.const([position[n_in + k] for k in range(n_out)], "outputs", np.int64)], axis=1)
    return g.activation(out, "softmax") if spec.output_activation == "softmax" else out


EXPORTERS = {"mlp": _mlp, "cnn": _cnn, "neat": _neat}


def to_onnx(model: Any, dtype: type = np.float32) -> Any:
    """An ``onnx.ModelProto`` computing what ``model`` (a :class:`networks.model.Model`) reports, from raw samples."""
    from onnx import TensorProto, checker, helper

    from networks.model import Classifier, Regressor

    kind = model.spec.describe().get("type")
    if kind not in EXPORTERS:
        raise ValueError(f"ONNX export: network type {kind!r} is not supported yet; supported: {sorted(EXPORTERS)}")
    g = _Graph(dtype)
    prep = model.preprocessing
    x = "input"
    if prep.offset is not None:
        x = g.op("Sub", [x, g.const(prep.offset, "offset")])
    if prep.scale is not None:
        x = g.op("Div", [x, g.const(prep.scale, "scale")])
    y = EXPORTERS[kind](g, model.spec, model.params, x)
    if isinstance(model, Classifier) and model.outputs_meaning.get("decision") == "threshold":
        y = g.op("Concat", [g.op("Sub", [g.const([1.0], "one"), y]), y], axis=1)
    elif isinstance(model, Regressor):
        if prep.target_scale is not None:
            y = g.op("Mul", [y, g.const(prep.target_scale, "target_scale")])
        if prep.target_offset is not None:
            y = g.op("Add", [y, g.const(prep.target_offset, "target_offset")])
    g.nodes.append(helper.make_node("Identity", [y], ["output"]))
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    n_out = 2 if isinstance(model, Classifier) and model.outputs_meaning.get("decision") == "threshold" else model.spec.n_outputs
    graph = helper.make_graph(
        g.nodes,
        f"evo_{kind}",
        [helper.make_tensor_value_info("input", elem, ["N", model.n_features])],
        [helper.make_tensor_value_info("output", elem, ["N", n_out])],
        initializer=g.initializers,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="evo")
    onnx_model.ir_version = 8  # what current runtimes read (opset 17 needs >= 8)
    meta = {"outputs": model.outputs_meaning, "preprocessing": prep.to_dict(), "network": model.spec.describe().get("type")}
    for key, value in meta.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = f"evo_{key}", json.dumps(value)
    checker.check_model(onnx_model)
    return onnx_model
