"""`qrequant`: an int8 tensor re-quantized to another scale and zero point (onnxruntime's QLinearConcat does
it to each input quantized unlike its output; numerics "ort").

IR attrs: `x_scale`, `x_zero`, `y_scale`, `y_zero`; forward (`lut_s8`, C twin firmware/runtime/ops/
tt_qrequant.c): `y = table[x + 128]`,
`table[x] = clamp(rne(f32(f32(x - x_zero) * x_scale) / y_scale) + y_zero)`
(DequantizeLinear then QuantizeLinear in float32). Gradient: the real value passes (identity), masked where
the output saturated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import EmitContext, call, emitter
from tinytrain.ir import Graph, Op
from tinytrain.ops.common import emit_clamp_mask, masked
from tinytrain.program import Step, Storage

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

KIND = "qrequant"


def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    return graph.tensors[op.inputs[0]].shape


def table(x_scale: float, x_zero: int, y_scale: float, y_zero: int) -> np.ndarray:
    f32 = np.float32
    v = (np.arange(-128, 128) - int(x_zero)).astype(f32) * f32(x_scale)
    return np.clip(np.rint(v / f32(y_scale)) + int(y_zero), -128, 127).astype(np.int8)


def lut_s8(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    return np.asarray(table, np.int8)[x.astype(np.int32) + 128]


def _table(op: Op) -> np.ndarray:
    a = op.attrs
    return table(float(a["x_scale"]), int(a["x_zero"]), float(a["y_scale"]), int(a["y_zero"]))


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    return lut_s8(ins[0], _table(op))


@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    name = f"lut:{op.name}"
    if name not in b.buffers:
        b.buffer(name, "s8", (256,), Storage.FLASH, "table", op.name, _table(op))
    b.emit("lut_s8", {"x": b.act(op.inputs[0]), "table": name}, {"y": b.def_act(op.output)}, {}, op.name)
    emit_clamp_mask(b, op, -128, 127)


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    g = masked(b, op, g)
    if b.needs_grad(op.inputs[0]):
        b.contribute(op.inputs[0], g)


@emitter("lut_s8")
def _emit(s: Step, c: EmitContext) -> str:
    return call("lut_s8", c.buf(s, "x"), c.size(s, "x"), c.buf(s, "table"), c.out(s))
