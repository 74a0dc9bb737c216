"""Softmax cross-entropy on int8 logits with the device's own exp/log (docs/numerics.md, Loss)."""

from __future__ import annotations

import numpy as np

F32 = np.float32


def _pow2(n: np.ndarray) -> np.ndarray:
    """Exact float32 2^n for integer-valued float32 n in [-126, 127], built from the exponent bits."""
    bits = (n.astype(np.int32) + 127).astype(np.uint32) << np.uint32(23)
    return bits.view(F32)


def tt_expf(x: np.ndarray) -> np.ndarray:
    """exp(x) for float32 x <= 0, elementwise, bit-identical to the C `tt_expf`."""
    x = np.asarray(x, F32)
    with np.errstate(over="ignore", invalid="ignore"):  # lanes with x < -87 are discarded below
        return _expf(x)


def _expf(x: np.ndarray) -> np.ndarray:
    n = np.rint(x * F32(1.44269504))
    r = (x - n * F32(0.693359375)) - n * F32(-2.12194440e-4)
    t = F32(0.0013888889)  # p = 1 + r*(1 + r*(0.5 + r*(...))), innermost first, every op rounded
    for c in (0.008333334, 0.041666668, 0.16666667, 0.5, 1.0, 1.0):
        t = F32(c) + r * t
    p = t
    nn = np.maximum(n, F32(-126.0))  # x >= -87 gives n >= -126; the clamp only guards the masked lanes
    y = p * _pow2(nn)
    return np.where(x < F32(-87.0), F32(0.0), y).astype(F32)


def tt_logf(s: np.ndarray) -> np.ndarray:
    """log(s) for float32 s >= 1, elementwise, bit-identical to the C `tt_logf`."""
    s = np.asarray(s, F32)
    bits = s.view(np.uint32)
    e = (bits >> np.uint32(23)).astype(np.int32) - 127
    m = ((bits & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000)).view(F32)
    sv = (m - F32(1.0)) / (m + F32(1.0))
    s2 = sv * sv
    t = F32(0.11111111)
    for c in (0.14285715, 0.2, 0.33333334, 1.0):
        t = F32(c) + s2 * t
    l = (F32(2.0) * sv) * t
    return (e.astype(F32) * F32(0.6931472) + l).astype(F32)


def softmax_xent(z: np.ndarray, z_scale: float, label: int) -> tuple[np.ndarray, np.float32]:
    """Gradient g f32[K] of the loss w.r.t. the real logits, and the loss f32, for int8 logits z[K]."""
    z = np.asarray(z).reshape(-1)
    zmax = int(z.max())
    d = (z.astype(np.int32) - zmax).astype(F32) * F32(z_scale)
    e = tt_expf(d)
    s = F32(0.0)
    for v in e:  # sequential float32 sum, ascending k
        s = F32(s + v)
    p = e / s
    g = p.copy()
    g[label] = p[label] - F32(1.0)
    loss = F32(tt_logf(np.array([s], F32))[0] - d[label])
    return g.astype(F32), loss
