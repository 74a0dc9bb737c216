"""Host-native C kernels (both the portable and the emulated-DSP paths) vs the numpy reference: bit-exact."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import tinytrain.kernels as K
from tinytrain import native
from tinytrain.kernels.fma import fma_mode
from tinytrain.ops import avgpool, conv2d, residual

F32 = np.float32
# the two device code paths, each under the default fused contract and the two-rounding option (-nofma)
VARIANTS = ["portable", "dsp", "portable-nofma", "dsp-nofma"]


@pytest.fixture(scope="module", params=VARIANTS)
def nk(request: pytest.FixtureRequest) -> Iterator[native.NativeKernels]:
    with fma_mode(not request.param.endswith("-nofma")):  # the reference runs the C build's contract
        yield native.load(request.param)


def same(a: np.ndarray, b: np.ndarray) -> None:
    """Identical shape, dtype and bits (floats compared as bit patterns: -0.0 != +0.0, NaN == same NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    if a.dtype == np.float32:
        a, b = a.view(np.uint32), b.view(np.uint32)
    if not np.array_equal(a, b):
        bad = np.argwhere(a != b)
        raise AssertionError(
            f"{len(bad)} of {a.size} differ, first at {bad[0].tolist()}: {a[tuple(bad[0])]} "
            f"vs {b[tuple(bad[0])]}"
        )


def s8(rng: np.random.Generator, shape: tuple[int, ...], lo: int = -128, hi: int = 127) -> np.ndarray:
    return rng.integers(lo, hi + 1, shape, dtype=np.int8)


CONV_CASES = [  # (h, w, ci, co, k, stride)
    (5, 5, 13, 7, 1, 1),
    (8, 8, 16, 24, 1, 1),
    (1, 1, 37, 10, 1, 1),
    (3, 4, 5, 3, 1, 1),
    (7, 7, 3, 8, 3, 2),
    (9, 6, 3, 5, 3, 1),
    (8, 8, 4, 6, 3, 2),
    (6, 5, 7, 3, 5, 2),
]


@pytest.mark.parametrize("h,w,ci,co,k,stride", CONV_CASES)
def test_conv2d_s8(nk: native.NativeKernels, h: int, w: int, ci: int, co: int, k: int, stride: int) -> None:
    rng = np.random.default_rng(h * 1000 + ci * 10 + k)
    x, wt = s8(rng, (h, w, ci)), s8(rng, (co, k, k, ci))
    bias = rng.integers(-5000, 5000, co).astype(np.int32)
    m = rng.uniform(1e-4, 3e-2, co).astype(F32)  # large multipliers saturate often: clamps exercised
    for xz, yz in ((-128, 0), (5, -128), (0, 17)):
        pad = (k - 1) // 2
        same(
            nk.conv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
            conv2d.conv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
        )


DW_CASES = [
    (5, 5, 7, 3, 1),
    (8, 8, 16, 3, 2),
    (7, 9, 9, 5, 1),
    (10, 10, 6, 5, 2),
    (6, 6, 13, 7, 1),
    (9, 9, 4, 7, 2),
    (4, 4, 24, 3, 1),
    (3, 3, 5, 7, 1),
    (1, 1, 8, 3, 1),
]


@pytest.mark.parametrize("h,w,c,k,stride", DW_CASES)
def test_dwconv2d_s8(nk: native.NativeKernels, h: int, w: int, c: int, k: int, stride: int) -> None:
    rng = np.random.default_rng(h * 100 + c + k * 7 + stride)
    x, wt = s8(rng, (h, w, c)), s8(rng, (k, k, c))
    bias = rng.integers(-3000, 3000, c).astype(np.int32)
    m = rng.uniform(1e-3, 5e-2, c).astype(F32)
    pad = (k - 1) // 2
    for xz, yz in ((-128, -128), (3, 0)):
        same(
            nk.dwconv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
            conv2d.dwconv2d_s8(x, wt, bias, m, xz, yz, stride, pad),
        )


def test_rne_ties_in_requant(nk: native.NativeKernels) -> None:
    """Multiplier 0.5 on odd accumulators lands exactly on .5: ties to even on both sides."""
    x = np.arange(-128, 128, dtype=np.int8).reshape(16, 16, 1)
    wt = np.ones((1, 1, 1, 1), np.int8)
    m = np.array([0.5], F32)
    bias = np.array([0], np.int32)
    y = nk.conv2d_s8(x, wt, bias, m, 0, 0)
    same(y, conv2d.conv2d_s8(x, wt, bias, m, 0, 0))
    assert y[0, 1, 0] == -64 and y[0, 3, 0] == -62  # -127/2 -> -64 (even), -125/2 -> -62


def test_add_avgpool_slice(nk: native.NativeKernels) -> None:
    rng = np.random.default_rng(5)
    for shape in ((3, 5, 7), (8, 8, 16), (1, 1, 3)):
        a, b = s8(rng, shape), s8(rng, shape)
        for fa, fb in ((0.7, 1.3), (3.0, 2.5), (0.5, 0.5)):
            same(nk.add_s8(a, b, fa, fb, -3, 10, -128), residual.add_s8(a, b, F32(fa), F32(fb), -3, 10, -128))
        same(nk.avgpool_s8(a), avgpool.avgpool_s8(a))
        same(nk.slice_channels_s8(a, 2), K.slice_channels_s8(a, 2))
    # avgpool ties: sums that are exact halves, negative and positive
    for n in (2, 4):
        for s in range(-20, 21):
            x = np.zeros((1, n, 1), np.int8)
            x[0, 0, 0] = s
            same(nk.avgpool_s8(x), avgpool.avgpool_s8(x))


def test_expf_logf_bits(nk: native.NativeKernels) -> None:
    rng = np.random.default_rng(9)
    x = np.concatenate([-rng.uniform(0, 90, 3000), -np.linspace(0, 1, 500), [0.0, -87.0, -86.99, -87.01]])
    x = x.astype(F32)
    same(nk.tt_expf(x), K.tt_expf(x))
    s = np.concatenate([rng.uniform(1, 3, 2000), np.geomspace(1, 1e6, 2000), [1.0, 2.0, 1.9999999]])
    s = s.astype(F32)
    same(nk.tt_logf(s), K.tt_logf(s))


def test_softmax_xent(nk: native.NativeKernels) -> None:
    rng = np.random.default_rng(11)
    for k in (2, 5, 10, 37, 100):
        for scale in (0.01, 0.1, 0.9):
            z = s8(rng, (k,))
            label = int(rng.integers(0, k))
            g1, l1 = nk.softmax_xent(z, scale, label)
            g2, l2 = K.softmax_xent(z, F32(scale), label)
            same(g1, g2)
            same(np.array([l1], F32), np.array([l2], F32))


def test_masks(nk: native.NativeKernels) -> None:
    rng = np.random.default_rng(12)
    for n in (1, 7, 8, 9, 64, 1001):
        y = rng.choice(np.array([-128, 127, 0, 5, -127, 126], np.int8), n)
        bits = nk.mask_s8(y)
        same(bits, K.mask_s8(y))
        g = rng.standard_normal(n).astype(F32)
        g[::5] = -0.0
        same(nk.apply_mask_f32(g, bits), K.apply_mask_f32(g, bits))


def test_small_float_kernels(nk: native.NativeKernels) -> None:
    rng = np.random.default_rng(13)
    for h, w, c in ((1, 1, 5), (4, 4, 13), (7, 3, 8), (6, 6, 1)):
        g = rng.standard_normal(c).astype(F32)
        same(nk.avgpool_bwd_f32(g, h, w), avgpool.avgpool_bwd_f32(g, h, w))
        a, b = rng.standard_normal((h, w, c)).astype(F32), rng.standard_normal((h, w, c)).astype(F32)
        same(nk.add_f32(a, b), K.add_f32(a, b))


@pytest.mark.parametrize(
    "shape,ci",
    [
        ((5, 5, 7), 13),
        ((8, 8, 24), 16),
        ((1, 1, 10), 37),
        ((3,), 6),
        ((3, 3, 5), 3),
        ((1, 7, 9), 1),
    ],
)
def test_conv2d_bwd_input(nk: native.NativeKernels, shape: tuple[int, ...], ci: int) -> None:
    rng = np.random.default_rng(sum(shape) + ci)
    co = shape[-1]
    g = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3, shape)).astype(F32)
    wt = s8(rng, (co, 1, 1, ci))
    s_w = rng.uniform(1e-3, 1e-1, co).astype(F32)
    same(nk.conv2d_bwd_input_f32(g, wt, s_w), conv2d.conv2d_bwd_input_f32(g, wt, s_w))
    same(nk.conv2d_bwd_input_f32(g, wt.reshape(co, ci), s_w), conv2d.conv2d_bwd_input_f32(g, wt, s_w))


