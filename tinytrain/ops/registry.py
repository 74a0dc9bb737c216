"""Every op kind, one home each (tinytrain/ops/<op>.py or a package tinytrain/ops/<op>/): IR shape rule
(`out_shape`), reference over the IR (`reference`), numpy reference kernels (forward, backward, update),
forward and gradient lowering, C emitters; its C kernels in firmware/runtime/ops/. This registry lists them
(one line per op); the IR (tinytrain/ir.py), the reference (tinytrain/reference), the kernel and scratch
lookups and the code generator ask it."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import tinytrain.ops.embedding as embedding  # its own line: the keyboard's op
from tinytrain.ops import (  # the zoo's own kinds (C declared in tt_kernels.h)
    add,
    avgpool,
    common,
    concat,
    conv,
    conv2d,
    hardswish,
    logistic,
    mean,
    mul,
    pad,
    pool,
    requant,
    residual,
)

if TYPE_CHECKING:
    from tinytrain.program import Program

#: the zoo's op kinds (tinytrain.ir.OP_KINDS): their kernels are declared in firmware/runtime/tt_kernels.h
ZOO: tuple[ModuleType, ...] = (conv2d, residual, avgpool)
#: the imported models' op kinds (numerics "tflm" / "ort"): kernels declared in firmware/runtime/ops/tt_ops.h
IMPORTED: tuple[ModuleType, ...] = (conv, add, pool, mean, pad, concat, requant, hardswish, logistic, mul)
IMPORTED += (embedding,)
MODULES: tuple[ModuleType, ...] = ZOO + IMPORTED
OPS: dict[str, ModuleType] = {m.KIND: m for m in MODULES}
#: op kinds whose weights a scheme can name (beside the zoo's conv2d)
WEIGHTED = ("qconv", "embedding")


def op_module(kind: str) -> ModuleType | None:
    return OPS.get(kind)


def kernel_function(name: str) -> Callable[..., Any] | None:
    """The numpy reference kernel `name` of an op kind (or the shared mask kernel), else None."""
    if name not in KERNELS and name not in ZOO_KERNELS:
        return None
    for mod in (*MODULES, common):
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn
    return None


def scratch_function(kernel: str) -> Callable[..., int] | None:
    """The `<kernel>_scratch_bytes` query of an op's kernel (the planner reserves that much), else None."""
    for mod in MODULES:
        fn = getattr(mod, f"{kernel}_scratch_bytes", None)
        if callable(fn):
            return fn
    return None


#: kernels of the imported op kinds (C: firmware/runtime/ops/tt_ops.h)
KERNELS = frozenset(
    {
        "qconv_s8",
        "qdwconv_s8",
        "qadd_s8",
        "maxpool_s8",
        "avgpool_win_s8",
        "mean_s8",
        "pad_s8",
        "concat2_s8",
        "mask_range_s8",
        "qconv_f_s8",
        "qdwconv_f_s8",
        "qadd_ort_s8",
        "mean_f_s8",
        "avgpool_f_s8",
        "lut_s8",
        "hardswish_s8",
        "hardswish_bwd_f32",
        "logistic_s8",
        "logistic_bwd_f32",
        "mul_s8",
        "mul_bwd_f32",
        "qconv_bwd_input_f32",
        "qdwconv_bwd_input_f32",
        "qconv_wgrad_f32",
        "qdwconv_wgrad_f32",
        "avgpool_win_bwd_f32",
        "maxpool_bwd_f32",
        "pad_bwd_f32",
        "concat2_bwd_f32",
    }
    | embedding.KERNELS
).union(*(getattr(m, "KERNELS", frozenset()) for m in IMPORTED))  # a new op's own `KERNELS` suffices


#: kernels of the zoo's op kinds (C: firmware/runtime/tt_kernels.h, tt_memory_ops.h)
ZOO_KERNELS = frozenset().union(*(m.KERNELS for m in ZOO))


def ops_header(program: Program) -> str:
    """The header generated C includes when the program calls these kernels ("" otherwise)."""
    steps = [*program.steps, *program.infer_steps]
    return "ops/tt_ops.h" if any(s.kernel in KERNELS for s in steps) else ""
