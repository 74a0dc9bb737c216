"""`qconcat`: CONCATENATION of int8 tensors with one quantization, along channels (axis 0 of the IR's
(C, H, W)), rows or columns.

Forward (`concat_s8`, C twin firmware/runtime/ops/tt_qconcat.c): a copy. Gradient: the matching slice of g
to each input.
"""

from __future__ import annotations

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op

KIND = "qconcat"
#: IR axis (C, H, W) -> axis of the device layout (H, W, C)
HWC_AXIS = {0: 2, 1: 0, 2: 1}


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    shapes = [graph.tensors[t].shape for t in op.inputs]
    ax = int(op.attrs["axis"])
    out = list(shapes[0])
    for s in shapes[1:]:
        if any(s[d] != shapes[0][d] for d in range(3) if d != ax):
            raise TinytrainError(f"layer {op.name!r}: concatenated shapes {shapes} differ off axis {ax}")
        out[ax] += s[ax]
    return (out[0], out[1], out[2])


def concat_s8(xs: list[np.ndarray], axis: int) -> np.ndarray:
    return np.concatenate(xs, axis=HWC_AXIS[axis]).astype(np.int8)


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    return concat_s8(ins, int(op.attrs["axis"]))
