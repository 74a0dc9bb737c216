"""The C emitters of the conv2d kernels: a Step's named arguments in the order of the C signature
(firmware/runtime/tt_kernels.h, tt_memory_ops.h; tinytrain/signatures.py checks every call)."""

from __future__ import annotations

import numpy as np

from tinytrain import TinytrainError
from tinytrain.codegen.emitters import RULES, EmitContext, call, emitter, hwc, update_tail
from tinytrain.program import Step


@emitter("conv2d_s8")
def _conv2d_s8(s: Step, c: EmitContext) -> str:
    h, w, ci = hwc(c.shape(s, "x"))
    ws = c.shape(s, "w")
    co, kh, kw = (ws[0], 1, 1) if len(ws) == 2 else ws[:3]
    return call(
        "conv2d_s8",
        c.buf(s, "x"),
        h,
        w,
        ci,
        c.buf(s, "w"),
        co,
        kh,
        kw,
        c.buf(s, "bias"),
        c.buf(s, "m"),
        c.attr(s, "x_zero"),
        c.attr(s, "y_zero"),
        c.attr(s, "stride", 1),
        c.attr(s, "pad", 0),
        c.out(s),
    )


@emitter("dwconv2d_s8")
def _dwconv2d_s8(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc(c.shape(s, "x"))
    kh, kw, _ = c.shape(s, "w")
    return call(
        "dwconv2d_s8",
        c.buf(s, "x"),
        h,
        w,
        ch,
        c.buf(s, "w"),
        kh,
        kw,
        c.buf(s, "bias"),
        c.buf(s, "m"),
        c.attr(s, "x_zero"),
        c.attr(s, "y_zero"),
        c.attr(s, "stride", 1),
        c.attr(s, "pad", 0),
        c.out(s),
    )


@emitter("conv2d_bwd_input_f32")
def _conv2d_bwd_input_f32(s: Step, c: EmitContext) -> str:
    gs, ws = c.shape(s, "g"), c.shape(s, "w")
    co, ci = gs[-1], ws[-1]
    return call(
        "conv2d_bwd_input_f32",
        c.buf(s, "g"),
        c.size(s, "g") // co,
        co,
        c.buf(s, "w"),
        ci,
        c.buf(s, "s_w"),
        c.out(s),
    )


@emitter("dwconv2d_bwd_input_f32")
def _dwconv2d_bwd_input_f32(s: Step, c: EmitContext) -> str:
    ho, wo, ch = hwc(c.shape(s, "g"))
    kh, kw, _ = c.shape(s, "w")
    return call(
        "dwconv2d_bwd_input_f32",
        c.buf(s, "g"),
        ho,
        wo,
        ch,
        c.buf(s, "w"),
        kh,
        kw,
        c.buf(s, "s_w"),
        c.attr(s, "in_h"),
        c.attr(s, "in_w"),
        c.attr(s, "stride", 1),
        c.attr(s, "pad", 0),
        c.out(s),
    )


def _wgrad_update_call(kernel: str, s: Step, c: EmitContext, weight_dims: tuple[int, ...]) -> str:
    """The fused weight-gradient + update kernels share one C signature but the weight's dimensions."""
    h, w, xc = hwc(c.shape(s, "x"))
    rule, rng, shadow = update_tail(s, c)
    return call(
        kernel,
        c.buf(s, "g"),
        c.buf(s, "x"),
        h,
        w,
        xc,
        c.attr(s, "x_zero"),
        c.buf(s, "w"),
        *weight_dims,
        c.attr(s, "k_in"),
        c.buf(s, "q"),
        c.attr(s, "neg_lr"),
        rule,
        rng,
        shadow,
        c.attr(s, "stride", 1),
        c.attr(s, "pad", 0),
    )


@emitter("conv2d_wgrad_update")
def _conv2d_wgrad_update(s: Step, c: EmitContext) -> str:
    ws = c.shape(s, "w")
    dims = (ws[0], 1, 1, ws[1]) if len(ws) == 2 else tuple(ws)  # co, kh, kw, ci
    return _wgrad_update_call("conv2d_wgrad_update", s, c, dims)


@emitter("dwconv2d_wgrad_update")
def _dwconv2d_wgrad_update(s: Step, c: EmitContext) -> str:
    return _wgrad_update_call("dwconv2d_wgrad_update", s, c, tuple(c.shape(s, "w")))  # kh, kw, c


@emitter("bias_grad_update")
def _bias_grad_update(s: Step, c: EmitContext) -> str:
    co = c.size(s, "bias")
    return call(
        "bias_grad_update",
        c.buf(s, "g"),
        c.size(s, "g") // co,
        co,
        c.buf(s, "bias"),
        c.buf(s, "qb"),
        c.attr(s, "neg_lr"),
    )


# ---- the split weight-gradient and update kernels (reorder off, momentum, mini-batches; tt_kernels.h) ---


@emitter("conv2d_wgrad_f32")
def _conv2d_wgrad_f32(s: Step, c: EmitContext) -> str:
    h, w, xc = hwc(c.shape(s, "x"))
    return call(
        "conv2d_wgrad_f32",
        c.buf(s, "g"),
        c.buf(s, "x"),
        h,
        w,
        xc,
        c.attr(s, "x_zero"),
        c.shape(s, "g")[-1],
        c.attr(s, "kernel", 1),
        c.attr(s, "k_in"),
        c.attr(s, "stride", 1),
        c.attr(s, "pad", 0),
        c.out(s),
    )


@emitter("dwconv2d_wgrad_f32")
def _dwconv2d_wgrad_f32(s: Step, c: EmitContext) -> str:
    h, w, xc = hwc(c.shape(s, "x"))
    return call(
        "dwconv2d_wgrad_f32",
        c.buf(s, "g"),
        c.buf(s, "x"),
        h,
        w,
        xc,
        c.attr(s, "x_zero"),
        c.shape(s, "g")[-1],
        c.attr(s, "kernel", 3),
        c.attr(s, "k_in"),
        c.attr(s, "stride", 1),
        c.attr(s, "pad", 1),
        c.out(s),
    )


@emitter("bias_grad_f32")
def _bias_grad_f32(s: Step, c: EmitContext) -> str:
    co = c.size(s, "s")
    return call("bias_grad_f32", c.buf(s, "g"), c.size(s, "g") // co, co, c.out(s))


@emitter("conv2d_weight_update")
def _conv2d_weight_update(s: Step, c: EmitContext) -> str:
    ws = c.shape(s, "w")
    co, kh, kw, ci = (ws[0], 1, 1, ws[1]) if len(ws) == 2 else ws
    rule, rng, shadow = update_tail(s, c)
    return call(
        "conv2d_weight_update",
        c.buf(s, "s"),
        c.buf(s, "w"),
        co,
        kh,
        kw,
        ci,
        c.attr(s, "k_in"),
        c.buf(s, "q"),
        c.attr(s, "neg_lr"),
        rule,
        rng,
        shadow,
    )


@emitter("dwconv2d_weight_update")
def _dwconv2d_weight_update(s: Step, c: EmitContext) -> str:
    kh, kw, ch = c.shape(s, "w")
    rule, rng, shadow = update_tail(s, c)
    return call(
        "dwconv2d_weight_update",
        c.buf(s, "s"),
        c.buf(s, "w"),
        kh,
        kw,
        ch,
        c.attr(s, "k_in"),
        c.buf(s, "q"),
        c.attr(s, "neg_lr"),
        rule,
        rng,
        shadow,
    )


@emitter("bias_update")
def _bias_update(s: Step, c: EmitContext) -> str:
    return call(
        "bias_update", c.buf(s, "s"), c.size(s, "bias"), c.buf(s, "bias"), c.buf(s, "qb"), c.attr(s, "neg_lr")
    )


@emitter("conv2d_split_s8")
def _conv2d_split_s8(s: Step, c: EmitContext) -> str:
    h, w, ci = hwc(c.shape(s, "x"))
    ws = c.shape(s, "w")
    co, kh, kw, k = (ws[0], 1, 1, ws[1]) if len(ws) == 2 else ws
    return call(
        "conv2d_split_s8",
        c.buf(s, "x"),
        h,
        w,
        ci,
        c.buf(s, "w"),
        c.buf(s, "w_rest"),
        co,
        kh,
        kw,
        k,
        c.buf(s, "bias"),
        c.buf(s, "m"),
        c.attr(s, "x_zero"),
        c.attr(s, "y_zero"),
        c.attr(s, "stride", 1),
        c.attr(s, "pad", 0),
        c.out(s),
    )


@emitter("conv2d_split_bwd_input_f32")
def _conv2d_split_bwd_input_f32(s: Step, c: EmitContext) -> str:
    gs, ws, ds = c.shape(s, "g"), c.shape(s, "w"), c.shape(s, "dx")
    co = gs[-1]
    return call(
        "conv2d_split_bwd_input_f32",
        c.buf(s, "g"),
        c.size(s, "g") // co,
        co,
        c.buf(s, "w"),
        c.buf(s, "w_rest"),
        ds[-1],
        ws[-1],
        c.buf(s, "s_w"),
        c.out(s),
    )


@emitter("dwconv2d_bwd_input_inplace_f32")
def _dwconv2d_bwd_input_inplace_f32(s: Step, c: EmitContext) -> str:
    ho, wo, ch = hwc(c.shape(s, "g"))
    kh, kw, _ = c.shape(s, "w")
    return call(
        "dwconv2d_bwd_input_inplace_f32",
        c.buf(s, "g"),
        ho,
        wo,
        ch,
        c.buf(s, "w"),
        kh,
        kw,
        c.buf(s, "s_w"),
        c.attr(s, "pad", 0),
        f"(float *){c.scratch(s)}",
    )


@emitter("dwconv2d_s8_inplace")
def _dwconv2d_s8_inplace(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc(c.shape(s, "x"))
    kh, kw, _ = c.shape(s, "w")
    return call(
        "dwconv2d_s8_inplace",
        c.buf(s, "x"),
        h,
        w,
        ch,
        c.buf(s, "w"),
        kh,
        kw,
        c.buf(s, "bias"),
        c.buf(s, "m"),
        c.attr(s, "x_zero"),
        c.attr(s, "y_zero"),
        c.attr(s, "pad", 0),
        f"(int8_t *){c.scratch(s)}",
    )


@emitter("ir_block_bwd_f32")
def _ir_block_bwd_f32(s: Step, c: EmitContext) -> str:
    ho, wo, co2 = hwc(c.shape(s, "g"))
    kh, kw, e = c.shape(s, "w_dw")
    f: dict[str, object] = dict(g=c.buf(s, "g"), ho=ho, wo=wo, co2=co2, e=e, w2=c.buf(s, "w2"))
    f.update(s_w2=c.buf(s, "s_w2"), bits_dw=c.opt(s, "bits_dw"), w_dw=c.buf(s, "w_dw"))
    f.update(s_w_dw=c.buf(s, "s_w_dw"), kh=kh, kw=kw, stride=c.attr(s, "stride", 1), pad=c.attr(s, "pad", 0))
    f.update(h=c.attr(s, "in_h"), w=c.attr(s, "in_w"), b_dw=c.opt(s, "b_dw"), qb_dw=c.opt(s, "qb_dw"))
    f["bits_pw1"] = c.opt(s, "bits_pw1")
    if c.has(s, "w1"):
        k1 = int(np.prod(c.shape(s, "w1")[1:]))
        ci = k1 + (int(np.prod(c.shape(s, "w1_rest")[1:])) if c.has(s, "w1_rest") else 0)
        f.update(w1=f"(int8_t *){c.buf(s, 'w1')}", w1_rest=c.opt(s, "w1_rest"), ci=ci, k1=k1)
    f.update(s_w1=c.opt(s, "s_w1"), dx=c.opt(s, "dx"), b1=c.opt(s, "b1"), qb1=c.opt(s, "qb1"))
    if c.has(s, "x1"):
        rule = str(s.attrs.get("rule", c.program.update_rule))
        if rule not in RULES or (rule == "shadow") != c.has(s, "shadow1"):
            raise TinytrainError(f"step {s.kernel} (layer {s.layer!r}): bad rule {rule!r} / shadow buffer")
        if rule == "stochastic":
            c.uses_rng = True
            f["rng"] = "&tt_rng_state"
        f.update(x1=c.buf(s, "x1"), x1_c=c.shape(s, "x1")[-1], x_zero=c.attr(s, "x_zero"))
        f.update(k_in=c.attr(s, "k_in"), q1=c.buf(s, "q1"), shadow1=c.opt(s, "shadow1"), rule=RULES[rule])
    if c.has(s, "b_dw") or c.has(s, "b1") or c.has(s, "x1"):
        f["neg_lr"] = c.attr(s, "neg_lr")
    init = ", ".join(f".{k} = {v}" for k, v in f.items())
    return f"tt_ir_block_bwd_f32(&(const tt_ir_block_bwd_args){{{init}}}, (float *){c.scratch(s)});"
