"""The adapted model as a `.tflite`: the original flatbuffer with the trained int8 weights and int32 biases
written over their buffers, byte for byte in place; everything else (quantization parameters, ops, tensor
names, metadata) is the original's.

Training changes only the int8 weights and the int32 biases of the layers the scheme updates (the trainable
buffers `w:<layer>` / `b:<layer>`); the per-channel weight scales, zero points, the activations'
quantization and so the requantization multipliers stay as they were. So the rewritten file is exactly the
adapted model: TFLite Micro on it gives the int8 outputs `tinytrain infer` gives on the adapted model
directory (tests/export/test_round_trip.py).

Each imported weighted layer (`qconv`) carries the index of its TFLite op (`source_index`); its weight is
the op's input 1, its bias input 2. The IR keeps weights as [Co, Ci, kh, kw]
(`tinytrain.models.tflite_import`): CONV_2D [Co, kh, kw, Ci] and FULLY_CONNECTED [Co, (h, w, c)] go back
by the transpose (0, 2, 3, 1) (and a reshape), DEPTHWISE_CONV_2D [1, kh, kw, C] by
`[:, 0].transpose(1, 2, 0)`. Before a byte is written, every layer is checked against the file: op kind,
weight and bias sizes, per-channel scales; a buffer another tensor shares, a head replaced with another
class count or a file of another model refuse the rewrite (`TfliteRewriteError`, one line).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from tinytrain import TinytrainError

#: the .tflite a model directory was imported from (`tinytrain import` copies it) or its adapted rewrite
SOURCE_NAME = "source.tflite"
ADAPTED_NAME = "model.tflite"
_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


class TfliteRewriteError(TinytrainError):
    """The adapted weights cannot be written into this .tflite (the reason in one line)."""


def _mod(name: str) -> Any:
    return importlib.import_module(f"tflite.{name}")


def _device_to_tflite(op: Any, w_ir: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if op.attrs.get("depthwise"):
        out = w_ir[:, 0].transpose(1, 2, 0)  # [C, 1, kh, kw] -> [kh, kw, C]
    else:
        out = w_ir.transpose(0, 2, 3, 1)  # [Co, Ci, kh, kw] -> [Co, kh, kw, Ci]
    if out.size != int(np.prod(shape)):
        raise TfliteRewriteError(
            f"layer {op.name!r}: weight of {out.size} values, the .tflite tensor has shape {list(shape)}"
        )
    return np.ascontiguousarray(out.reshape(shape))


def _vector(table: Any) -> tuple[int, int]:
    """(start, length in bytes) of a Buffer's `data` vector inside the flatbuffer (0, 0 when empty)."""
    o = table._tab.Offset(4)
    if not o:
        return 0, 0
    return int(table._tab.Vector(o)), int(table._tab.VectorLen(o))


def rewrite_tflite(source: bytes, graph: Any) -> bytes:
    """`source` (a .tflite flatbuffer the graph was imported from) with the graph's weights and biases."""
    if len(source) < 8 or source[4:8] != b"TFL3":
        raise TfliteRewriteError("not a TFLite flatbuffer (no 'TFL3' identifier)")
    from tflite.utils import BUILTIN_OPCODE2NAME

    model = _mod("Model").Model.GetRootAs(source, 0)
    if model.SubgraphsLength() != 1:
        raise TfliteRewriteError(f"{model.SubgraphsLength()} subgraphs; an imported model has one")
    sg = model.Subgraphs(0)
    codes = [
        max(int(c.DeprecatedBuiltinCode()), int(c.BuiltinCode()))
        for c in (model.OperatorCodes(i) for i in range(model.OperatorCodesLength()))
    ]
    for op in graph.ops:  # every layer must be the file's own op (a new head is not)
        i = op.attrs.get("source_index")
        name = ""
        if isinstance(i, int) and 0 <= i < sg.OperatorsLength():
            name = str(BUILTIN_OPCODE2NAME.get(codes[sg.Operators(i).OpcodeIndex()], "?"))
        if name != op.attrs.get("source_op"):
            what = op.attrs.get("source_op") or op.kind
            hint = (
                "a replaced head (another class count) has no place in the original file"
                if "new head" in str(what)
                else "not this file's op (another model?)"
            )
            raise TfliteRewriteError(f"layer {op.name!r} ({what}, op #{i}): {hint}")
    users: dict[int, int] = {}
    for t in range(sg.TensorsLength()):
        b = int(sg.Tensors(t).Buffer())
        users[b] = users.get(b, 0) + 1
    patches: list[tuple[int, bytes, str]] = []
    layers = [op for op in graph.ops if op.attrs.get("source_op") in _WEIGHTED and "weight" in op.params]
    if not layers:
        raise TfliteRewriteError("the model has no weighted layer imported from a .tflite")
    for op in layers:
        i = int(op.attrs["source_index"])
        if not 0 <= i < sg.OperatorsLength():
            raise TfliteRewriteError(f"layer {op.name!r}: op #{i} is not in the file (another model?)")
        top = sg.Operators(i)
        name = str(BUILTIN_OPCODE2NAME.get(codes[top.OpcodeIndex()], "?"))
        if name != op.attrs["source_op"]:
            raise TfliteRewriteError(f"layer {op.name!r}: op #{i} is {name}, not {op.attrs['source_op']}")
        ins = [int(v) for v in top.InputsAsNumpy()]
        wt = sg.Tensors(ins[1])
        wshape = tuple(int(v) for v in wt.ShapeAsNumpy())
        q = wt.Quantization()
        scales = np.asarray(q.ScaleAsNumpy(), np.float32) if q is not None and q.ScaleLength() else None
        want = np.asarray(op.params["w_scales"], np.float32)
        if (
            scales is None
            or scales.size not in (1, want.size)
            or not np.array_equal(np.broadcast_to(scales, want.shape), want)
        ):
            raise TfliteRewriteError(
                f"layer {op.name!r}: the weight scales of op #{i} differ from the model's (another model?)"
            )
        w_ir = np.asarray(op.params["weight"], np.int8)
        co = wshape[-1 if op.attrs.get("depthwise") else 0]
        if w_ir.shape[0] != co:
            raise TfliteRewriteError(
                f"layer {op.name!r} has {w_ir.shape[0]} outputs, op #{i} of the .tflite {co}: a replaced "
                "head (another class count) has no place in the original file"
            )
        tensors = [(ins[1], _device_to_tflite(op, w_ir, wshape).astype("<i1").tobytes(), "weight")]
        bias = np.asarray(op.params["bias"]).reshape(-1).astype("<i4")
        if len(ins) > 2 and ins[2] >= 0:
            tensors.append((ins[2], bias.tobytes(), "bias"))
        elif np.any(bias != 0):
            raise TfliteRewriteError(f"layer {op.name!r}: trained bias but op #{i} has no bias tensor")
        for t, data, what in tensors:
            bi = int(sg.Tensors(t).Buffer())
            start, n = _vector(model.Buffers(bi)) if 0 < bi < model.BuffersLength() else (0, 0)
            if n != len(data):
                raise TfliteRewriteError(
                    f"layer {op.name!r}: the {what} buffer of op #{i} holds {n} bytes, the adapted {what} "
                    f"{len(data)} (external or missing buffer?)"
                )
            if users.get(bi, 0) != 1:
                raise TfliteRewriteError(
                    f"layer {op.name!r}: the {what} buffer of op #{i} is shared by {users[bi]} tensors"
                )
            patches.append((start, data, what))
    out = bytearray(source)
    for start, data, _ in patches:
        out[start : start + len(data)] = data
    return bytes(out)
