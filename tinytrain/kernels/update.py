"""Weight-gradient + QAS-SGD update kernels, fused (docs/numerics.md, "Weight gradient sums", "Update").

A kernel computes the gradient sums `S` of the updated elements in the contract's order and applies
the update to the int8 weights **in place** (and to the float32 shadow copy, for rule "shadow");
the stochastic rule draws from the shared `Xorshift32` once per updated element in device-layout
memory order. Nothing is returned. Updated elements: the first `k_in` input channels of every
output channel (regular conv), or the first `k_in` channels (depthwise).
"""

from __future__ import annotations

import numpy as np

from tinytrain.kernels.fma import mac_into
from tinytrain.kernels.forward import out_size
from tinytrain.kernels.rng import Xorshift32

F32 = np.float32
RULES = ("nearest", "stochastic", "shadow")


def step_factors(q: np.ndarray, neg_lr: float) -> np.ndarray:
    """`k[o] = neg_lr * q[o]`, float32 (computed by the device every step)."""
    return F32(neg_lr) * np.asarray(q, F32)


def shadow_init(w: np.ndarray, k_in: int, depthwise: bool = False) -> np.ndarray:
    """The initial float32 shadow copy of the updated elements: `f32(W̃)` of w[..., :k_in]."""
    w = np.asarray(w)
    return np.ascontiguousarray(w[..., : int(k_in)]).astype(F32)


def _apply_rule(
    w_upd: np.ndarray, delta: np.ndarray, rule: str, rng: Xorshift32 | None, shadow: np.ndarray | None
) -> np.ndarray:
    """New int8 values for the updated elements; `w_upd`, `delta` in device memory order."""
    lim = F32(256.0)
    if rule == "nearest":
        step = np.rint(np.clip(delta, -lim, lim)).astype(np.int32)
        return np.clip(w_upd.astype(np.int32) + step, -127, 127).astype(np.int8)
    if rule == "stochastic":
        if rng is None:
            raise ValueError("update rule 'stochastic' needs an rng")
        u = rng.uniform(delta.size).reshape(delta.shape)
        step = np.floor((np.clip(delta, -lim, lim) + u).astype(F32)).astype(np.int32)
        return np.clip(w_upd.astype(np.int32) + step, -127, 127).astype(np.int8)
    if rule == "shadow":
        if shadow is None:
            raise ValueError("update rule 'shadow' needs a shadow array")
        sh = shadow.reshape(delta.shape)
        sh += delta  # float32, in place
        return np.clip(np.rint(np.clip(sh, -lim, lim)).astype(np.int32), -127, 127).astype(np.int8)
    raise ValueError(f"unknown update rule {rule!r}; expected one of {RULES}")


def _check_shadow(shadow: np.ndarray | None, n: int) -> None:
    if shadow is not None and (shadow.dtype != F32 or shadow.size != n or not shadow.flags.c_contiguous):
        raise ValueError(
            f"shadow must be contiguous float32 with {n} elements, got {shadow.dtype}{shadow.shape}"
        )


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
    _check_shadow(shadow, co * kh * kw * k_in)
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
    w4[..., :k_in] = _apply_rule(w4[..., :k_in], delta, rule, rng, shadow)


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
    _check_shadow(shadow, kh * kw * k_in)
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
    w[..., :k_in] = _apply_rule(w[..., :k_in], delta, rule, rng, shadow)


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
