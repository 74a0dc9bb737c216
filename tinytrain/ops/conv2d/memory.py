"""conv2d memory levers (docs/memory.md), numpy; C twins firmware/runtime/ops/tt_conv2d_split.c,
tt_conv2d_inplace.c, tt_ir_block_bwd.c. Each computes exactly what the plain conv2d kernels compute (tested
bit-identical). A kernel that needs arena scratch has a `<kernel>_scratch_bytes` query the planner calls
(C: `tt_<kernel>_scratch_bytes` in tt_memory_ops.h)."""

from __future__ import annotations

import numpy as np

from tinytrain.kernels.backward import apply_mask_f32
from tinytrain.kernels.requant import out_size
from tinytrain.kernels.rng import Xorshift32
from tinytrain.ops.conv2d.backward import conv2d_bwd_input_f32, dwconv2d_bwd_input_f32
from tinytrain.ops.conv2d.forward import conv2d_s8, dwconv2d_s8
from tinytrain.ops.conv2d.update import bias_grad_update, conv2d_wgrad_update

# split trainable weights (CompileOptions(split_weights=True)) ---------------------------------------------
# A regular conv trained on its first k < Ci input channels keeps only w[..., :k] in SRAM (`w`) and the
# frozen rest w[..., k:] in flash (`w_rest`). These kernels are defined as the unsplit kernels applied to
# the concatenation `concat(w, w_rest, axis=-1)`; a C implementation reads input channel i from `w` when
# i < k (row stride k) and from `w_rest` otherwise (row stride Ci - k). Every sum keeps its order, so the
# results are bit-identical to the unsplit program.


def conv2d_split_s8(
    x: np.ndarray,
    w: np.ndarray,
    w_rest: np.ndarray,
    bias: np.ndarray,
    m: np.ndarray,
    x_zero: int,
    y_zero: int,
    stride: int = 1,
    pad: int = 0,
) -> np.ndarray:
    """`conv2d_s8(x, concat(w, w_rest, axis=-1), bias, m, ...)`: w s8 [Co, kh, kw, k], w_rest s8
    [Co, kh, kw, Ci - k], x [H, W, Ci] -> y s8 [Ho, Wo, Co]."""
    return conv2d_s8(x, np.concatenate([w, w_rest], axis=-1), bias, m, x_zero, y_zero, stride, pad)


def conv2d_split_bwd_input_f32(
    g: np.ndarray, w: np.ndarray, w_rest: np.ndarray, s_w: np.ndarray
) -> np.ndarray:
    """`conv2d_bwd_input_f32(g, concat(w, w_rest, axis=-1), s_w)` for a 1x1 stride-1 conv: dx f32[..., Ci]
    with `dx[p,i] = Σ_{o asc} (g[p,o]*s_w[o]) * f32(W[o,i])`, W[o,i] = w[o,i] if i < k else w_rest[o,i-k]."""
    co = np.asarray(g).shape[-1]
    full = np.concatenate([np.asarray(w).reshape(co, -1), np.asarray(w_rest).reshape(co, -1)], axis=-1)
    return conv2d_bwd_input_f32(g, full, s_w)


# in-place depthwise input gradient (CompileOptions(inplace_dw_grad=True)) --------------------------------


