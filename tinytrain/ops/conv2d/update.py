"""conv2d weight-gradient + QAS-SGD update kernels (numpy; C twins firmware/runtime/ops/tt_conv2d_update.c),
docs/numerics.md "Weight gradient sums", "Update".

Fused (`*_wgrad_update`, `bias_grad_update`): the gradient sums `S` of the updated elements in the contract's
order, then the update applied to the int8 weights **in place** (and the float32 shadow, rule "shadow"); the
stochastic rule draws from the shared `Xorshift32` once per updated element in device-layout memory order.
Updated elements: the first `k_in` input channels of every output channel (regular conv), or the first `k_in`
channels (depthwise).

Split (operator reordering off, momentum, mini-batches): the same sums (`*_wgrad_f32`, `bias_grad_f32`) and
the same update from them (`*_weight_update`, `bias_update`), so a program trains bit-identically either way.
"""

from __future__ import annotations

import numpy as np

from tinytrain.kernels.fma import mac_into
from tinytrain.kernels.requant import out_size
from tinytrain.kernels.rng import Xorshift32
from tinytrain.kernels.update import apply_rule, check_shadow, step_factors

F32 = np.float32


def conv2d_wgrad_update(
    g: np.ndarray,
    x: np.ndarray,
    x_zero: int,
    w: np.ndarray,
    k_in: int,
    q: np.ndarray,
    neg_lr: float,
    rule: str = "nearest",
    rng: Xorshift32 | None = None,
    shadow: np.ndarray | None = None,
    stride: int = 1,
    pad: int = 0,
) -> None:
    """Weight gradient of a regular conv and its update, in place.

    g f32[Ho, Wo, Co] (1x1: any [..., Co]); x s8 [H, W, Cx] saved input, Cx >= k_in (only the first k_in
    channels are read); w s8 [Co, kh, kw, Ci] or [Co, Ci] (updated in place); q f32[Co]; shadow f32 with
    Co*kh*kw*k_in elements (layout [Co, kh, kw, k_in]) for rule "shadow".
    `S[o,kh,kw,i] = Σ_{(oh,ow) raster asc} g[oh,ow,o] * f32(x[ih,iw,i] - x_zero)` (padded taps add nothing).
    """
    g = np.asarray(g, F32)
    co = g.shape[-1]
    w4 = w.reshape(co, 1, 1, -1) if w.ndim == 2 else w
    _, kh, kw, _ = w4.shape
    k_in = int(k_in)
    x = np.asarray(x)
    if x.ndim == 1:
        x = x.reshape(1, 1, -1)
    check_shadow(shadow, co * kh * kw * k_in)
    xf = (x[..., :k_in].astype(np.int32) - int(x_zero)).astype(F32)
    if kh == 1 and kw == 1 and stride == 1 and pad == 0:
        g2 = g.reshape(-1, co)
        x2 = xf.reshape(-1, k_in)
        if g2.shape[0] != x2.shape[0]:
            raise ValueError(f"g has {g2.shape[0]} positions, x has {x2.shape[0]}")
        s = np.zeros((co, k_in), F32)
        tmp = np.empty_like(s)
        for p in range(g2.shape[0]):
            mac_into(s, g2[p, :, None], x2[p, None, :], tmp)
        s = s.reshape(co, 1, 1, k_in)
    else:
        h, wd = x.shape[0], x.shape[1]
        ho, wo = out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad)
        g3 = g.reshape(ho, wo, co)
        hp = max(h + 2 * pad, (ho - 1) * stride + kh)
        wp = max(wd + 2 * pad, (wo - 1) * stride + kw)
        xp = np.zeros((hp, wp, k_in), F32)
        xp[pad : pad + h, pad : pad + wd] = xf
        s = np.zeros((co, kh, kw, k_in), F32)
        tmp = np.empty_like(s)
        for oh in range(ho):
            for ow in range(wo):
                patch = xp[oh * stride : oh * stride + kh, ow * stride : ow * stride + kw]
                mac_into(s, g3[oh, ow, :, None, None, None], patch[None], tmp)
    delta = s * step_factors(q, neg_lr)[:, None, None, None]
    w4[..., :k_in] = apply_rule(w4[..., :k_in], delta, rule, rng, shadow)


