"""Biases at and near +-2^31 (the zoo's dead channels): `s = sat32(acc + bias)` (docs/numerics.md), through
every int8 fast path and fallback of both host-native variants ("dsp" runs the SIMD paths with an emulated
QADD), bit-exact vs numpy. The QEMU run repeats them with the real instructions
(`qemu_harness.sat_bias_cases`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.kernels.qemu_harness import INT32_MAX, INT32_MIN, extreme_bias, q_edge_m
from tests.kernels.test_native_vs_reference import VARIANTS, s8, same
from tinytrain import native
from tinytrain.kernels import requant as FWD
from tinytrain.kernels.fma import fma_mode
from tinytrain.ops import conv2d

F32 = np.float32
# (m_lo, m_hi): outputs that depend on the bias (|f32(2^31) * m| <= 236), small ones, all saturated
M_RANGES = ((1e-9, 1.1e-7), (1e-10, 3e-9), (1e-3, 1e-1))
ZEROS = ((-128, 0), (7, -128), (127, 127), (0, 5))


@pytest.fixture(scope="module", params=VARIANTS)
def nk(request: pytest.FixtureRequest) -> Iterator[native.NativeKernels]:
    with fma_mode(not request.param.endswith("-nofma")):  # the reference runs the C build's contract
        yield native.load(request.param)


def _ms(rng: np.random.Generator, n: int):  # type: ignore[no-untyped-def]
    for lo, hi in M_RANGES:
        yield rng.uniform(lo, hi, n).astype(F32)


def test_reference_saturates() -> None:
    """The contract itself: acc + bias saturates (a wrap would flip the sign of these outputs)."""
    x = np.array([[[127, -128]]], np.int8)  # one pixel, two channels
    # x_zero -128: acc = 255, -255, 0, 0
    w = np.array([[[[1, 0]]], [[[-1, 0]]], [[[0, 1]]], [[[0, -1]]]], np.int8)
    bias = np.array([INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN], np.int32)
    m = np.full(4, 5e-8, F32)
    y = conv2d.conv2d_s8(x, w, bias, m, -128, 0).ravel()
    v = F32(2.0**31) * F32(5e-8)  # f32(2^31 - 1) = f32(2^31) = 2^31
    assert y.tolist() == [int(np.rint(v)), -int(np.rint(v)), int(np.rint(v)), -int(np.rint(v))]
    s = FWD.sat_add32(np.array([INT32_MAX - 5, -3]), np.array([10, INT32_MIN]))
    assert s.tolist() == [INT32_MAX, INT32_MIN]
    with pytest.raises(ValueError):
        conv2d.conv2d_s8(
            np.zeros((1, 1, FWD.MAX_ACC_TERMS + 1), np.int8),
            np.zeros((1, 1, 1, FWD.MAX_ACC_TERMS + 1), np.int8),
            bias[:1],
            m[:1],
            0,
            0,
        )


def test_saturation_not_intermediate(nk: native.NativeKernels) -> None:
    """Large partial sums of both signs (255 * 127 per term, first half positive, second half negative) on top
    of a bias at the limit: only the final sum is saturated, for every path (1x1 fast, ci > 512, generic)."""
    for ci in (64, 512, 600):
        co = 6
        x = np.full((2, 3, ci), 127, np.int8)
        w = np.empty((co, 1, 1, ci), np.int8)
        for o in range(co):
            npos = ci // 2 + (o - co // 2) * (ci // 16)  # net sum of both signs, per output
            w[o, 0, 0, :npos], w[o, 0, 0, npos:] = 127, -127
        bias = np.array([INT32_MAX, INT32_MIN] * (co // 2), np.int32)
        m = np.full(co, 1.1e-7, F32)
        ref = conv2d.conv2d_s8(x, w, bias, m, -128, 0)
        same(nk.conv2d_s8(x, w, bias, m, -128, 0), ref)


CONV = [  # (h, w, ci, co, k, stride, pad): every regular-conv path
    (3, 3, 16, 8, 1, 1, 0),  # 1x1 fast path, even pixels
    (5, 1, 13, 7, 1, 1, 0),  # odd pixel count, odd co, ci % 4 == 1
    (1, 1, 38, 10, 1, 1, 0),  # one pixel
    (2, 2, 3, 5, 1, 1, 0),  # tails only
    (2, 2, 512, 6, 1, 1, 0),  # largest ci of the fast path
    (2, 3, 600, 5, 1, 1, 0),  # ci > 512: SXTB16 pair loop, odd last output
    (3, 1, 600, 4, 1, 1, 0),  # ci > 512, odd pixel count: last pixel loop
    (16, 16, 3, 16, 3, 2, 1),  # stem: im2col
    (7, 9, 3, 3, 3, 1, 1),
    (6, 5, 7, 4, 5, 2, 2),  # im2col, K = 175
    (6, 6, 30, 4, 3, 1, 1),  # K = 270 > 256: generic loops
]


@pytest.mark.parametrize("h,w,ci,co,k,stride,pad", CONV)
def test_conv2d_s8_saturated_bias(
    nk: native.NativeKernels, h: int, w: int, ci: int, co: int, k: int, stride: int, pad: int
) -> None:
    rng = np.random.default_rng(h * 13 + w + ci * 5 + co + k)
    x, wt = s8(rng, (h, w, ci)), s8(rng, (co, k, k, ci))
    near = 6000 * int(np.sqrt(k * k * ci))
    for m in _ms(rng, co):
        bias = extreme_bias(rng, co, near)
        for xz, yz in ZEROS:
            same(
                nk.conv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
                conv2d.conv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
            )


DW = [  # (h, w, c, k, stride, pad): every depthwise path
    (8, 8, 5, 3, 1, 1),  # plane fast path, 4-blocks
    (7, 7, 3, 3, 1, 1),  # 4-block + 2-block with a discarded output
    (5, 6, 4, 5, 1, 2),
    (9, 9, 2, 7, 2, 3),  # stride 2, kernel rows outside the image
    (10, 7, 3, 5, 2, 2),
    (6, 6, 2, 3, 1, 0),  # pad 0
    (40, 60, 2, 7, 1, 3),  # several strips
    (3, 200, 6, 7, 1, 3),  # too wide: per-pixel 4-channel SIMD loop + channel tail
    (3, 200, 6, 3, 2, 1),
    (2, 2, 3, 7, 1, 3),  # map smaller than the kernel
    (1, 1, 4, 3, 1, 1),
    (9, 13, 8, 3, 1, 1),  # 3x3 stride 1: four-channel planes, odd width
    (20, 30, 5, 3, 1, 1),  # 3x3 stride 1: several strips, a channel tail
]


@pytest.mark.parametrize("h,w,c,k,stride,pad", DW)
def test_dwconv2d_s8_saturated_bias(
    nk: native.NativeKernels, h: int, w: int, c: int, k: int, stride: int, pad: int
) -> None:
    rng = np.random.default_rng(h * 29 + w * 3 + c + k + stride)
    x, wt = s8(rng, (h, w, c)), s8(rng, (k, k, c))
    for m in _ms(rng, c):
        bias = extreme_bias(rng, c, 6000 * k)
        for xz, yz in ZEROS:
            same(
                nk.dwconv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
                conv2d.dwconv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
            )


@pytest.mark.parametrize(
    "h,w,ci,k,co,kernel,stride",
    [
        (5, 5, 13, 2, 7, 1, 1),
        (2, 2, 600, 100, 5, 1, 1),
        (4, 3, 96, 17, 9, 1, 1),
        (3, 3, 40, 40, 4, 1, 1),
        (7, 7, 3, 1, 8, 3, 2),
        (6, 5, 7, 4, 3, 5, 2),
    ],
)
def test_conv2d_split_s8_saturated_bias(
    nk: native.NativeKernels, h: int, w: int, ci: int, k: int, co: int, kernel: int, stride: int
) -> None:
    rng = np.random.default_rng(h * 7 + ci + k)
    x, wt = s8(rng, (h, w, ci)), s8(rng, (co, kernel, kernel, ci))
    wa, wb = np.ascontiguousarray(wt[..., :k]), np.ascontiguousarray(wt[..., k:])
    pad = (kernel - 1) // 2
    for m in _ms(rng, co):
        bias = extreme_bias(rng, co, 6000 * int(np.sqrt(kernel * kernel * ci)))
        for xz, yz in ZEROS:
            ref = conv2d.conv2d_split_s8(x, wa, wb, bias, m, xz, yz, stride, pad)
            same(ref, conv2d.conv2d_s8(x, wt, bias, m, xz, yz, stride, pad))
            same(nk.conv2d_split_s8(x, wa, wb, bias, m, xz, yz, stride, pad), ref)


@pytest.mark.parametrize(
    "h,w,c,k",
    [
        (6, 6, 7, 3),
        (5, 7, 5, 5),
        (7, 7, 3, 7),
        (40, 60, 2, 7),
        (3, 200, 2, 7),
        (20, 30, 9, 3),
        # the 3x3 four-channel path (width % 4 == 0): groups only, a channel tail, several strips
        (8, 8, 12, 3),
        (9, 12, 6, 3),
        (16, 16, 8, 3),
    ],
)
def test_dwconv2d_s8_inplace_saturated_bias(nk: native.NativeKernels, h: int, w: int, c: int, k: int) -> None:
    rng = np.random.default_rng(h + w * 11 + c + k)
    x, wt = s8(rng, (h, w, c)), s8(rng, (k, k, c))
    pad = (k - 1) // 2
    for m in [*_ms(rng, c), q_edge_m(rng, c)]:
        bias = extreme_bias(rng, c, 6000 * k)
        for xz, yz in ZEROS:
            ref = conv2d.dwconv2d_s8_inplace(x, wt, bias, m, xz, yz, 1, pad)
            same(ref, conv2d.dwconv2d_s8(x, wt, bias, m, xz, yz, 1, pad))
            same(nk.dwconv2d_s8_inplace(x, wt, bias, m, xz, yz, 1, pad), ref)


def test_bias_update_saturates(nk: native.NativeKernels) -> None:
    """The bias update saturates to int32 too (docs/numerics.md, Update), fused and split."""
    rng = np.random.default_rng(5)
    g = (rng.standard_normal((3, 3, 14)) * 50).astype(F32)
    qb = rng.uniform(10, 1000, 14).astype(F32)
    for neg_lr in (F32(-1.0), F32(1.0)):
        b0 = extreme_bias(rng, 14, 3000)
        b_ref, b_nat = b0.copy(), b0.copy()
        conv2d.bias_grad_update(g, b_ref, qb, neg_lr)
        nk.bias_grad_update(g, b_nat, qb, neg_lr)
        same(b_nat, b_ref)
        assert (b_ref == INT32_MAX).any() and (b_ref == INT32_MIN).any()
        b_split = b0.copy()
        conv2d.bias_update(conv2d.bias_grad_f32(g), b_split, qb, neg_lr)
        same(b_split, b_ref)
        b_split_nat = b0.copy()
        nk.bias_update(nk.bias_grad_f32(g), b_split_nat, qb, neg_lr)
        same(b_split_nat, b_ref)
