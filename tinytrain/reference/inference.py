"""Reference inference over the IR with the exact integer semantics of docs/numerics.md."""

from __future__ import annotations

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph


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
    from tinytrain.ops.registry import OPS  # every op kind's reference semantics (tinytrain/ops/<op>)

    for op in graph.ops:
        ins = [acts[t] for t in op.inputs]
        if op.kind in OPS:
            y = OPS[op.kind].reference(graph, op, ins).reshape(_hwc(graph.tensors[op.output].shape))
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
