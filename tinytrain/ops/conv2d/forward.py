"""conv2d forward kernels (numpy; C twins firmware/runtime/ops/tt_conv2d.c) and the device weight layouts."""

from __future__ import annotations

import numpy as np

from tinytrain.kernels.requant import check_terms, out_size, pad_hwc, requantize


def weight_ohwi(w_oihw: np.ndarray) -> np.ndarray:
    """Regular conv weights from the IR's OIHW to the device's OHWI."""
    return np.ascontiguousarray(w_oihw.transpose(0, 2, 3, 1))


def dw_weight_hwc(w_oihw: np.ndarray) -> np.ndarray:
    """Depthwise weights [C, 1, kh, kw] to the device's [kh, kw, C]."""
    return np.ascontiguousarray(w_oihw[:, 0].transpose(1, 2, 0))


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
    check_terms(kh * kw * ci)
    ho, wo = out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad)
    xs = pad_hwc(x, pad, x_zero).astype(np.float64)  # integer-valued: float64 BLAS sums are exact here
    cols = np.empty((ho, wo, kh, kw, ci), np.float64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j, :] = xs[
                i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :
            ]
    acc = cols.reshape(ho * wo, -1) @ w.reshape(co, -1).astype(np.float64).T
    return requantize(acc.astype(np.int64).reshape(ho, wo, co), bias, m, y_zero)


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
    xs = pad_hwc(x, pad, x_zero)
    check_terms(kh * kw)
    acc = np.zeros((ho, wo, c), np.int32)
    w32 = w.astype(np.int32)
    for i in range(kh):
        for j in range(kw):
            acc += (
                xs[i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
                * w32[i, j]
            )
    return requantize(acc, bias, m, y_zero)
