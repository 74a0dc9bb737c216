"""The adapted model as an `.onnx`: the original model with the trained int8 weights and int32 biases in its
initializers (same names, dtypes and shapes); every node, quantization parameter and the rest of the graph
are the original's. onnxruntime (the oracle of `.onnx` imports) gives on it the int8-grid outputs
`tinytrain infer` gives on the adapted model directory (tests/export/test_round_trip.py).

Each imported weighted layer carries its node's index (`source_index`). The weight initializer is input 3 of
`QLinearConv` / `QGemm` or, in QDQ form, the constant under the DequantizeLinear of input 1; the bias is
input 8 (`QLinearConv`), 6 (`QGemm`) or the constant under the DequantizeLinear of input 2. The IR keeps conv
weights as ONNX does ([Co, Ci/g, kh, kw]; a Conv1d's [Co, Ci, k] gains kh = 1) and a Gemm's as
[K, C, H, W] of its [K, N] (`transB`) or [N, K] weight: a reshape (and a transpose) takes them back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytrain.export.tflite_out import TfliteRewriteError

SOURCE_NAME = "source.onnx"
ADAPTED_NAME = "model.onnx"
_WEIGHTED = ("Conv", "QLinearConv", "Gemm", "QGemm")


class OnnxRewriteError(TfliteRewriteError):
    """The adapted weights cannot be written into this .onnx (the reason in one line)."""


def rewrite_onnx(source: bytes, graph: Any) -> bytes:
    """`source` (the .onnx the graph was imported from) with the graph's weights and biases."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load_model_from_string(source)
    except Exception as exc:  # noqa: BLE001  (protobuf raises many kinds)
        raise OnnxRewriteError(f"not an ONNX model ({type(exc).__name__})") from None
    g = model.graph
    nodes = list(g.node)
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in nodes for o in n.output}
    uses: dict[str, int] = {}
    for n in nodes:
        for t in n.input:
            uses[t] = uses.get(t, 0) + 1
    for op in graph.ops:  # every layer must be the file's own node (a new head is not)
        i = op.attrs.get("source_index")
        name = nodes[i].op_type if isinstance(i, int) and 0 <= i < len(nodes) else ""
        if name != op.attrs.get("source_op"):
            what = op.attrs.get("source_op") or op.kind
            hint = (
                "a replaced head (another class count) has no place in the original file"
                if "new head" in str(what)
                else "not this file's node (another model?)"
            )
            raise OnnxRewriteError(f"layer {op.name!r} ({what}, node #{i}): {hint}")

    def const_under(name: str, what: str, where: str) -> str:
        if name in inits:
            return name
        p = producer.get(name)
        if p is not None and p.op_type == "DequantizeLinear" and p.input[0] in inits:
            return p.input[0]
        raise OnnxRewriteError(f"{where}: the {what} is not a constant initializer")

    layers = [op for op in graph.ops if op.attrs.get("source_op") in _WEIGHTED and "weight" in op.params]
    if not layers:
        raise OnnxRewriteError("the model has no weighted layer imported from an .onnx")
    new: dict[str, np.ndarray] = {}
    for op in layers:
        i = int(op.attrs["source_index"])
        node = nodes[i]
        where = f"layer {op.name!r} (node #{i} {node.op_type})"
        qop = node.op_type in ("QLinearConv", "QGemm")
        w_name = const_under(node.input[3] if qop else node.input[1], "weight", where)
        b_at = {"QLinearConv": 8, "QGemm": 6}.get(node.op_type, 2)
        b_name = (
            const_under(node.input[b_at], "bias", where)
            if len(node.input) > b_at and node.input[b_at]
            else None
        )
        s_in = node.input[4] if qop else producer[node.input[1]].input[1]
        scales = numpy_helper.to_array(inits[s_in]).reshape(-1).astype(np.float32) if s_in in inits else None
        want = np.asarray(op.params["w_scales"], np.float32)
        if (
            scales is None
            or scales.size not in (1, want.size)
            or not np.array_equal(np.broadcast_to(scales, want.shape), want)
        ):
            raise OnnxRewriteError(f"{where}: its weight scales differ from the model's (another model?)")
        orig = numpy_helper.to_array(inits[w_name])
        w_ir = np.asarray(op.params["weight"], np.int8)
        if node.op_type in ("Gemm", "QGemm"):
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            k = w_ir.shape[0]
            w = w_ir.reshape(k, -1) if trans_b else w_ir.reshape(k, -1).T
        else:
            w = w_ir
        if w.size != orig.size or (w.ndim == 2 and w.shape != orig.shape):
            raise OnnxRewriteError(f"{where}: weight {list(w.shape)}, the file's is {list(orig.shape)}")
        new[w_name] = np.ascontiguousarray(w.reshape(orig.shape)).astype(orig.dtype)
        bias = np.asarray(op.params["bias"]).reshape(-1)
        if b_name is not None:
            ob = numpy_helper.to_array(inits[b_name])
            if ob.size != bias.size:
                raise OnnxRewriteError(f"{where}: {bias.size} biases, the file has {ob.size}")
            new[b_name] = bias.reshape(ob.shape).astype(ob.dtype)
        elif np.any(bias != 0):
            raise OnnxRewriteError(f"{where}: trained bias but the node has no bias")
        for t in (w_name, b_name):
            if t is not None and uses.get(t, 0) > 1:
                raise OnnxRewriteError(f"{where}: initializer {t!r} is shared by {uses[t]} nodes")
    for t in g.initializer:
        if t.name in new:
            t.CopyFrom(numpy_helper.from_array(new[t.name], t.name))
    return bytes(model.SerializeToString())
