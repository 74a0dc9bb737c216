"""Kernels the compiler needs beyond the fused catalogue: the *split* (unfused) weight-gradient and update
kernels used when operator reordering is switched off (`CompileOptions(reorder=False)`, the ablation
"compute every gradient, then update": gradient buffers live until the end of the backward pass).

Each computes exactly what the fused `*_wgrad_update` / `bias_grad_update` kernels compute, split in two
halves, so a program compiled with or without reordering trains bit-identically (tested):

- the gradient sums `S` (docs/numerics.md "Weight gradient sums"), same order of float32 accumulation;
- the update from `S` (docs/numerics.md "Update"): `delta = S * k[o]`, `k[o] = neg_lr * q[o]`, then the rule.

C twins `tt_<name>` to be written in firmware/runtime/. Inputs are never modified except the updated
weights / bias / shadow / rng state of the `*_update` kernels, which are updated in place (return None).
"""

from __future__ import annotations

import numpy as np

from tinytrain.kernels.backward import conv2d_bwd_input_f32
from tinytrain.kernels.fma import mac_into
from tinytrain.kernels.forward import conv2d_s8, out_size
from tinytrain.kernels.rng import Xorshift32
from tinytrain.kernels.update import _apply_rule, step_factors

F32 = np.float32


def _padded(x: np.ndarray, x_zero: int, k_in: int, hp: int, wp: int, pad: int) -> np.ndarray:
    h, wd = x.shape[0], x.shape[1]
    xp = np.zeros((hp, wp, k_in), F32)
    xp[pad : pad + h, pad : pad + wd] = (x[..., :k_in].astype(np.int32) - int(x_zero)).astype(F32)
    return xp


