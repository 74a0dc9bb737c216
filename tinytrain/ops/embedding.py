"""`embedding`: GATHER of int8 table rows by token id (a keyboard model's first layer), forward and backward.

IR: one input, a window of T token ids `(1, 1, T)` (dtype s8: ids 0..V-1, so V <= 127; scale 1, zero 0) ->
`(D, 1, T)`; params `weight` int8 [V, D] (the table, symmetric: its scale is the output tensor's scale, zero
0), `bias` int32[0] (an embedding has none; the empty array keeps the weighted-layer bookkeeping uniform);
attrs `scale` (the table's scale). Ids outside [0, V) read the nearest valid row (clamped), on both sides.

Forward (`embedding_s8`, C twin firmware/runtime/ops/embedding.c): `y[t, :] = W[clamp(id[t]), :]`, a copy.
Gradient: the ids get none. The table's gradient in real units is `dL/dE[v, d] = Σ_{t, id[t]=v} g[t, d]`,
non-zero only on the rows of the tokens in the window. With QAS (W_real = s·W̃) the int8 step is
`ΔW̃ = -lr·s^-2·(s·dL/dE) = -lr·(1/s)·dL/dE`, so the per-row table `q = 1/s` (`s` without QAS, like conv's
`x_scale·s_w`). The fused sparse kernel `embedding_wgrad_update` visits rows v = 0..V-1 in order and, for
each row seen in the window only, sums its gradient (t ascending, float32 from +0) and applies the update
rule exactly as `conv2d_weight_update` does to one output channel of D elements (the stochastic rule draws D
numbers per seen row, in memory order): rows of unseen tokens are not read, written or drawn for.
Reordering off / buffered mode: `embedding_wgrad_f32` writes the dense sums [V, 1, 1, D] (zero rows for
unseen tokens) and the existing `conv2d_weight_update` applies them (every row then draws; a zero delta
leaves an unseen row unchanged under every rule).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinytrain import TinytrainError
from tinytrain.autodiff.registry import register_forward, register_gradient
from tinytrain.codegen.emitters import RULES, EmitContext, call, emitter
from tinytrain.ir import Graph, Op
from tinytrain.kernels.rng import Xorshift32
from tinytrain.ops.conv2d.update import conv2d_weight_update
from tinytrain.program import Step, Storage

if TYPE_CHECKING:
    from tinytrain.compiler import Builder

KIND = "embedding"
F32 = np.float32
#: the numpy reference kernels of this module (registry.KERNELS)
KERNELS = frozenset({"embedding_s8", "embedding_wgrad_update", "embedding_wgrad_f32"})


# ---- IR shape rule ---------------------------------------------------------------------------------------
def out_shape(graph: Graph, op: Op) -> tuple[int, int, int]:
    c, h, t = graph.tensors[op.inputs[0]].shape
    w = op.params["weight"]
    if (c, h) != (1, 1):
        raise TinytrainError(
            f"layer {op.name!r}: an embedding reads a window of token ids (1, 1, T), got {(c, h, t)}"
        )
    if w.ndim != 2 or w.dtype != np.int8 or not 1 <= w.shape[0] <= 127:
        raise TinytrainError(
            f"layer {op.name!r}: table must be int8 [V, D] with V <= 127 (int8 ids), got {w.dtype}{w.shape}"
        )
    return (int(w.shape[1]), 1, int(t))


def num_params(op: Op) -> int:
    return int(op.params["weight"].size)


# ---- numpy reference kernels (the spec of the C twins) -----------------------------------------------
def _ids(ids: np.ndarray, rows: int) -> np.ndarray:
    return np.clip(np.asarray(ids).reshape(-1).astype(np.int32), 0, rows - 1)


def embedding_s8(ids: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ids s8 [1, T, 1] (any shape of T ids), w s8 [V, D] -> y s8 [1, T, D]."""
    idx = _ids(ids, w.shape[0])
    return np.ascontiguousarray(w[idx]).reshape(1, idx.size, w.shape[1])


def _row_sums(g: np.ndarray, idx: np.ndarray, v: int) -> np.ndarray:
    s = np.zeros(g.shape[1], F32)
    for t in np.flatnonzero(idx == v):  # t ascending, float32 from +0 (the C loop's order)
        s += g[t]
    return s


def embedding_wgrad_update(
    g: np.ndarray,
    ids: np.ndarray,
    w: np.ndarray,
    q: np.ndarray,
    neg_lr: float,
    rule: str = "nearest",
    rng: Xorshift32 | None = None,
    shadow: np.ndarray | None = None,
) -> None:
    """Sparse table update in place: g f32 [1, T, D] (dL/d real output), ids s8 [1, T, 1], w s8 [V, D],
    q f32[V]; shadow f32 [V, D] for rule "shadow". Only the rows of ids present in the window change."""
    rows, d = w.shape
    g2 = np.asarray(g, F32).reshape(-1, d)
    idx = _ids(ids, rows)
    for v in np.unique(idx):  # ascending
        s = _row_sums(g2, idx, int(v)).reshape(1, 1, 1, d)
        sh = None if shadow is None else shadow.reshape(rows, d)[v : v + 1]
        conv2d_weight_update(s, w[v : v + 1], d, q[v : v + 1], neg_lr, rule, rng, sh)