def dwconv2d_bwd_input_inplace_f32(
    g: np.ndarray, w: np.ndarray, s_w: np.ndarray, in_h: int, in_w: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """`dwconv2d_bwd_input_f32` for stride 1 (dx has g's shape), whose C twin writes dx over g: channel by
    channel, the plane g[:, :, c] is copied to a float32 scratch plane (Ho*Wo floats) and dx[:, :, c] computed
    from it. Same sums in the same order: bit-identical to the out-of-place kernel."""
    if int(stride) != 1:
        raise ValueError("the in-place depthwise input gradient needs stride 1")
    return dwconv2d_bwd_input_f32(g, w, s_w, in_h, in_w, stride, pad)


def dwconv2d_bwd_input_inplace_f32_scratch_bytes(g: tuple[int, ...]) -> int:
    """Scratch of `dwconv2d_bwd_input_inplace_f32`: one float32 channel plane of g (C:
    tt_dwconv2d_bwd_input_inplace_f32_scratch_bytes)."""
    return 4 * int(g[0]) * int(g[1])


# in-place depthwise forward (CompileOptions(inplace_dw_forward=True)) -------------------------------------


def dwconv2d_s8_inplace(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    m: np.ndarray,
    x_zero: int,
    y_zero: int,
    stride: int = 1,
    pad: int = 0,
) -> np.ndarray:
    """`dwconv2d_s8` for a stride-1 depthwise conv whose output has its input's shape (kh = kw = 2·pad + 1),
    whose C twin writes y over x: channel by channel, the plane x[:, :, c] (H·W bytes, strided by C) is copied
    to a scratch plane and y[:, :, c] computed from it and stored at its HWC positions, which hold only
    elements of channel c, already copied. Integer sums: bit-identical to the out-of-place kernel."""
    h, wd, _ = np.asarray(x).shape
    kh, kw, _ = np.asarray(w).shape
    if int(stride) != 1 or out_size(h, kh, 1, pad) != h or out_size(wd, kw, 1, pad) != wd:
        raise ValueError("the in-place depthwise conv needs stride 1 and an output of the input's shape")
    return dwconv2d_s8(x, w, bias, m, x_zero, y_zero, 1, pad)


def dwconv2d_s8_inplace_scratch_bytes(x: tuple[int, ...]) -> int:
    """Scratch of `dwconv2d_s8_inplace`: one int8 channel plane of x, H·W bytes (C:
    tt_dwconv2d_s8_inplace_scratch_bytes)."""
    return int(x[0]) * int(x[1])


# channel-wise fused inverted-residual backward (CompileOptions(fused_block_backward=True)) ----------------
# For a block pw1 (1x1) -> dw (depthwise, any stride) -> pw2 (1x1) whose dw and pw2 weights are frozen, one
# kernel runs, for each expanded channel e ascending: d_dw[:, e] = pw2 input gradient of channel e (a sum
# over the pw2 outputs o ascending), its dw mask, the dw bias update of e, the dw input gradient of e, its
# pw1 mask, then the term `(g1[p, e] * s_w1[e]) * W1[e, i]` added to the block input gradient dx[p, i]
# (from +0.0f, e ascending: the sum order of conv2d_bwd_input_f32, with row e before its update), then the
# pw1 weight-row e update (row e only: the stochastic draws keep memory order) and bias update of e. Only
# two float planes exist (scratch), never the expanded gradients. Every sum keeps the unfused order:
# bit-identical by construction, which this reference shows by running the unfused kernels in order.


def ir_block_bwd_f32(
    g: np.ndarray,
    w2: np.ndarray,
    s_w2: np.ndarray,
    w_dw: np.ndarray,
    s_w_dw: np.ndarray,
    in_h: int,
    in_w: int,
    stride: int = 1,
    pad: int = 0,
    bits_dw: np.ndarray | None = None,
    bits_pw1: np.ndarray | None = None,
    b_dw: np.ndarray | None = None,
    qb_dw: np.ndarray | None = None,
    w1: np.ndarray | None = None,
    w1_rest: np.ndarray | None = None,
    s_w1: np.ndarray | None = None,
    b1: np.ndarray | None = None,
    qb1: np.ndarray | None = None,
    x1: np.ndarray | None = None,
    q1: np.ndarray | None = None,
    shadow1: np.ndarray | None = None,
    x_zero: int = 0,
    k_in: int = 0,
    neg_lr: float = 0.0,
    rule: str = "nearest",
    rng: Xorshift32 | None = None,
) -> tuple[np.ndarray, ...]:
    """The fused backward of one inverted-residual block (see above). g f32[Ho, Wo, Co2] is the (masked) pw2
    output gradient; w2 s8 [Co2, 1, 1, E] or [Co2, E]; w_dw s8 [kh, kw, E]; w1 s8 [E, 1, 1, k] (+ w1_rest
    [E, 1, 1, Ci - k] when split). Optional parts: masks; the dw bias update (b_dw, qb_dw); the block input
    gradient dx f32[in_h, in_w, Ci] (s_w1); the pw1 bias update (b1, qb1); the pw1 weight update (x1, q1,
    [shadow1], x_zero, k_in, rule, [rng]). Returns the outputs in this order: dx (if s_w1 is given), b_dw, b1,
    w1, shadow1 (those updated, in place, as the update kernels)."""
    d = conv2d_bwd_input_f32(g, w2, s_w2)
    if bits_dw is not None:
        d = apply_mask_f32(d, bits_dw)
    if b_dw is not None:
        bias_grad_update(d, b_dw, qb_dw, neg_lr)
    e = dwconv2d_bwd_input_f32(d, w_dw, s_w_dw, in_h, in_w, stride, pad)
    if bits_pw1 is not None:
        e = apply_mask_f32(e, bits_pw1)
    out: list[np.ndarray] = []
    if s_w1 is not None:
        full = (
            w1
            if w1_rest is None
            else np.concatenate(
                [np.asarray(w1).reshape(len(w1), -1), np.asarray(w1_rest).reshape(len(w1), -1)], axis=-1
            )
        )
        out.append(conv2d_bwd_input_f32(e, full, s_w1))
    if x1 is not None:
        conv2d_wgrad_update(e, x1, x_zero, w1, k_in, q1, neg_lr, rule, rng, shadow1, 1, 0)
    if b1 is not None:
        bias_grad_update(e, b1, qb1, neg_lr)
    for a in (b_dw, b1):
        if a is not None:
            out.append(a)
    if x1 is not None:
        out.append(w1)
        if shadow1 is not None:
            out.append(shadow1)
    return tuple(out)


def ir_block_bwd_f32_scratch_bytes(g: tuple[int, ...], in_h: int, in_w: int) -> int:
    """Scratch of `ir_block_bwd_f32`: two float planes of the dw output and two of its input (the C kernel
    runs the expanded channels in pairs; C: tt_ir_block_bwd_f32_scratch_bytes)."""
    return 8 * (int(g[0]) * int(g[1]) + int(in_h) * int(in_w))