@pytest.mark.parametrize("h,w,c,k,stride", DW_CASES)
def test_dwconv2d_bwd_input(nk: native.NativeKernels, h: int, w: int, c: int, k: int, stride: int) -> None:
    rng = np.random.default_rng(h * 7 + c + k + stride)
    pad = (k - 1) // 2
    ho, wo = K.out_size(h, k, stride, pad), K.out_size(w, k, stride, pad)
    g = rng.standard_normal((ho, wo, c)).astype(F32)
    wt = s8(rng, (k, k, c))
    s_w = rng.uniform(1e-3, 1e-1, c).astype(F32)
    same(
        nk.dwconv2d_bwd_input_f32(g, wt, s_w, h, w, stride, pad),
        conv2d.dwconv2d_bwd_input_f32(g, wt, s_w, h, w, stride, pad),
    )


def _check_update(
    nk: native.NativeKernels,
    fn: str,
    g: np.ndarray,
    x: np.ndarray,
    xz: int,
    wt: np.ndarray,
    k_in: int,
    q: np.ndarray,
    stride: int,
    pad: int,
    n_upd: int,
) -> None:
    for rule in K.RULES:
        for neg_lr in (-0.05, -3.0, -1e3):  # -1e3 pushes deltas past the ±256 clamp and weights into ±127
            w1, w2 = wt.copy(), wt.copy()
            r1, r2 = K.Xorshift32(777), K.Xorshift32(777)
            sh1 = K.shadow_init(wt, k_in) if rule == "shadow" else None
            sh2 = sh1.copy() if sh1 is not None else None
            if sh1 is not None:
                assert sh1.size == n_upd
            getattr(nk, fn)(g, x, xz, w1, k_in, q, neg_lr, rule, r1, sh1, stride, pad)
            getattr(conv2d, fn)(g, x, xz, w2, k_in, q, neg_lr, rule, r2, sh2, stride, pad)
            same(w1, w2)
            assert r1.state == r2.state
            if rule == "stochastic":
                assert r2.state == K.Xorshift32(777).draw(n_upd)[-1]
            if sh1 is not None:
                same(sh1, sh2)
            assert np.array_equal(w1[..., k_in:], wt[..., k_in:])  # frozen channels untouched