def dwconv2d_wgrad_update(
    g: np.ndarray,
    x: np.ndarray,
    x_zero: int,
    w: np.ndarray,
    k_in: int,
    q: np.ndarray,
    neg_lr: float,
    rule: str = "nearest",
    rng: Xorshift32 | None = None,
    shadow: np.ndarray | None = None,
    stride: int = 1,
    pad: int = 0,
) -> None:
    """Weight gradient of a depthwise conv and its update, in place.

    g f32[Ho, Wo, C]; x s8 [H, W, Cx] saved input, Cx >= k_in; w s8 [kh, kw, C] (updated in place);
    q f32[C]; shadow f32 with kh*kw*k_in elements (layout [kh, kw, k_in]).
    `S[kh,kw,c] = Σ_{(oh,ow) raster asc} g[oh,ow,c] * f32(x[ih,iw,c] - x_zero)`, c < k_in.
    """
    g = np.asarray(g, F32)
    ho, wo, _ = g.shape
    kh, kw, _ = w.shape
    k_in = int(k_in)
    x = np.asarray(x)
    h, wd = x.shape[0], x.shape[1]
    check_shadow(shadow, kh * kw * k_in)
    xf = (x[..., :k_in].astype(np.int32) - int(x_zero)).astype(F32)
    hp = max(h + 2 * pad, (ho - 1) * stride + kh)
    wp = max(wd + 2 * pad, (wo - 1) * stride + kw)
    xp = np.zeros((hp, wp, k_in), F32)
    xp[pad : pad + h, pad : pad + wd] = xf
    gk = g[..., :k_in]
    s = np.zeros((kh, kw, k_in), F32)
    tmp = np.empty_like(s)
    for oh in range(ho):
        for ow in range(wo):
            mac_into(s, gk[oh, ow], xp[oh * stride : oh * stride + kh, ow * stride : ow * stride + kw], tmp)
    delta = s * step_factors(q, neg_lr)[:k_in]
    w[..., :k_in] = apply_rule(w[..., :k_in], delta, rule, rng, shadow)


def bias_grad_update(g: np.ndarray, bias: np.ndarray, qb: np.ndarray, neg_lr: float) -> None:
    """Bias gradient `B[o] = Σ_{p asc} g[p,o]` and its update, in place on int32 `bias`.

    `b = sat32(b + rne(clamp(B * kb[o], ±2^22)))` with `kb[o] = neg_lr * qb[o]` (always round-to-nearest).
    """
    g = np.asarray(g, F32)
    co = bias.shape[0]
    g2 = g.reshape(-1, co)
    b = np.zeros(co, F32)
    for p in range(g2.shape[0]):
        b += g2[p]
    lim = F32(4194304.0)
    step = np.rint(np.clip(b * step_factors(qb, neg_lr), -lim, lim)).astype(np.int64)
    bias[...] = np.clip(bias.astype(np.int64) + step, -(2**31), 2**31 - 1).astype(np.int32)


# ---- split (reorder off, buffered mode) ----


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
    w4[..., :k_in] = apply_rule(w4[..., :k_in], delta, rule, rng, shadow)


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
    w[..., :k_in] = apply_rule(w[..., :k_in], delta, rule, rng, shadow)


def bias_update(s: np.ndarray, bias: np.ndarray, qb: np.ndarray, neg_lr: float) -> None:
    """Bias update from its gradient B = s f32[Co], in place on int32 `bias` (always round-to-nearest):
    `b = sat32(b + rne(clamp(B * kb[o], ±2^22)))`, `kb[o] = neg_lr * qb[o]`."""
    lim = F32(4194304.0)
    step = np.rint(np.clip(np.asarray(s, F32) * step_factors(qb, neg_lr), -lim, lim)).astype(np.int64)
    bias[...] = np.clip(bias.astype(np.int64) + step, -(2**31), 2**31 - 1).astype(np.int32)
