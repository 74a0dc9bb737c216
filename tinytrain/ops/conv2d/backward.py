"""conv2d input-gradient kernels (numpy; C twins firmware/runtime/ops/tt_conv2d_bwd.c), docs/numerics.md
"Float backward": every float reduction a sequential float32 accumulation in the contract's order."""

from __future__ import annotations

import numpy as np

from tinytrain.kernels.fma import mac_into

F32 = np.float32


def conv2d_bwd_input_f32(g: np.ndarray, w: np.ndarray, s_w: np.ndarray) -> np.ndarray:
    """Input gradient of a 1x1 conv (stride 1) or the classifier.

    g f32[..., Co] (e.g. [H, W, Co], [P, Co], [Co]), w s8 [Co, 1, 1, Ci] or [Co, Ci], s_w f32[Co]
    -> dx f32[..., Ci]: `t[p,o] = g[p,o]*s_w[o]`, `dx[p,i] = Σ_{o asc} t[p,o]*f32(w[o,i])`.
    """
    g = np.asarray(g, F32)
    co = g.shape[-1]
    wf = np.asarray(w).reshape(co, -1).astype(F32)
    ci = wf.shape[1]
    t = g.reshape(-1, co) * np.asarray(s_w, F32)
    dx = np.zeros((t.shape[0], ci), F32)
    tmp = np.empty_like(dx)
    for o in range(co):
        mac_into(dx, t[:, o, None], wf[o][None, :], tmp)
    return dx.reshape(g.shape[:-1] + (ci,))


def dwconv2d_bwd_input_f32(
    g: np.ndarray, w: np.ndarray, s_w: np.ndarray, in_h: int, in_w: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """Input gradient of a depthwise conv. g f32[Ho, Wo, C], w s8 [kh, kw, C], s_w f32[C] -> dx f32[H, W, C].

    `t = g*s_w`; `dx[ih,iw,c] = Σ_{taps (kh asc, kw asc) valid} t[oh,ow,c]*f32(w[kh,kw,c])`, from +0.0f.
    """
    g = np.asarray(g, F32)
    ho, wo, c = g.shape
    kh, kw, _ = w.shape
    t = g * np.asarray(s_w, F32)
    wf = np.asarray(w).astype(F32)
    hp = max(in_h + 2 * pad, (ho - 1) * stride + kh)
    wp = max(in_w + 2 * pad, (wo - 1) * stride + kw)
    dx = np.zeros((hp, wp, c), F32)
    for i in range(kh):  # each tap adds at most one term to every input element: tap order = sum order
        for j in range(kw):
            view = dx[i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
            mac_into(view, t, wf[i, j])
    return np.ascontiguousarray(dx[pad : pad + in_h, pad : pad + in_w, :])