@pytest.mark.parametrize(
    "h,w,ci,co,k,stride,k_in,x_c",
    [
        (5, 5, 13, 7, 1, 1, 13, 13),
        (8, 8, 16, 24, 1, 1, 4, 4),
        (4, 4, 24, 10, 1, 1, 6, 24),
        (1, 1, 37, 10, 1, 1, 37, 37),
        (3, 3, 10, 5, 1, 1, 3, 5),
        (7, 7, 3, 8, 3, 2, 3, 3),
        (6, 5, 3, 4, 3, 1, 3, 3),
        (9, 9, 5, 3, 5, 2, 2, 5),
    ],
)
def test_conv2d_wgrad_update(
    nk: native.NativeKernels, h: int, w: int, ci: int, co: int, k: int, stride: int, k_in: int, x_c: int
) -> None:
    rng = np.random.default_rng(h + ci * 3 + co + k_in)
    pad = (k - 1) // 2
    ho, wo = K.out_size(h, k, stride, pad), K.out_size(w, k, stride, pad)
    g = rng.standard_normal((ho, wo, co)).astype(F32)
    x = s8(rng, (h, w, x_c))
    wt = s8(rng, (co, k, k, ci), -127, 127)
    wt.flat[::7] = 127
    q = rng.uniform(0.1, 2.0, co).astype(F32)
    _check_update(nk, "conv2d_wgrad_update", g, x, 3, wt, k_in, q, stride, pad, co * k * k * k_in)


def test_classifier_wgrad_vector(nk: native.NativeKernels) -> None:
    rng = np.random.default_rng(21)
    g = rng.standard_normal(10).astype(F32)
    x = s8(rng, (1, 1, 37))
    wt = s8(rng, (10, 37), -127, 127)
    _check_update(nk, "conv2d_wgrad_update", g, x.reshape(-1), -128, wt, 19, np.ones(10, F32), 1, 0, 190)


@pytest.mark.parametrize(
    "h,w,c,k,stride,k_in",
    [
        (5, 5, 7, 3, 1, 7),
        (8, 8, 16, 3, 2, 8),
        (7, 9, 9, 5, 1, 5),
        (10, 10, 6, 5, 2, 6),
        (6, 6, 13, 7, 1, 13),
        (9, 9, 4, 7, 2, 1),
        (4, 4, 24, 3, 1, 24),
    ],
)
def test_dwconv2d_wgrad_update(
    nk: native.NativeKernels, h: int, w: int, c: int, k: int, stride: int, k_in: int
) -> None:
    rng = np.random.default_rng(h + c * 3 + k + k_in)
    pad = (k - 1) // 2
    ho, wo = K.out_size(h, k, stride, pad), K.out_size(w, k, stride, pad)
    g = rng.standard_normal((ho, wo, c)).astype(F32)
    for x_c in (k_in, c):
        x = s8(rng, (h, w, x_c))
        wt = s8(rng, (k, k, c), -127, 127)
        q = rng.uniform(0.1, 2.0, c).astype(F32)
        _check_update(nk, "dwconv2d_wgrad_update", g, x, -7, wt, k_in, q, stride, pad, k * k * k_in)


