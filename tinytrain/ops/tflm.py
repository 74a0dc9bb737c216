"""TFLite Micro integer arithmetic (docs/numerics.md, "TFLite Micro numerics"), vectorised in numpy.

The second declared numerics mode of tinytrain: a requantization by an int32 fixed-point multiplier and a
power-of-two shift, with gemmlowp's rounding, exactly as TFLite Micro's reference kernels compute it
(`MultiplyByQuantizedMultiplier` = `SaturatingRoundingDoublingHighMul` then `RoundingDivideByPOT`, double
rounding). The C twins are in firmware/runtime/ops/tt_tflm.h. Every function takes and returns int64 arrays
holding int32 values (the int32 wrap of a product `x * 2^left_shift` is reproduced).
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = q * 2^(shift - 31), q in [2^30, 2^31), rounded half away from 0."""
    if real == 0.0:
        return 0, 0
    mant, shift = math.frexp(real)
    q = int(math.copysign(math.floor(abs(mant) * (1 << 31) + 0.5), mant))  # std::round
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        shift, q = 0, 0
    return q, shift


def _wrap32(v: np.ndarray) -> np.ndarray:
    return ((v + 2**31) % 2**32) - 2**31


def _cdiv(a: np.ndarray, b: int) -> np.ndarray:
    """C integer division (truncation toward zero) of int64 arrays by a positive int."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def srdhm(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul(a, b) of int32 values."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b  # |ab| <= 2^62: exact in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    hi = _cdiv(ab + nudge, 1 << 31)
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, hi)


def rdbpot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """RoundingDivideByPOT(x, exponent), 0 <= exponent <= 31: round half away from zero."""
    x = np.asarray(x, np.int64)
    e = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def mbqm(x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(x, multiplier, shift) (TFLite's double rounding)."""
    s = np.asarray(shift, np.int64)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    xs = _wrap32(np.asarray(x, np.int64) << left)
    return rdbpot(srdhm(xs, multiplier), right)


def mbqm_smaller_than_one(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """MultiplyByQuantizedMultiplierSmallerThanOneExp(x, multiplier, shift <= 0)."""
    return rdbpot(srdhm(x, multiplier), -int(shift))


def tfl_round(v: float) -> int:
    """TfLiteRound / std::round: half away from zero."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def activation_range(activation: str, scale: float, zero: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8: [act_min, act_max] of a fused activation."""
    s = np.float32(scale)

    def q(f: float) -> int:
        return int(zero) + tfl_round(float(np.float32(f) / s))

    lo, hi = -128, 127
    if activation == "RELU":
        return max(lo, q(0.0)), hi
    if activation == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    if activation == "NONE":
        return lo, hi
    raise ValueError(f"unsupported fused activation {activation}")


def conv_multipliers(x_scale: float, w_scales: np.ndarray, y_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) of a conv / depthwise / fully connected layer, as TFLite Micro's
    PopulateConvolutionQuantizationParams: f64(x_scale) * f64(w_scale[o]) / f64(y_scale)."""
    ms, ss = [], []
    for ws in np.asarray(w_scales, np.float32):
        m, s = quantize_multiplier(float(np.float32(x_scale)) * float(ws) / float(np.float32(y_scale)))
        ms.append(m)
        ss.append(s)
    return np.array(ms, np.int32), np.array(ss, np.int32)
