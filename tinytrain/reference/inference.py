"""Reference inference over the IR with the exact integer semantics of docs/numerics.md."""

from __future__ import annotations

import numpy as np

from tinytrain import TinytrainError
from tinytrain import kernels as K
from tinytrain.ir import Graph, Op


def _conv(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    out = graph.tensors[op.output]
    m = K.requant_multipliers(op.attrs["x_scale"], op.w_scales, out.scale)
    if op.depthwise:
        return K.dwconv2d_s8(
            x, K.dw_weight_hwc(op.weight), op.bias, m, op.attrs["x_zero"], out.zero, op.stride, op.padding
        )
    return K.conv2d_s8(
        x, K.weight_ohwi(op.weight), op.bias, m, op.attrs["x_zero"], out.zero, op.stride, op.padding
    )


def _hwc(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    return (shape[1], shape[2], shape[0])


def run_forward(graph: Graph, x_hwc: np.ndarray) -> dict[str, np.ndarray]:
    """All activations (HWC int8) of one forward pass; x_hwc is the int8 input [H, W, C]."""
    shape = graph.tensors[graph.input].shape
    if x_hwc.dtype != np.int8 or x_hwc.shape != (shape[1], shape[2], shape[0]):
        raise TinytrainError(
            f"input must be int8 {(shape[1], shape[2], shape[0])} (HWC), got "
            f"{x_hwc.dtype}{tuple(x_hwc.shape)}"
        )
    acts = {graph.input: x_hwc}
    from tinytrain.ops.registry import OPS  # imported models' op kinds (numerics "tflm")

    for op in graph.ops:
        ins = [acts[t] for t in op.inputs]
        if op.kind in OPS:
            y = OPS[op.kind].reference(graph, op, ins).reshape(_hwc(graph.tensors[op.output].shape))
        elif op.kind == "conv2d":
            y = _conv(graph, op, ins[0])
        elif op.kind == "add":
            a, b = (graph.tensors[t] for t in op.inputs)
            out = graph.tensors[op.output]
            y = K.add_s8(
                ins[0],
                ins[1],
                np.float32(a.scale / out.scale),
                np.float32(b.scale / out.scale),
                a.zero,
                b.zero,
                out.zero,
            )
        elif op.kind == "avgpool":
            y = K.avgpool_s8(ins[0]).reshape(1, 1, -1)
        else:
            raise TinytrainError(f"layer {op.name!r}: no reference semantics for op {op.kind!r}")
        acts[op.output] = y
    return acts


def infer(graph: Graph, x_chw: np.ndarray) -> np.ndarray:
    """int8 logits [K] for an int8 input shaped [C, H, W] or [1, C, H, W]."""
    x = np.asarray(x_chw)
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise TinytrainError(f"batch size must be 1, got input shape {tuple(x.shape)}")
        x = x[0]
    if x.ndim != 3:
        raise TinytrainError(f"input must be [1, C, H, W] or [C, H, W], got shape {tuple(x.shape)}")
    return run_forward(graph, np.ascontiguousarray(x.transpose(1, 2, 0)))[graph.output].reshape(-1)
