"""Shared pieces of the imported op kinds' lowering: the clamp mask of a fused activation (numpy kernel
`mask_range_s8`, C twin firmware/runtime/ops/tt_mask_range.c) and its application in a gradient rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ir import Op
from tinytrain.program import Step, Storage

if TYPE_CHECKING:
    from tinytrain.compiler import Builder


def mask_range_s8(y: np.ndarray, act_min: int, act_max: int) -> np.ndarray:
    """Bit j of the u8[ceil(n/8)] result is 1 when act_min < y[j] < act_max (flat HWC order)."""
    v = np.asarray(y).reshape(-1).astype(np.int32)
    return np.packbits((v > act_min) & (v < act_max), bitorder="little")


@emitter("mask_range_s8")
def _mask_range_s8(s: Step, c: EmitContext) -> str:
    return call(
        "mask_range_s8", c.buf(s, "y"), c.size(s, "y"), c.attr(s, "act_min"), c.attr(s, "act_max"), c.out(s)
    )


def hwc_of(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(H, W, C) of a device buffer shaped [H, W, C] or [C]."""
    if len(shape) == 1:
        return 1, 1, int(shape[0])
    return int(shape[0]), int(shape[1]), int(shape[2])


def emit_clamp_mask(b: Builder, op: Op, act_min: int, act_max: int) -> None:
    """Training forward: the mask of where `op`'s output clamp did not bind, if its gradient is needed."""
    if not b._training or not b.needs_grad(op.output) or op.output == b.graph.output:
        return
    n = (int(np.prod(b.graph.tensors[op.output].shape)) + 7) // 8
    bits = b.buffer(f"mask:{op.output}", "u8", (n,), Storage.ARENA, "mask", op.name)
    b.emit(
        "mask_range_s8",
        {"y": b.act(op.output)},
        {"bits": bits},
        {"act_min": int(act_min), "act_max": int(act_max)},
        op.name,
    )


def masked(b: Builder, op: Op, g: str) -> str:
    """The gradient rule's g masked by the forward's clamp mask (in place when no other pending gradient
    shares the buffer and in-place is on)."""
    if op.output == b.graph.output:
        return g
    out = (
        g if b.options.inplace and not b._shared(g, op.output) else b.grad_buffer(op.output, op.name, "gmask")
    )
    b.emit("apply_mask_f32", {"g": g, "bits": f"mask:{op.output}"}, {"g": out}, {}, op.name, "backward")
    b.grad_buffers[op.output] = out
    return out