def conv2d_wgrad_f32(
    g: np.ndarray, x: np.ndarray, x_zero: int, k_in: int, kernel: int = 1, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """Weight-gradient sums of a regular conv: g f32[Ho, Wo, Co] (1x1: any [..., Co]), x s8 [H, W, Cx]
    (Cx >= k_in; the first k_in channels are read) -> S f32[Co, kernel, kernel, k_in].

    `S[o,kh,kw,i] = Σ_{(oh,ow) raster asc, valid} g[oh,ow,o] * f32(x[ih,iw,i] - x_zero)`, each sum a
    sequential float32 accumulation from +0.0f (padded taps add nothing: they are skipped, not added as 0).
    """
    g = np.asarray(g, F32)
    co = g.shape[-1]
    k_in, kernel = int(k_in), int(kernel)
    x = np.asarray(x)
    if x.ndim == 1:
        x = x.reshape(1, 1, -1)
    if kernel == 1 and stride == 1 and pad == 0:
        g2 = g.reshape(-1, co)
        x2 = (x[..., :k_in].astype(np.int32) - int(x_zero)).astype(F32).reshape(-1, k_in)
        s = np.zeros((co, k_in), F32)
        tmp = np.empty_like(s)
        for p in range(g2.shape[0]):
            mac_into(s, g2[p, :, None], x2[p, None, :], tmp)
        return s.reshape(co, 1, 1, k_in)
    h, wd = x.shape[0], x.shape[1]
    ho, wo = out_size(h, kernel, stride, pad), out_size(wd, kernel, stride, pad)
    g3 = g.reshape(ho, wo, co)
    xp = _padded(
        x,
        x_zero,
        k_in,
        max(h + 2 * pad, (ho - 1) * stride + kernel),
        max(wd + 2 * pad, (wo - 1) * stride + kernel),
        pad,
    )
    s = np.zeros((co, kernel, kernel, k_in), F32)
    tmp = np.empty_like(s)
    for oh in range(ho):
        for ow in range(wo):
            patch = xp[oh * stride : oh * stride + kernel, ow * stride : ow * stride + kernel]
            mac_into(s, g3[oh, ow, :, None, None, None], patch[None], tmp)
    return s


def dwconv2d_wgrad_f32(
    g: np.ndarray, x: np.ndarray, x_zero: int, k_in: int, kernel: int = 3, stride: int = 1, pad: int = 1
) -> np.ndarray:
    """Weight-gradient sums of a depthwise conv: g f32[Ho, Wo, C], x s8 [H, W, Cx] (Cx >= k_in)
    -> S f32[kernel, kernel, k_in]:
    `S[kh,kw,c] = Σ_{(oh,ow) raster asc, valid} g[oh,ow,c] * f32(x[ih,iw,c] - x_zero)`, c < k_in,
    sequential float32 accumulation from +0.0f.
    """
    g = np.asarray(g, F32)
    ho, wo, _ = g.shape
    k_in, kernel = int(k_in), int(kernel)
    x = np.asarray(x)
    h, wd = x.shape[0], x.shape[1]
    xp = _padded(
        x,
        x_zero,
        k_in,
        max(h + 2 * pad, (ho - 1) * stride + kernel),
        max(wd + 2 * pad, (wo - 1) * stride + kernel),
        pad,
    )
    gk = g[..., :k_in]
    s = np.zeros((kernel, kernel, k_in), F32)
    tmp = np.empty_like(s)
    for oh in range(ho):
        for ow in range(wo):
            mac_into(
                s,
                gk[oh, ow],
                xp[oh * stride : oh * stride + kernel, ow * stride : ow * stride + kernel],
                tmp,
            )
    return s


def bias_grad_f32(g: np.ndarray) -> np.ndarray:
    """Bias gradient: g f32[..., Co] -> B f32[Co], `B[o] = Σ_{p asc} g[p,o]` (sequential from +0.0f)."""
    g = np.asarray(g, F32)
    g2 = g.reshape(-1, g.shape[-1])
    b = np.zeros(g2.shape[1], F32)
    for p in range(g2.shape[0]):
        b += g2[p]
    return b


def conv2d_weight_update(
    s: np.ndarray,
    w: np.ndarray,
    k_in: int,
    q: np.ndarray,
    neg_lr: float,
    rule: str = "nearest",
    rng: Xorshift32 | None = None,
    shadow: np.ndarray | None = None,
) -> None:
    """QAS-SGD update of a regular conv from its gradient sums, in place.

    s f32[Co, kh, kw, k_in]; w s8 [Co, kh, kw, Ci] (or [Co, Ci] for 1x1), updated on `w[..., :k_in]`;
    `delta[o,...] = s[o,...] * (neg_lr * q[o])` then the update rule (nearest / stochastic with one draw
    per updated element in device memory order / shadow with `shadow` f32[Co, kh, kw, k_in]).
    """
    co = s.shape[0]
    w4 = w.reshape(co, 1, 1, -1) if w.ndim == 2 else w
    k_in = int(k_in)
    delta = np.asarray(s, F32) * step_factors(q, neg_lr)[:, None, None, None]
    w4[..., :k_in] = _apply_rule(w4[..., :k_in], delta, rule, rng, shadow)


def dwconv2d_weight_update(
    s: np.ndarray,
    w: np.ndarray,
    k_in: int,
    q: np.ndarray,
    neg_lr: float,
    rule: str = "nearest",
    rng: Xorshift32 | None = None,
    shadow: np.ndarray | None = None,
) -> None:
    """QAS-SGD update of a depthwise conv from its gradient sums, in place.

    s f32[kh, kw, k_in]; w s8 [kh, kw, C] updated on `w[..., :k_in]`;
    `delta[..., c] = s[..., c] * (neg_lr * q[c])`, then the rule (shadow f32[kh, kw, k_in]).
    """
    k_in = int(k_in)
    delta = np.asarray(s, F32) * step_factors(q, neg_lr)[:k_in]
    w[..., :k_in] = _apply_rule(w[..., :k_in], delta, rule, rng, shadow)


def bias_update(s: np.ndarray, bias: np.ndarray, qb: np.ndarray, neg_lr: float) -> None:
    """Bias update from its gradient B = s f32[Co], in place on int32 `bias` (always round-to-nearest):
    `b = sat32(b + rne(clamp(B * kb[o], ±2^22)))`, `kb[o] = neg_lr * qb[o]`."""
    lim = F32(4194304.0)
    step = np.rint(np.clip(np.asarray(s, F32) * step_factors(qb, neg_lr), -lim, lim)).astype(np.int64)
    bias[...] = np.clip(bias.astype(np.int64) + step, -(2**31), 2**31 - 1).astype(np.int32)


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


# patch-based execution of the first stage (CompileOptions(patch=True)) ------------------------------------
# The stage's ops run tile by tile on small HWC tile buffers with the ordinary kernels and pad = 0: a tile
# of tensor X covers the window [row0, row0 + rows) x [col0, col0 + cols) of X, which may reach outside the
# image; the positions outside hold the consuming conv's `x_zero`, so the unpadded conv over the tile equals
# the padded conv over the whole tensor (bit for bit: integer kernels). Three data-movement kernels:


def _window_mask(rows: int, cols: int, row0: int, col0: int, h: int, w: int) -> np.ndarray:
    r = np.arange(int(row0), int(row0) + int(rows))
    c = np.arange(int(col0), int(col0) + int(cols))
    return ((r >= 0) & (r < int(h)))[:, None] & ((c >= 0) & (c < int(w)))[None, :]


def tile_load_s8(x: np.ndarray, row0: int, col0: int, rows: int, cols: int, fill: int) -> np.ndarray:
    """Window [row0, row0+rows) x [col0, col0+cols) of x s8 [H, W, C] -> t s8 [rows, cols, C]; positions
    outside the image (row0/col0 may be negative, the window may pass H/W) hold `fill`."""
    x = np.asarray(x)
    h, w, c = x.shape
    t = np.full((int(rows), int(cols), c), int(fill), np.int8)
    r_lo, r_hi = max(0, int(row0)), min(h, int(row0) + int(rows))
    c_lo, c_hi = max(0, int(col0)), min(w, int(col0) + int(cols))
    if r_lo < r_hi and c_lo < c_hi:
        t[r_lo - row0 : r_hi - row0, c_lo - col0 : c_hi - col0] = x[r_lo:r_hi, c_lo:c_hi]
    return t


def tile_fill_s8(t: np.ndarray, row0: int, col0: int, h: int, w: int, fill: int) -> np.ndarray:
    """A tile t s8 [rows, cols, C] whose top-left element is position (row0, col0) of an H x W tensor:
    every position outside the tensor set to `fill` (C: in place). Needed between two convs of a tile: a
    conv of the padding is not the next conv's zero point."""
    t = np.array(t, np.int8, copy=True)
    inside = _window_mask(t.shape[0], t.shape[1], row0, col0, h, w)
    t[~inside] = np.int8(fill)
    return t


def tile_store_s8(t: np.ndarray, y: np.ndarray, row0: int, col0: int) -> np.ndarray:
    """y s8 [H, W, C] with the tile t s8 [rows, cols, C] written at (row0, col0) (inside y; C: in place on y,
    which only ever writes the tile's positions)."""
    y = np.array(y, np.int8, copy=True)
    rows, cols = t.shape[0], t.shape[1]
    y[int(row0) : int(row0) + rows, int(col0) : int(col0) + cols] = t
    return y


def tile_store_first_s8(t: np.ndarray, row0: int, col0: int, h: int, w: int) -> np.ndarray:
    """The first tile store into y s8 [h, w, C] (y is not read: its other positions are written by the
    later stores; the reference fills them with 0). Same C function as `tile_store_s8`."""
    y = np.zeros((int(h), int(w), np.asarray(t).shape[2]), np.int8)
    return tile_store_s8(t, y, row0, col0)


# in-place depthwise input gradient (CompileOptions(inplace_dw_grad=True)) --------------------------------


def dwconv2d_bwd_input_inplace_f32(
    g: np.ndarray, w: np.ndarray, s_w: np.ndarray, in_h: int, in_w: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """`dwconv2d_bwd_input_f32` for stride 1 (dx has g's shape), whose C twin writes dx over g: channel by
    channel, the plane g[:, :, c] is copied to a float32 scratch plane (Ho*Wo floats) and dx[:, :, c] computed
    from it. Same sums in the same order: bit-identical to the out-of-place kernel."""
    if int(stride) != 1:
        raise ValueError("the in-place depthwise input gradient needs stride 1")
    from tinytrain.kernels.backward import dwconv2d_bwd_input_f32

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
    from tinytrain.kernels.forward import dwconv2d_s8

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
    from tinytrain.kernels.backward import apply_mask_f32, conv2d_bwd_input_f32, dwconv2d_bwd_input_f32
    from tinytrain.kernels.update import bias_grad_update, conv2d_wgrad_update

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
