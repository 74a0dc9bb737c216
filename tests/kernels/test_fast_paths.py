"""Shapes that hit each specialised path of the runtime kernels (docs/kernels.md) and its fallback, on both
host-native variants ("dsp" runs the Cortex-M SIMD paths with emulated intrinsics), bit-exact vs numpy.

The QEMU run (test_qemu_kernels.py, `check_cases`) repeats a few of these with the real instructions."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import tinytrain.kernels as K
from tests.kernels.test_native_vs_reference import VARIANTS, _check_update, s8, same
from tinytrain import native
from tinytrain.kernels.fma import fma_mode
from tinytrain.ops import conv2d

F32 = np.float32


@pytest.fixture(scope="module", params=VARIANTS)
def nk(request: pytest.FixtureRequest) -> Iterator[native.NativeKernels]:
    with fma_mode(not request.param.endswith("-nofma")):  # the reference runs the C build's contract
        yield native.load(request.param)


# Depthwise fast path: one int16 plane per channel, strips of output rows (TT_DW_BUF_HALFWORDS), 4- and
# 2-output column blocks, rows outside the image skipped. (h, w, c, k, stride, pad)
DW_FAST = [
    (8, 8, 5, 3, 1, 1),  # 4-blocks only, channel count not a multiple of anything
    (7, 7, 3, 3, 1, 1),  # wo = 7: a 4-block, then a 2-block whose second output is discarded
    (5, 6, 4, 5, 1, 2),  # wo = 6: 4-block + 2-block
    (9, 9, 2, 7, 2, 3),  # stride 2, odd map
    (10, 7, 3, 5, 2, 2),  # stride 2, non-square
    (6, 6, 2, 3, 1, 0),  # pad 0 (valid conv)
    (6, 6, 2, 5, 2, 1),  # pad smaller than (k-1)/2
    (40, 60, 2, 7, 1, 3),  # wide map: several strips of output rows
    (33, 50, 2, 3, 2, 1),  # wide map, stride 2, several strips
    (3, 200, 2, 7, 1, 3),  # too wide for the plane buffer: generic fallback
    (2, 2, 3, 7, 1, 3),  # map smaller than the kernel
    (1, 1, 4, 3, 1, 1),
    (4, 4, 3, 3, 2, 1),
    # 3x3 stride 1 (tt_dw3s1_plane, tt_dw3_layout): four-channel planes (tt_dw_fill4) and their channel
    # tail, odd widths (a 2-block after the 4-blocks; the fill's C rows), pad 0 / 2, strips of four planes,
    # and one plane (strips, one strip) when four would hold fewer than 2 output rows
    (9, 13, 8, 3, 1, 1),
    (6, 10, 6, 3, 1, 0),
    (7, 9, 5, 3, 1, 2),
    (20, 30, 8, 3, 1, 1),
    (12, 40, 5, 3, 1, 1),
    (5, 48, 4, 3, 1, 1),
    (2, 2, 4, 3, 1, 1),
]


@pytest.mark.parametrize("h,w,c,k,stride,pad", DW_FAST)
def test_dwconv2d_s8_fast_paths(
    nk: native.NativeKernels, h: int, w: int, c: int, k: int, stride: int, pad: int
) -> None:
    rng = np.random.default_rng(h * 31 + w * 7 + c + k + stride + pad)
    x, wt = s8(rng, (h, w, c)), s8(rng, (k, k, c))
    bias = rng.integers(-3000, 3000, c).astype(np.int32)
    for mlo, mhi in ((1e-3, 5e-2), (0.3, 3.0)):  # the second saturates almost everything (clamp paths)
        m = rng.uniform(mlo, mhi, c).astype(F32)
        for xz, yz in ((-128, -128), (7, 3), (127, 127)):
            same(
                nk.dwconv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
                conv2d.dwconv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
            )


def test_requant_extremes(nk: native.NativeKernels) -> None:
    """Accumulators near the int32 limits, bias wrap-around, ties: the VCVTR/QADD/SSAT requantization."""
    x = np.full((4, 4, 4), 127, np.int8)
    x[0, 0] = -128
    wt = np.full((3, 3, 4), -128, np.int8)
    bias = np.array([2**31 - 1, -(2**31), 0, 1000], np.int32)
    for m in ((1e-9, 1e-9, 0.5, 0.5), (1e3, 1e3, 1e3, 1e-3), (0.25, 0.75, 1.5, 0.125)):
        mm = np.array(m, F32)
        for yz in (-128, 0, 127):
            same(
                nk.dwconv2d_s8(x, wt, bias, mm, -128, yz, 1, 1),
                conv2d.dwconv2d_s8(x, wt, bias, mm, -128, yz, 1, 1),
            )


# Regular conv: 1x1 fast path (two pixels x two outputs over widened inputs, ci <= 512) and its fallback;
# k x k with kh*kw*ci <= 256 through im2col + the same dot kernel; larger receptive fields: generic loops.
# (h, w, ci, co, k, stride, pad)
CONV_FAST = [
    (3, 3, 16, 8, 1, 1, 0),  # even pixels, even co, ci % 4 == 0
    (5, 1, 13, 7, 1, 1, 0),  # odd pixel count, odd co, ci % 4 == 1
    (1, 1, 38, 10, 1, 1, 0),  # classifier-like: one pixel
    (2, 2, 3, 5, 1, 1, 0),  # ci < 4: tails only
    (2, 3, 600, 4, 1, 1, 0),  # ci > 512: fallback 1x1 path
    (16, 16, 3, 16, 3, 2, 1),  # stem: 3x3x3 im2col, stride 2
    (7, 9, 3, 3, 3, 1, 1),  # stem shape, stride 1, odd co
    (6, 5, 7, 4, 5, 2, 2),  # K = 175
    (5, 5, 4, 3, 3, 1, 0),  # no padding
    (6, 6, 30, 4, 3, 1, 1),  # K = 270 > 256: generic loops
]


@pytest.mark.parametrize("h,w,ci,co,k,stride,pad", CONV_FAST)
def test_conv2d_s8_fast_paths(
    nk: native.NativeKernels, h: int, w: int, ci: int, co: int, k: int, stride: int, pad: int
) -> None:
    rng = np.random.default_rng(h * 17 + w + ci * 3 + co + k + stride)
    x, wt = s8(rng, (h, w, ci)), s8(rng, (co, k, k, ci))
    bias = rng.integers(-5000, 5000, co).astype(np.int32)
    for mlo, mhi in ((1e-4, 3e-3), (0.05, 2.0)):
        m = rng.uniform(mlo, mhi, co).astype(F32)
        for xz, yz in ((-128, 0), (5, -128), (127, 127)):
            same(
                nk.conv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
                conv2d.conv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
            )


# One-output-channel 1x1 weight gradient (the fused block backward's pw1 row update): a register-blocked path
# for any number of positions and every rule (elements finish in memory order). (h, w, x_c, k_in, rule)
WG_ROW = [
    (4, 4, 10, 10, "nearest"),
    (9, 11, 13, 9, "stochastic"),
    (12, 12, 8, 3, "shadow"),
    (1, 1, 5, 5, "nearest"),
    # 8- and 4-channel blocks (word loads: odd x_c = unaligned words) and their tails
    (5, 7, 17, 16, "stochastic"),
    (3, 5, 13, 12, "nearest"),
    (6, 6, 7, 7, "shadow"),
    (2, 3, 24, 21, "stochastic"),
    (9, 9, 8, 8, "shadow"),
    (1, 2, 6, 6, "stochastic"),
]


@pytest.mark.parametrize("h,w,x_c,k_in,rule", WG_ROW)
def test_conv2d_wgrad_one_output(
    nk: native.NativeKernels, h: int, w: int, x_c: int, k_in: int, rule: str
) -> None:
    rng = np.random.default_rng(h * 5 + w + x_c + k_in)
    g = rng.standard_normal((h, w, 1)).astype(F32)
    x = s8(rng, (h, w, x_c))
    q = rng.uniform(0.1, 3.0, 1).astype(F32)
    w0 = rng.integers(-127, 128, (1, x_c), dtype=np.int8)
    res = []
    for kern in (conv2d, nk):
        wt = w0.copy()
        r = K.Xorshift32(99)
        sh = K.shadow_init(w0, k_in) if rule == "shadow" else None
        kern.conv2d_wgrad_update(g, x, 3, wt, k_in, q, F32(-0.9), rule, r, sh, 1, 0)
        res.append((wt, sh, r.state))
    same(res[1][0], res[0][0])
    if rule == "shadow":
        same(res[1][1], res[0][1])
    assert res[1][2] == res[0][2]
    same(nk.conv2d_wgrad_f32(g, x, 3, k_in), conv2d.conv2d_wgrad_f32(g, x, 3, k_in))


# The one-output row with x_zero at both ends and x at both ends: x - x_zero reaches +-255 in the halfword
# lanes of the word-load conversion (SXTAB16 of -x_zero).
@pytest.mark.parametrize("x_zero", [-128, 127, 0])
def test_conv2d_wgrad_one_output_zero_points(nk: native.NativeKernels, x_zero: int) -> None:
    rng = np.random.default_rng(700 + x_zero)
    h, w, x_c, k_in = 5, 3, 19, 19
    g = rng.standard_normal((h, w, 1)).astype(F32)
    x = rng.choice(np.array([-128, 127, -1, 0, 1, 55], np.int8), (h, w, x_c))
    q = rng.uniform(0.1, 3.0, 1).astype(F32)
    w0 = rng.integers(-127, 128, (1, x_c), dtype=np.int8)
    for rule in ("nearest", "stochastic"):
        res = []
        for kern in (conv2d, nk):
            wt = w0.copy()
            r = K.Xorshift32(7)
            kern.conv2d_wgrad_update(g, x, x_zero, wt, k_in, q, F32(-0.05), rule, r, None, 1, 0)
            res.append((wt, r.state))
        same(res[1][0], res[0][0])
        assert res[1][1] == res[0][1]
    same(nk.conv2d_wgrad_f32(g, x, x_zero, k_in), conv2d.conv2d_wgrad_f32(g, x, x_zero, k_in))


# Blocked weight-gradient paths (tt_update.c) under every rule, the stochastic one especially: the rows of
# the updated layout (1x1: outputs; depthwise: taps) finish interleaved, each row drawing from its own rng
# cursor, so the draws must still be those of memory order. 1x1: (h, w, co, k_in)
WG_BLOCKED_1X1 = [
    (3, 3, 131, 13),  # > TT_WG_MAX_ROWS = 128 outputs: two passes of cursors, the last block has 3 outputs
    (8, 8, 6, 9),  # 64 positions, co % 4 = 2, k_in % 4 = 1
    (2, 3, 3, 7),  # fewer than four outputs: memory-order loops (stochastic), generic block (others)
    (4, 4, 9, 4),  # one channel block: block order = memory order, one cursor
    (1, 1, 5, 6),  # one position (the classifier's shape)
    (9, 9, 8, 8),  # > 64 positions: memory-order loops
]


@pytest.mark.parametrize("h,w,co,k_in", WG_BLOCKED_1X1)
def test_conv2d_wgrad_update_blocked(nk: native.NativeKernels, h: int, w: int, co: int, k_in: int) -> None:
    rng = np.random.default_rng(h * 31 + w + co * 7 + k_in)
    ci = k_in + 3
    g = rng.standard_normal((h, w, co)).astype(F32)
    x = s8(rng, (h, w, ci))
    wt = s8(rng, (co, 1, 1, ci), -127, 127)
    q = rng.uniform(0.1, 2.0, co).astype(F32)
    _check_update(nk, "conv2d_wgrad_update", g, x, 5, wt, k_in, q, 1, 0, co * k_in)


# Depthwise: (h, w, c, k, stride, k_in)
WG_BLOCKED_DW = [
    (8, 8, 11, 3, 1, 11),  # 64 positions, three channel blocks (the last one overlapping)
    (7, 6, 9, 5, 2, 6),  # stride 2, k_in < c
    (5, 5, 3, 7, 1, 3),  # one channel block: one cursor
    (6, 6, 6, 9, 1, 6),  # 81 taps > TT_WG_MAX_TAPS: memory-order loops (stochastic)
    (9, 8, 6, 3, 1, 6),  # > 64 positions: memory-order loops
]


@pytest.mark.parametrize("h,w,c,k,stride,k_in", WG_BLOCKED_DW)
def test_dwconv2d_wgrad_update_blocked(
    nk: native.NativeKernels, h: int, w: int, c: int, k: int, stride: int, k_in: int
) -> None:
    rng = np.random.default_rng(h * 29 + w + c * 5 + k + stride + k_in)
    pad = (k - 1) // 2
    ho, wo = K.out_size(h, k, stride, pad), K.out_size(w, k, stride, pad)
    g = rng.standard_normal((ho, wo, c)).astype(F32)
    x = s8(rng, (h, w, c))
    wt = s8(rng, (k, k, c), -127, 127)
    q = rng.uniform(0.1, 2.0, c).astype(F32)
    _check_update(nk, "dwconv2d_wgrad_update", g, x, -3, wt, k_in, q, stride, pad, k * k * k_in)


# In-place depthwise fast path (tt_memory_ops.c): the plane path, stride 1, k in {3, 5, 7}, pad = (k - 1) / 2.
# The plane is filled from x; between strips it keeps the halo rows (the rows above are overwritten).
# (h, w, c, k)
DW_INPLACE_FAST = [
    (8, 8, 5, 3),  # one strip, 4-blocks only
    (7, 7, 3, 3),  # w = 7: a 4-block, then a 2-block whose second output is discarded
    (5, 6, 4, 5),  # w = 6: 4-block + 2-block
    (9, 11, 2, 7),  # odd map, 7x7
    (40, 60, 2, 7),  # wide map: several strips, halo rows carried over
    (33, 50, 3, 3),  # several strips, 3x3
    (10, 130, 2, 7),  # one output row per strip (fewer than pad)
    (5, 300, 2, 3),  # one output row per strip, 3x3
    (9, 13, 8, 3),  # 3x3: strips of four-channel planes, odd width (2-block, the fill's C rows)
    (20, 30, 8, 3),  # 3x3: strips of 2 rows in four planes, halo rows carried over in each
    (12, 40, 6, 3),  # 3x3: one plane (four would hold fewer than 2 output rows), several strips
    (5, 48, 4, 3),  # 3x3: one plane, one strip
    (6, 6, 7, 3),  # 3x3: four planes and a channel tail of 3, one strip
    (3, 200, 2, 7),  # too wide for the plane buffer: plain loops
    (2, 2, 3, 7),  # map smaller than the kernel
    (1, 1, 4, 3),
    (1, 9, 3, 5),
]


@pytest.mark.parametrize("h,w,c,k", DW_INPLACE_FAST)
def test_dwconv2d_s8_inplace_fast_paths(nk: native.NativeKernels, h: int, w: int, c: int, k: int) -> None:
    rng = np.random.default_rng(h * 37 + w * 5 + c + k)
    x, wt = s8(rng, (h, w, c)), s8(rng, (k, k, c))
    bias = rng.integers(-3000, 3000, c).astype(np.int32)
    pad = (k - 1) // 2
    for mlo, mhi in ((1e-3, 5e-2), (0.3, 3.0)):
        m = rng.uniform(mlo, mhi, c).astype(F32)
        for xz, yz in ((-128, -128), (7, 3), (127, 127)):
            ref = conv2d.dwconv2d_s8_inplace(x, wt, bias, m, xz, yz, 1, pad)
            same(ref, conv2d.dwconv2d_s8(x, wt, bias, m, xz, yz, 1, pad))
            same(nk.dwconv2d_s8_inplace(x, wt, bias, m, xz, yz, 1, pad), ref)


def test_dwconv2d_s8_inplace_kernel_1(nk: native.NativeKernels) -> None:
    """k = 1 (not a plane-path kernel size): plain loops."""
    rng = np.random.default_rng(5)
    x, wt = s8(rng, (4, 5, 6)), s8(rng, (1, 1, 6))
    bias = rng.integers(-3000, 3000, 6).astype(np.int32)
    m = rng.uniform(1e-3, 5e-2, 6).astype(F32)
    same(
        nk.dwconv2d_s8_inplace(x, wt, bias, m, 3, -5, 1, 0),
        conv2d.dwconv2d_s8_inplace(x, wt, bias, m, 3, -5, 1, 0),
    )


# Split 1x1 fast path (tt_memory_ops.c): the tt_dot2x2 path on the SRAM part, then the flash part, one
# requantization; ci <= 512. (h, w, ci, k, co)
SPLIT_FAST = [
    (4, 4, 96, 16, 48),  # both parts multiples of 4, even pixels and outputs
    (5, 5, 13, 2, 7),  # k < 4 (tail only), odd pixel count, odd co
    (3, 3, 38, 5, 6),  # k % 4 = 1, (ci - k) % 4 = 1
    (2, 3, 27, 27, 5),  # all channels trained: empty flash part
    (1, 1, 160, 20, 10),  # one pixel (classifier-like)
    (3, 1, 64, 63, 3),  # one flash channel
    (2, 2, 600, 100, 5),  # ci > 512: plain loops
]


@pytest.mark.parametrize("h,w,ci,k,co", SPLIT_FAST)
def test_conv2d_split_s8_fast_paths(
    nk: native.NativeKernels, h: int, w: int, ci: int, k: int, co: int
) -> None:
    rng = np.random.default_rng(h * 13 + ci * 3 + k + co)
    x, wt = s8(rng, (h, w, ci)), s8(rng, (co, 1, 1, ci))
    wa, wb = np.ascontiguousarray(wt[..., :k]), np.ascontiguousarray(wt[..., k:])
    bias = rng.integers(-5000, 5000, co).astype(np.int32)
    for mlo, mhi in ((1e-4, 3e-3), (0.3, 3.0)):
        m = rng.uniform(mlo, mhi, co).astype(F32)
        for xz, yz in ((-128, 0), (5, -128), (127, 127)):
            ref = conv2d.conv2d_split_s8(x, wa, wb, bias, m, xz, yz, 1, 0)
            same(ref, conv2d.conv2d_s8(x, wt, bias, m, xz, yz, 1, 0))
            same(nk.conv2d_split_s8(x, wa, wb, bias, m, xz, yz, 1, 0), ref)
