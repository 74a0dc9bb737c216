"""Memory-saving kernels (tinytrain/kernels/memory_ops.py) vs their C twins (tt_memory_ops.c),
both host-native variants, bit-exact; and the properties the compiler relies on (split = unsplit, tiles with
fill = padded conv)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import tinytrain.kernels as K
from tests.kernels.test_native_vs_reference import VARIANTS, s8, same
from tinytrain import native
from tinytrain.kernels import memory_ops as M
from tinytrain.kernels.fma import fma_mode
from tinytrain.ops import conv2d

F32 = np.float32


@pytest.fixture(scope="module", params=VARIANTS)
def nk(request: pytest.FixtureRequest) -> Iterator[native.NativeKernels]:
    with fma_mode(not request.param.endswith("-nofma")):  # the reference runs the C build's contract
        yield native.load(request.param)


SPLIT_CASES = [  # (h, w, ci, k, co, kernel, stride)
    (5, 5, 13, 2, 7, 1, 1),
    (8, 8, 48, 6, 24, 1, 1),
    (1, 1, 160, 20, 10, 1, 1),
    (4, 4, 8, 8, 5, 1, 1),
    (7, 7, 3, 1, 8, 3, 2),
    (9, 6, 6, 3, 5, 3, 1),
    (6, 5, 7, 4, 3, 5, 2),
]


@pytest.mark.parametrize("h,w,ci,k,co,kernel,stride", SPLIT_CASES)
def test_conv2d_split_s8(nk, h, w, ci, k, co, kernel, stride):
    rng = np.random.default_rng(h * 100 + ci + k)
    x, wt = s8(rng, (h, w, ci)), s8(rng, (co, kernel, kernel, ci))
    wa, wb = np.ascontiguousarray(wt[..., :k]), np.ascontiguousarray(wt[..., k:])
    bias = rng.integers(-5000, 5000, co).astype(np.int32)
    m = rng.uniform(1e-4, 3e-2, co).astype(F32)
    pad = (kernel - 1) // 2
    for xz, yz in ((-128, 0), (5, -128)):
        ref = conv2d.conv2d_split_s8(x, wa, wb, bias, m, xz, yz, stride, pad)
        same(ref, conv2d.conv2d_s8(x, wt, bias, m, xz, yz, stride, pad))
        same(nk.conv2d_split_s8(x, wa, wb, bias, m, xz, yz, stride, pad), ref)


@pytest.mark.parametrize(
    "shape,ci,k", [((5, 5), 13, 2), ((8, 8), 48, 6), ((1, 1), 160, 20), ((), 40, 40), ((4, 4), 24, 23)]
)
def test_conv2d_split_bwd_input_f32(nk, shape, ci, k):
    rng = np.random.default_rng(ci * 7 + k)
    co = 11
    g = rng.standard_normal(shape + (co,)).astype(F32) * F32(1e-2)
    wt = s8(rng, (co, ci))
    wa, wb = np.ascontiguousarray(wt[:, :k]), np.ascontiguousarray(wt[:, k:])
    s_w = rng.uniform(1e-3, 2e-2, co).astype(F32)
    ref = conv2d.conv2d_split_bwd_input_f32(g, wa, wb, s_w)
    same(ref, conv2d.conv2d_bwd_input_f32(g, wt, s_w))
    same(nk.conv2d_split_bwd_input_f32(g, wa, wb, s_w), ref)


WINDOWS = [(-3, -2, 6, 7), (0, 0, 5, 5), (4, 6, 6, 9), (-1, 3, 12, 4), (7, 7, 4, 4), (-2, -2, 14, 13)]


@pytest.mark.parametrize("row0,col0,rows,cols", WINDOWS)
def test_tile_kernels(nk, row0, col0, rows, cols):
    rng = np.random.default_rng(rows * 31 + cols)
    h, w, c = 10, 9, 5
    x = s8(rng, (h, w, c))
    t = M.tile_load_s8(x, row0, col0, rows, cols, -7)
    same(nk.tile_load_s8(x, row0, col0, rows, cols, -7), t)
    same(nk.tile_load_s8(x, row0, col0, rows, cols, -7, stream=True), t)  # a streamed sample: the same tile
    for r in range(rows):
        for s in range(cols):
            inside = 0 <= row0 + r < h and 0 <= col0 + s < w
            expect = x[row0 + r, col0 + s] if inside else np.full(c, -7, np.int8)
            assert np.array_equal(t[r, s], expect)
    junk = s8(rng, (rows, cols, c))
    f = M.tile_fill_s8(junk, row0, col0, h, w, 3)
    same(nk.tile_fill_s8(junk, row0, col0, h, w, 3), f)
    inside = M._window_mask(rows, cols, row0, col0, h, w)
    assert np.array_equal(f[inside], junk[inside]) and (f[~inside] == 3).all()
    # store a tile that lies inside y
    y = s8(rng, (h, w, c))
    r0, c0 = max(row0, 0), max(col0, 0)
    tr = s8(rng, (min(rows, h - r0), min(cols, w - c0), c))
    ref = M.tile_store_s8(tr, y, r0, c0)
    same(nk.tile_store_s8(tr, y, r0, c0), ref)
    assert np.array_equal(ref[r0 : r0 + tr.shape[0], c0 : c0 + tr.shape[1]], tr)
    mask = np.ones((h, w), bool)
    mask[r0 : r0 + tr.shape[0], c0 : c0 + tr.shape[1]] = False
    assert np.array_equal(ref[mask], y[mask])
    first = M.tile_store_first_s8(tr, r0, c0, h, w)
    assert np.array_equal(first[~mask], ref[~mask])


@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (5, 2), (7, 1)])
def test_tile_with_fill_equals_padded_conv(kernel, stride):
    """The property the patched stage rests on: an unpadded conv over a tile loaded with fill = x_zero gives
    the padded conv's outputs for the tile's output window."""
    rng = np.random.default_rng(kernel * 10 + stride)
    h = w = 13
    c = 4
    x = s8(rng, (h, w, c))
    wt = s8(rng, (kernel, kernel, c))
    bias = rng.integers(-2000, 2000, c).astype(np.int32)
    m = rng.uniform(1e-3, 2e-2, c).astype(F32)
    pad = (kernel - 1) // 2
    xz = 9
    full = conv2d.dwconv2d_s8(x, wt, bias, m, xz, -128, stride, pad)
    for a, b in ((0, 3), (2, 5), (4, full.shape[0])):
        r0, rows = a * stride - pad, (b - 1 - a) * stride + kernel
        t = M.tile_load_s8(x, r0, r0, rows, rows, xz)
        same(conv2d.dwconv2d_s8(t, wt, bias, m, xz, -128, stride, 0), full[a:b, a:b])


@pytest.mark.parametrize(
    "ho,wo,c,k", [(8, 8, 48, 3), (5, 7, 9, 5), (4, 4, 24, 7), (1, 1, 8, 3), (16, 16, 5, 3)]
)
def test_dwconv2d_bwd_input_inplace_f32(nk, ho, wo, c, k):
    rng = np.random.default_rng(ho * 100 + c + k)
    g = rng.standard_normal((ho, wo, c)).astype(F32) * F32(1e-2)
    wt = s8(rng, (k, k, c))
    s_w = rng.uniform(1e-3, 2e-2, c).astype(F32)
    pad = (k - 1) // 2
    ref = conv2d.dwconv2d_bwd_input_inplace_f32(g, wt, s_w, ho, wo, 1, pad)
    same(ref, conv2d.dwconv2d_bwd_input_f32(g, wt, s_w, ho, wo, 1, pad))
    same(nk.dwconv2d_bwd_input_inplace_f32(g, wt, s_w, ho, wo, 1, pad), ref)
    assert conv2d.dwconv2d_bwd_input_inplace_f32_scratch_bytes((ho, wo, c)) == 4 * ho * wo


@pytest.mark.parametrize(
    "h,w,c,k", [(6, 5, 7, 3), (8, 8, 16, 3), (7, 9, 5, 5), (3, 3, 48, 3), (1, 1, 4, 1), (9, 7, 3, 7)]
)
def test_dwconv2d_s8_inplace(nk, h, w, c, k):
    rng = np.random.default_rng(h * 31 + w * 7 + c + k)
    x, wt = s8(rng, (h, w, c)), s8(rng, (k, k, c))
    bias = rng.integers(-5000, 5000, c).astype(np.int32)
    m = rng.uniform(1e-4, 3e-2, c).astype(F32)
    pad = (k - 1) // 2
    for xz, yz in ((-128, 0), (5, -128), (0, 3)):
        ref = conv2d.dwconv2d_s8_inplace(x, wt, bias, m, xz, yz, 1, pad)
        same(ref, conv2d.dwconv2d_s8(x, wt, bias, m, xz, yz, 1, pad))
        same(nk.dwconv2d_s8_inplace(x, wt, bias, m, xz, yz, 1, pad), ref)
    assert conv2d.dwconv2d_s8_inplace_scratch_bytes((h, w, c)) == h * w
    with pytest.raises(ValueError):
        conv2d.dwconv2d_s8_inplace(x, wt, bias, m, 0, 0, 2, pad)


IRB_CASES = [  # (h, w, ci, e, co2, k, stride, split k1, rule, parts)
    (6, 6, 5, 12, 4, 3, 1, None, "nearest", "all"),
    (8, 7, 6, 10, 3, 5, 2, 4, "nearest", "all"),
    (5, 5, 4, 9, 5, 3, 2, None, "stochastic", "all"),
    (6, 6, 8, 16, 8, 3, 1, 3, "shadow", "all"),
    (4, 4, 3, 7, 2, 7, 1, None, "nearest", "none"),
    (7, 7, 6, 11, 4, 3, 1, None, "nearest", "nodx"),
    (10, 9, 6, 6, 5, 3, 1, None, "stochastic", "all"),  # > 64 positions, pixel count not a multiple of 4
    (13, 11, 21, 5, 9, 5, 2, 7, "shadow", "all"),  # stride 2, odd maps, split pw1
    (9, 9, 7, 4, 6, 7, 2, None, "nearest", "all"),  # 7x7 stride 2: taps outside the map
    # stride 1 kernel rows with no / few interior columns, 8-pixel pw2 blocks and tails, 8-channel pw1 rows
    (2, 2, 9, 3, 4, 7, 1, None, "nearest", "all"),  # map smaller than the kernel
    (1, 1, 8, 3, 3, 3, 1, None, "stochastic", "all"),  # one pixel
    (3, 9, 16, 5, 9, 5, 1, None, "nearest", "all"),  # 27 pixels: 8 + 8 + 8 + 3
    (11, 5, 13, 4, 17, 7, 1, 6, "stochastic", "all"),  # 7x7 stride 1, split pw1
    (4, 13, 12, 3, 6, 3, 1, None, "shadow", "nodx"),
    # signed zeros: gradients zero (+0 and -0) over whole regions, zero dw weights, no masks: the zero-padded
    # plane's extra +-0 terms must leave every sum (and the sign of an all-zero sum) as the skipped taps do
    (8, 8, 6, 6, 5, 3, 1, None, "nearest", "zeros"),
    (9, 8, 5, 5, 4, 5, 2, None, "stochastic", "zeros"),
    (6, 6, 4, 4, 3, 7, 1, None, "nearest", "zeros"),
]


@pytest.mark.parametrize("h,w,ci,e,co2,k,stride,k1,rule,parts", IRB_CASES)
def test_ir_block_bwd_f32(nk, h, w, ci, e, co2, k, stride, k1, rule, parts):
    rng = np.random.default_rng(h * 13 + e * 7 + co2 + k)
    pad = (k - 1) // 2
    ho, wo = K.out_size(h, k, stride, pad), K.out_size(w, k, stride, pad)
    g = (rng.standard_normal((ho, wo, co2)) * 0.02).astype(F32)
    w2, w_dw, w1 = s8(rng, (co2, e)), s8(rng, (k, k, e)), s8(rng, (e, ci))
    s_w2, s_w_dw, s_w1 = (rng.uniform(1e-3, 2e-2, n).astype(F32) for n in (co2, e, e))
    bits_dw = rng.integers(0, 256, K.mask_bytes(ho * wo * e)).astype(np.uint8)
    bits_pw1 = rng.integers(0, 256, K.mask_bytes(h * w * e)).astype(np.uint8)
    x1 = s8(rng, (h, w, ci))
    if parts == "zeros":
        g[: ho // 2] = 0.0
        g[ho // 2 :, : wo // 2] = -0.0
        w_dw[rng.random(w_dw.shape) < 0.3] = 0
        w2[:, ::2] = np.abs(w2[:, ::2])  # channels whose all-zero sums get -0 products
        bits_dw[:] = 255
        bits_pw1[:] = 255
    k_in = k1 if k1 else ci - 1
    w1a, w1b = (np.ascontiguousarray(w1[:, :k1]), np.ascontiguousarray(w1[:, k1:])) if k1 else (w1, None)

    def fresh():
        kw = dict(
            g=g,
            w2=w2,
            s_w2=s_w2,
            w_dw=w_dw,
            s_w_dw=s_w_dw,
            in_h=h,
            in_w=w,
            stride=stride,
            pad=pad,
            w1=w1a.copy(),
            w1_rest=w1b,
            s_w1=s_w1,
            neg_lr=-0.37,
        )
        if parts != "none":
            kw.update(
                bits_dw=bits_dw,
                bits_pw1=bits_pw1,
                b_dw=rng2.integers(-900, 900, e).astype(np.int32),
                qb_dw=s_w_dw * 300,
                b1=rng2.integers(-900, 900, e).astype(np.int32),
                qb1=s_w1 * 200,
                x1=x1,
                q1=(1 / s_w1).astype(F32),
                x_zero=-3,
                k_in=k_in,
                rule=rule,
            )
            if rule == "shadow":
                kw["shadow1"] = K.shadow_init(kw["w1"], k_in, False)
            if rule == "stochastic":
                kw["rng"] = K.Xorshift32(77)
        if parts == "nodx":
            kw.pop("s_w1")
        return kw

    rng2 = np.random.default_rng(1)
    ref_kw = fresh()
    ref = conv2d.ir_block_bwd_f32(**ref_kw)
    rng2 = np.random.default_rng(1)
    nat_kw = fresh()
    nat = nk.ir_block_bwd_f32(**nat_kw)
    assert len(ref) == len(nat)
    for a, b in zip(ref, nat, strict=True):
        same(b, a)
    if "rng" in ref_kw:
        assert ref_kw["rng"].state == nat_kw["rng"].state
    assert conv2d.ir_block_bwd_f32_scratch_bytes((ho, wo, co2), h, w) == 8 * (ho * wo + h * w)