def embedding_wgrad_f32(g: np.ndarray, ids: np.ndarray, rows: int) -> np.ndarray:
    """The dense gradient sums s f32 [V, 1, 1, D] (the split path): row v as in `embedding_wgrad_update`, zero
    for tokens not in the window."""
    g2 = np.asarray(g, F32).reshape(len(np.asarray(ids).reshape(-1)), -1)
    idx = _ids(ids, rows)
    s = np.zeros((rows, 1, 1, g2.shape[1]), F32)
    for v in np.unique(idx):
        s[v, 0, 0] = _row_sums(g2, idx, int(v))
    return s


def reference(graph: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    return embedding_s8(ins[0], op.params["weight"])


# ---- lowering: forward and gradient rules ------------------------------------------------------------
def params(b: Builder, op: Op) -> dict[str, str]:
    """Buffers: the table (SRAM when trained), its QAS table q f32[V] and the shadow copy (rule "shadow")."""
    if op.name in b._params:
        return b._params[op.name]
    w = np.ascontiguousarray(op.params["weight"], np.int8)
    trained = op.name in b.scheme.weights
    out = {
        "w": b.buffer(
            f"w:{op.name}",
            "s8",
            w.shape,
            Storage.SRAM if trained else Storage.FLASH,
            "weight",
            op.name,
            w.copy(),
        )
    }
    if trained:
        s = float(op.attrs["scale"])
        q = np.full(w.shape[0], 1.0 / s if b.options.qas else s, np.float64)
        out["q"] = b.buffer(f"q:{op.name}", "f32", q.shape, Storage.FLASH, "table", op.name, q.astype(F32))
        if b.options.update_rule == "shadow":
            sh = w.astype(F32)
            out["shadow"] = b.buffer(
                f"shadow:{op.name}", "f32", sh.shape, Storage.SRAM, "shadow", op.name, sh
            )
    b._params[op.name] = out
    return out


@register_forward(KIND, clamped=False)
def forward(b: Builder, op: Op) -> None:
    p = params(b, op)
    b.emit(
        "embedding_s8", {"ids": b.act(op.inputs[0]), "w": p["w"]}, {"y": b.def_act(op.output)}, {}, op.name
    )


@register_gradient(KIND)
def gradient(b: Builder, op: Op, g: str) -> None:
    """No input gradient (token ids); the sparse table update when the scheme trains the table."""
    if op.name not in b.scheme.weights:
        return
    p = params(b, op)
    ids = b.saved_input(op)
    upd_in = {"w": p["w"], "q": p["q"]}
    upd_out = {"w": p["w"]}
    if "shadow" in p:
        upd_in["shadow"] = upd_out["shadow"] = p["shadow"]
    rt = b._runtime_update_attrs()
    if b.options.reorder and not b.options.buffered:
        b.emit("embedding_wgrad_update", {"g": g, "ids": ids, **upd_in}, upd_out, rt, op.name, "update")
        return
    rows, d = op.params["weight"].shape
    s = b.buffer(f"wgrad:{op.name}", "f32", (rows, 1, 1, d), Storage.ARENA, "grad", op.name)
    b.wgrad_buffers[op.name] = s
    b.emit("embedding_wgrad_f32", {"g": g, "ids": ids}, {"s": s}, {"rows": int(rows)}, op.name, "backward")
    b._split_update(
        Step("conv2d_weight_update", {"s": s, **upd_in}, upd_out, {"k_in": int(d), **rt}, op.name, "update"),
        "w",
    )


# ---- C emitters (firmware/runtime/ops/embedding.c) ------------------------------------------------------
@emitter("embedding_s8")
def _emit_fwd(s: Step, c: EmitContext) -> str:
    rows, d = c.shape(s, "w")
    return call("embedding_s8", c.buf(s, "ids"), c.size(s, "ids"), c.buf(s, "w"), rows, d, c.out(s))


@emitter("embedding_wgrad_update")
def _emit_update(s: Step, c: EmitContext) -> str:
    rows, d = c.shape(s, "w")
    rule = str(s.attrs.get("rule", c.program.update_rule))
    if rule not in RULES:
        raise TinytrainError(f"step {s.kernel} (layer {s.layer!r}): unknown update rule {rule!r}")
    rng = "0"
    if rule == "stochastic":
        c.uses_rng = True
        rng = "&tt_rng_state"
    return call(
        "embedding_wgrad_update",
        c.buf(s, "g"),
        c.buf(s, "ids"),
        c.size(s, "ids"),
        c.buf(s, "w"),
        rows,
        d,
        c.buf(s, "q"),
        c.attr(s, "neg_lr"),
        RULES[rule],
        rng,
        c.opt(s, "shadow"),
    )


@emitter("embedding_wgrad_f32")
def _emit_wgrad(s: Step, c: EmitContext) -> str:
    rows, _, _, d = c.shape(s, "s")
    return call("embedding_wgrad_f32", c.buf(s, "g"), c.buf(s, "ids"), c.size(s, "ids"), rows, d, c.out(s))
