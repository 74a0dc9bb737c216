"""The op kinds of imported models (tinytrain/ops/<op>.py), one home each: IR shape rule, numpy reference
kernels, forward and gradient lowering, C emitter. This registry lists them; the IR (tinytrain/ir.py), the
reference (tinytrain/reference), the kernel lookup and the code generator ask it."""

from __future__ import annotations

from types import ModuleType

from tinytrain.ops import add, concat, conv, mean, pad, pool

MODULES: tuple[ModuleType, ...] = (conv, add, pool, mean, pad, concat)
OPS: dict[str, ModuleType] = {m.KIND: m for m in MODULES}
#: op kinds whose weights a scheme can name (beside the zoo's conv2d)
WEIGHTED = ("qconv",)


def op_module(kind: str) -> ModuleType | None:
    return OPS.get(kind)
