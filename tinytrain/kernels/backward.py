"""Float backward kernels: masks and input gradients (docs/numerics.md, "Float backward").

Every float reduction is a sequential float32 accumulation in the order the contract states:
the Python loop runs over the reduction axis and numpy vectorises over the others (np.sum / np.dot
would sum pairwise and change bits). Inputs are never modified; outputs are new arrays.
"""

from __future__ import annotations

import numpy as np

from tinytrain.kernels.fma import mac_into

F32 = np.float32


def mask_bytes(n: int) -> int:
    """Bytes of a bit mask over `n` elements."""
    return (int(n) + 7) // 8


def mask_s8(y: np.ndarray) -> np.ndarray:
    """Bit mask of the not-saturated elements of int8 `y` (any shape, flat HWC order): u8[ceil(n/8)].

    Bit `j % 8` of byte `j // 8` is 1 when `y[j]` is neither -128 nor 127; padding bits are 0.
    """
    v = np.asarray(y).reshape(-1)
    keep = (v != -128) & (v != 127)
    return np.packbits(keep, bitorder="little")


def apply_mask_f32(g: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """`g[j] = bit j ? g[j] : 0.0f` (+0.0f). Returns a new array (C: may be in place)."""
    g = np.asarray(g, F32)
    keep = np.unpackbits(np.asarray(bits, np.uint8), count=g.size, bitorder="little").astype(bool)
    return np.where(keep.reshape(g.shape), g, F32(0.0)).astype(F32)


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


def avgpool_bwd_f32(g: np.ndarray, h: int, w: int) -> np.ndarray:
    """Global average pool gradient: g f32[C] -> dx f32[h, w, C], `dx = g * f32(1/(h*w))`."""
    g = np.asarray(g, F32).reshape(-1)
    inv_hw = F32(1.0 / (int(h) * int(w)))
    return np.ascontiguousarray(np.broadcast_to(g * inv_hw, (int(h), int(w), g.size)))


def add_f32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`y = a + b` elementwise, float32 (a = the conv branch, b = the skip; C: y may alias a or b)."""
    return (np.asarray(a, F32) + np.asarray(b, F32)).astype(F32)


def slice_channels_s8(x: np.ndarray, k: int) -> np.ndarray:
    """The first `k` channels of an HWC int8 activation (the saved input of a partially updated layer)."""
    return np.ascontiguousarray(np.asarray(x)[..., : int(k)])
