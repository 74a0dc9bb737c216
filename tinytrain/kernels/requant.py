"""Shared integer machinery of the forward kernels (docs/numerics.md, "Integer forward"): float32 rounding,
requantization multipliers, the saturating int32 bias add, the requantization of an int32 accumulator,
zero-point padding and output sizes. The op kernels (tinytrain/ops/<op>) build on it."""

from __future__ import annotations

import numpy as np

F32 = np.float32


def rne(v: np.ndarray) -> np.ndarray:
    """Round float32 to the nearest integer, ties to even (the device: (v + 1.5*2^23) - 1.5*2^23)."""
    return np.rint(v)


def requant_multipliers(x_scale: float, w_scales: np.ndarray, y_scale: float) -> np.ndarray:
    """m[o] = f32(x_scale * w_scale[o] / y_scale), computed in float64."""
    return (float(x_scale) * w_scales.astype(np.float64) / float(y_scale)).astype(F32)


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# |acc| <= 255 * 128 * terms (|x - x_zero| <= 255, |w| <= 128): the int32 sum cannot overflow up to this many
# terms (kh * kw * ci) per output.
MAX_ACC_TERMS = INT32_MAX // (255 * 128)  # 65793


def check_terms(terms: int) -> None:
    if terms > MAX_ACC_TERMS:
        raise ValueError(
            f"{terms} terms per output: the int32 accumulator could overflow "
            f"(the contract allows kh*kw*ci <= {MAX_ACC_TERMS})"
        )


def sat_add32(acc: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """sat32(acc + bias): the exact sum saturated to [-2^31, 2^31 - 1] (QADD on Cortex-M)."""
    s = np.asarray(acc, np.int64) + np.asarray(bias, np.int64)
    return np.clip(s, INT32_MIN, INT32_MAX).astype(np.int32)


def requantize(acc: np.ndarray, bias: np.ndarray, m: np.ndarray, y_zero: int) -> np.ndarray:
    v = sat_add32(acc, bias).astype(F32) * m  # f32(sat32(acc + bias)) * m[o]
    v = np.clip(v, F32(-256.0), F32(256.0))
    return np.clip(rne(v).astype(np.int32) + int(y_zero), -128, 127).astype(np.int8)


def pad_hwc(x: np.ndarray, pad: int, x_zero: int) -> np.ndarray:
    """int32 (x - x_zero) with zero padding (padding with x_zero contributes nothing)."""
    xs = x.astype(np.int32) - int(x_zero)
    if pad:
        xs = np.pad(xs, ((pad, pad), (pad, pad), (0, 0)))
    return xs


def out_size(h: int, k: int, stride: int, pad: int) -> int:
    return (h + 2 * pad - k) // stride + 1