def test_bias_grad_update(nk: native.NativeKernels) -> None:
    rng = np.random.default_rng(22)
    for shape in ((10,), (4, 4, 13), (8, 8, 3)):
        co = shape[-1]
        g = rng.standard_normal(shape).astype(F32)
        b0 = rng.integers(-(2**31), 2**31 - 1, co, dtype=np.int64).astype(np.int32)
        b0[0], b0[-1] = 2**31 - 1, -(2**31)
        for neg_lr in (-0.01, -1e7, 1e7):
            qb = rng.uniform(1, 100, co).astype(F32)
            b1, b2 = b0.copy(), b0.copy()
            nk.bias_grad_update(g, b1, qb, neg_lr)
            conv2d.bias_grad_update(g, b2, qb, F32(neg_lr))
            same(b1, b2)


def test_xorshift_matches(nk: native.NativeKernels) -> None:
    r = K.Xorshift32(0xDEADBEEF)
    s = 0xDEADBEEF
    for _ in range(100):
        s = nk.xorshift32(s)
        assert s == r.next()


@pytest.mark.parametrize(
    "dw,h,c,k,stride,k_in",
    [
        (False, 5, 13, 1, 1, 6),
        (False, 7, 3, 3, 2, 3),
        (True, 6, 9, 3, 1, 9),
        (True, 9, 6, 5, 2, 5),
    ],
)
def test_split_kernels(
    nk: native.NativeKernels, dw: bool, h: int, c: int, k: int, stride: int, k_in: int
) -> None:
    """Split (reordering off) kernels: C vs numpy, and split == fused bit for bit."""

    rng = np.random.default_rng(h + c + k)
    pad = (k - 1) // 2
    ho = K.out_size(h, k, stride, pad)
    co = c if dw else 5
    g = rng.standard_normal((ho, ho, co)).astype(F32)
    x = s8(rng, (h, h, c))
    q = rng.uniform(0.1, 2.0, co).astype(F32)
    wt = s8(rng, (k, k, c) if dw else (co, k, k, c), -127, 127)
    pre = "dw" if dw else ""
    s1 = getattr(nk, f"{pre}conv2d_wgrad_f32")(g, x, 4, k_in, k, stride, pad)
    s2 = getattr(conv2d, f"{pre}conv2d_wgrad_f32")(g, x, 4, k_in, k, stride, pad)
    same(s1, s2)
    for rule in K.RULES:
        ws = [wt.copy() for _ in range(3)]
        rs = [K.Xorshift32(31) for _ in range(3)]
        shs = [K.shadow_init(wt, k_in) if rule == "shadow" else None for _ in range(3)]
        getattr(nk, f"{pre}conv2d_weight_update")(s1, ws[0], k_in, q, -0.9, rule, rs[0], shs[0])
        getattr(conv2d, f"{pre}conv2d_weight_update")(s2, ws[1], k_in, q, F32(-0.9), rule, rs[1], shs[1])
        getattr(conv2d, f"{pre}conv2d_wgrad_update")(
            g, x, 4, ws[2], k_in, q, F32(-0.9), rule, rs[2], shs[2], stride, pad
        )
        same(ws[0], ws[1])
        same(ws[1], ws[2])
        assert rs[0].state == rs[1].state == rs[2].state
        if rule == "shadow":
            same(shs[0], shs[1])
            same(shs[1], shs[2])
    b1 = nk.bias_grad_f32(g)
    same(b1, conv2d.bias_grad_f32(g))
    bias = [rng.integers(-1000, 1000, co).astype(np.int32)] * 3
    bias = [b.copy() for b in bias]
    qb = rng.uniform(10, 100, co).astype(F32)
    nk.bias_update(b1, bias[0], qb, -0.3)
    conv2d.bias_update(b1, bias[1], qb, F32(-0.3))
    conv2d.bias_grad_update(g, bias[2], qb, F32(-0.3))
    same(bias[0], bias[1])
    same(bias[1], bias[2])
