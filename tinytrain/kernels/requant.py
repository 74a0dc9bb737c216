"""Integer forward kernels (docs/numerics.md, "Integer forward")."""

from __future__ import annotations

import numpy as np

F32 = np.float32


def rne(v: np.ndarray) -> np.ndarray:
    """Round float32 to the nearest integer, ties to even (the device: (v + 1.5*2^23) - 1.5*2^23)."""
    return np.rint(v)


def requant_multipliers(x_scale: float, w_scales: np.ndarray, y_scale: float) -> np.ndarray:
    """m[o] = f32(x_scale * w_scale[o] / y_scale), computed in float64."""
    return (float(x_scale) * w_scales.astype(np.float64) / float(y_scale)).astype(F32)


def weight_ohwi(w_oihw: np.ndarray) -> np.ndarray:
    """Regular conv weights from the IR's OIHW to the device's OHWI."""
    return np.ascontiguousarray(w_oihw.transpose(0, 2, 3, 1))


def dw_weight_hwc(w_oihw: np.ndarray) -> np.ndarray:
    """Depthwise weights [C, 1, kh, kw] to the device's [kh, kw, C]."""
    return np.ascontiguousarray(w_oihw[:, 0].transpose(1, 2, 0))


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# |acc| <= 255 * 128 * terms (|x - x_zero| <= 255, |w| <= 128): the int32 sum cannot overflow up to this many
# terms (kh * kw * ci) per output.
MAX_ACC_TERMS = INT32_MAX // (255 * 128)  # 65793


def _check_terms(terms: int) -> None:
    if terms > MAX_ACC_TERMS:
        raise ValueError(
            f"{terms} terms per output: the int32 accumulator could overflow "
            f"(the contract allows kh*kw*ci <= {MAX_ACC_TERMS})"
        )


def sat_add32(acc: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """sat32(acc + bias): the exact sum saturated to [-2^31, 2^31 - 1] (QADD on Cortex-M)."""
    s = np.asarray(acc, np.int64) + np.asarray(bias, np.int64)
    return np.clip(s, INT32_MIN, INT32_MAX).astype(np.int32)


def _requantize(acc: np.ndarray, bias: np.ndarray, m: np.ndarray, y_zero: int) -> np.ndarray:
    v = sat_add32(acc, bias).astype(F32) * m  # f32(sat32(acc + bias)) * m[o]
    v = np.clip(v, F32(-256.0), F32(256.0))
    return np.clip(rne(v).astype(np.int32) + int(y_zero), -128, 127).astype(np.int8)


def _pad_hwc(x: np.ndarray, pad: int, x_zero: int) -> np.ndarray:
    """int32 (x - x_zero) with zero padding (padding with x_zero contributes nothing)."""
    xs = x.astype(np.int32) - int(x_zero)
    if pad:
        xs = np.pad(xs, ((pad, pad), (pad, pad), (0, 0)))
    return xs


def out_size(h: int, k: int, stride: int, pad: int) -> int:
    return (h + 2 * pad - k) // stride + 1


def conv2d_s8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    m: np.ndarray,
    x_zero: int,
    y_zero: int,
    stride: int = 1,
    pad: int = 0,
) -> np.ndarray:
    """Regular conv. x [H, W, Ci] s8, w [Co, kh, kw, Ci] s8, bias [Co] s32, m [Co] f32 -> y [Ho, Wo, Co]."""
    h, wd, ci = x.shape
    co, kh, kw, _ = w.shape
    _check_terms(kh * kw * ci)
    ho, wo = out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad)
    xs = _pad_hwc(x, pad, x_zero).astype(np.float64)  # integer-valued: float64 BLAS sums are exact here
    cols = np.empty((ho, wo, kh, kw, ci), np.float64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j, :] = xs[
                i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :
            ]
    acc = cols.reshape(ho * wo, -1) @ w.reshape(co, -1).astype(np.float64).T
    return _requantize(acc.astype(np.int64).reshape(ho, wo, co), bias, m, y_zero)


def dwconv2d_s8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    m: np.ndarray,
    x_zero: int,
    y_zero: int,
    stride: int = 1,
    pad: int = 0,
) -> np.ndarray:
    """Depthwise conv. x [H, W, C] s8, w [kh, kw, C] s8 -> y [Ho, Wo, C] s8."""
    h, wd, c = x.shape
    kh, kw, _ = w.shape
    ho, wo = out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad)
    xs = _pad_hwc(x, pad, x_zero)
    _check_terms(kh * kw)
    acc = np.zeros((ho, wo, c), np.int32)
    w32 = w.astype(np.int32)
    for i in range(kh):
        for j in range(kw):
            acc += (
                xs[i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
                * w32[i, j]
            )
    return _requantize(acc, bias, m, y_zero)


def add_s8(
    a: np.ndarray, b: np.ndarray, fa: float, fb: float, a_zero: int, b_zero: int, y_zero: int
) -> np.ndarray:
    """Residual add: v = f32(a - a_zero)*fa + f32(b - b_zero)*fb; y = clamp(rne(v) + y_zero)."""
    ta = (a.astype(np.int32) - int(a_zero)).astype(F32) * F32(fa)
    tb = (b.astype(np.int32) - int(b_zero)).astype(F32) * F32(fb)
    v = np.clip(ta + tb, F32(-256.0), F32(256.0))
    return np.clip(rne(v).astype(np.int32) + int(y_zero), -128, 127).astype(np.int8)


def avgpool_s8(x: np.ndarray) -> np.ndarray:
    """Global average pool, round half to even in integers. x [H, W, C] -> y [C]."""
    n = x.shape[0] * x.shape[1]
    s = x.astype(np.int64).sum(axis=(0, 1))
    q = np.floor_divide(s, n)
    r = s - q * n
    q = q + ((2 * r > n) | ((2 * r == n) & (q % 2 == 1)))
    return q.astype(np.int8)
