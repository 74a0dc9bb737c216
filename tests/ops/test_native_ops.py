"""Host-native C kernels of firmware/runtime/ops vs the numpy kernels of tinytrain/ops, bit for bit, on the
geometries the oracle tests cover (asymmetric SAME split, rectangular kernels and strides, partial
windows)."""

from __future__ import annotations

import ctypes as C
import shutil

import numpy as np
import pytest

from tinytrain.ops import concat, conv, mean, pad, pool, tflm
from tinytrain.ops.native import OpsNative, OpsNativeBackward

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")
GEOMS = [
    ((3, 3), (2, 2), (0, 0), 9, 9),
    ((3, 3), (2, 2), (0, 0), 8, 8),
    ((2, 3), (1, 2), (0, 1), 9, 8),
    ((1, 5), (1, 2), (0, 1), 1, 32),
    ((5, 5), (1, 1), (2, 2), 7, 7),
]


def _out(n: int, k: int, s: int, p: int) -> int:
    return max(1, -(-n // s)) if p else (n - k) // s + 1


@pytest.fixture(scope="module")
def lib() -> OpsNative:
    return OpsNative()


@pytest.mark.parametrize(("k", "s", "p", "h", "w"), GEOMS)
@pytest.mark.parametrize("depthwise", [False, True])
def test_qconv_native(
    lib: OpsNative,
    k: tuple[int, int],
    s: tuple[int, int],
    p: tuple[int, int],
    h: int,
    w: int,
    depthwise: bool,
) -> None:
    rng = np.random.default_rng(h * 7 + w)
    ci, co = 5, (5 if depthwise else 6)
    x = rng.integers(-128, 128, (h, w, ci)).astype(np.int8)
    wt = rng.integers(-127, 128, (k[0], k[1], ci) if depthwise else (co, k[0], k[1], ci)).astype(np.int8)
    mult, shift = tflm.conv_multipliers(0.05, rng.uniform(0.002, 0.02, co), 0.08)
    a = {
        "x_zero": -3,
        "y_zero": 4,
        "act_min": -128 + 10,
        "act_max": 120,
        "stride_h": s[0],
        "stride_w": s[1],
        "pad_top": p[0],
        "pad_left": p[1],
        "out_h": _out(h, k[0], s[0], p[0] + k[0] - 1),
        "out_w": _out(w, k[1], s[1], p[1] + k[1] - 1),
    }
    bias = rng.integers(-5000, 5000, co).astype(np.int32)
    fn, cfn = (conv.qdwconv_s8, lib.qdwconv_s8) if depthwise else (conv.qconv_s8, lib.qconv_s8)
    ref = fn(x, wt, bias, mult, shift, **a)
    assert np.array_equal(cfn(x, wt, bias, mult, shift, **a), ref)
    assert len(np.unique(ref)) > 10


@pytest.mark.parametrize(("k", "s", "p", "h", "w"), GEOMS)
@pytest.mark.parametrize("kernel", ["maxpool_s8", "avgpool_win_s8"])
def test_pool_native(
    lib: OpsNative, kernel: str, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int], h: int, w: int
) -> None:
    x = np.random.default_rng(1).integers(-128, 128, (h, w, 4)).astype(np.int8)
    a = {
        "kernel_h": k[0],
        "kernel_w": k[1],
        "stride_h": s[0],
        "stride_w": s[1],
        "pad_top": p[0],
        "pad_left": p[1],
        "out_h": _out(h, k[0], s[0], 1),
        "out_w": _out(w, k[1], s[1], 1),
        "act_min": -100,
        "act_max": 127,
    }
    ref = getattr(pool, kernel)(x, **a)
    assert np.array_equal(lib.pool(kernel, x, **a), ref)


@pytest.mark.parametrize(("h", "w", "scale_ratio"), [(5, 5, 1.0), (4, 6, 0.7), (1, 12, 2.3), (7, 3, 0.05)])
def test_mean_native(lib: OpsNative, h: int, w: int, scale_ratio: float) -> None:
    x = np.random.default_rng(2).integers(-128, 128, (h, w, 9)).astype(np.int8)
    m, s = tflm.quantize_multiplier(scale_ratio)
    assert np.array_equal(lib.mean_s8(x, -7, 3, m, s), mean.mean_s8(x, -7, 3, m, s))


def test_pad_and_concat_native(lib: OpsNative) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (4, 5, 3)).astype(np.int8)
    assert np.array_equal(lib.pad_s8(x, 1, 2, 0, 3, -9), pad.pad_s8(x, 1, 2, 0, 3, -9))
    for axis, shape_b in ((0, (4, 5, 2)), (1, (2, 5, 3)), (2, (4, 3, 3))):
        b = rng.integers(-128, 128, shape_b).astype(np.int8)
        assert np.array_equal(lib.concat2_s8(x, b, axis), concat.concat2_s8(x, b, axis))


@pytest.fixture(scope="module")
def blib() -> OpsNativeBackward:
    return OpsNativeBackward()


@pytest.mark.parametrize(("k", "s", "p", "h", "w"), GEOMS)
@pytest.mark.parametrize("depthwise", [False, True])
def test_qconv_backward_native(
    blib: OpsNativeBackward,
    k: tuple[int, int],
    s: tuple[int, int],
    p: tuple[int, int],
    h: int,
    w: int,
    depthwise: bool,
) -> None:
    rng = np.random.default_rng(h + 3 * w)
    ci, co = 5, (5 if depthwise else 6)
    ho, wo = _out(h, k[0], s[0], 1), _out(w, k[1], s[1], 1)
    g = rng.standard_normal((ho, wo, co)).astype(np.float32)
    wt = rng.integers(-127, 128, (k[0], k[1], ci) if depthwise else (co, k[0], k[1], ci)).astype(np.int8)
    s_w = rng.uniform(0.002, 0.02, co).astype(np.float32)
    geo = {"stride_h": s[0], "stride_w": s[1], "pad_top": p[0], "pad_left": p[1]}
    name = "qdwconv" if depthwise else "qconv"
    ref = getattr(conv, f"{name}_bwd_input_f32")(g, wt, s_w, h, w, **geo)
    assert np.array_equal(blib.bwd_input(f"{name}_bwd_input_f32", g, wt, s_w, h, w, **geo), ref)
    x = rng.integers(-128, 128, (h, w, ci)).astype(np.int8)
    k_in = 3
    ref = getattr(conv, f"{name}_wgrad_f32")(g, x, -4, k_in, k[0], k[1], **geo)
    got = blib.wgrad(f"{name}_wgrad_f32", g, x, -4, k_in, k[0], k[1], **geo)
    assert np.array_equal(got, ref) and np.abs(ref).max() > 0


@pytest.mark.parametrize(("k", "s", "p", "h", "w"), GEOMS)
def test_pool_backward_native(
    blib: OpsNativeBackward, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int], h: int, w: int
) -> None:
    rng = np.random.default_rng(4)
    ho, wo = _out(h, k[0], s[0], 1), _out(w, k[1], s[1], 1)
    g = rng.standard_normal((ho, wo, 4)).astype(np.float32)
    x = rng.integers(-3, 3, (h, w, 4)).astype(np.int8)  # many ties: the first maximum wins
    a = {
        "kernel_h": k[0],
        "kernel_w": k[1],
        "stride_h": s[0],
        "stride_w": s[1],
        "pad_top": p[0],
        "pad_left": p[1],
    }
    assert np.array_equal(blib.avgpool_win_bwd_f32(g, h, w, **a), pool.avgpool_win_bwd_f32(g, h, w, **a))
    assert np.array_equal(blib.maxpool_bwd_f32(g, x, **a), pool.maxpool_bwd_f32(g, x, **a))


def test_pad_and_concat_backward_native(blib: OpsNativeBackward) -> None:
    g = np.random.default_rng(5).standard_normal((7, 9, 3)).astype(np.float32)
    assert np.array_equal(blib.pad_bwd_f32(g, 1, 2, 4, 5), pad.pad_bwd_f32(g, 1, 2, 4, 5))
    for axis, (h, w, c), off in ((0, (7, 9, 2), 1), (1, (3, 9, 3), 4), (2, (7, 4, 3), 5)):
        assert np.array_equal(
            blib.concat2_bwd_f32(g, axis, 1, h, w, c, off), concat.concat2_bwd_f32(g, axis, 1, h, w, c, off)
        )


@pytest.mark.parametrize(("k", "s", "p", "h", "w"), GEOMS[:3])
def test_depth_multiplier_native(
    lib: OpsNative,
    blib: OpsNativeBackward,
    k: tuple[int, int],
    s: tuple[int, int],
    p: tuple[int, int],
    h: int,
    w: int,
) -> None:
    rng = np.random.default_rng(11)
    ci, dm = 3, 2
    co = ci * dm
    x = rng.integers(-128, 128, (h, w, ci)).astype(np.int8)
    wt = rng.integers(-127, 128, (k[0], k[1], co)).astype(np.int8)
    mult, shift = tflm.conv_multipliers(0.05, rng.uniform(0.002, 0.02, co), 0.08)
    bias = rng.integers(-5000, 5000, co).astype(np.int32)
    ho, wo = _out(h, k[0], s[0], 1), _out(w, k[1], s[1], 1)
    a = {
        "x_zero": -3,
        "y_zero": 4,
        "act_min": -128,
        "act_max": 127,
        "stride_h": s[0],
        "stride_w": s[1],
        "pad_top": p[0],
        "pad_left": p[1],
        "out_h": ho,
        "out_w": wo,
    }
    ref = conv.qdwconv_s8(x, wt, bias, mult, shift, **a, depth_multiplier=dm)
    assert np.array_equal(lib.qdwconv_s8(x, wt, bias, mult, shift, **a, depth_multiplier=dm), ref)
    g = rng.standard_normal((ho, wo, co)).astype(np.float32)
    s_w = rng.uniform(0.002, 0.02, co).astype(np.float32)
    geo = {"stride_h": s[0], "stride_w": s[1], "pad_top": p[0], "pad_left": p[1]}
    ref = conv.qdwconv_bwd_input_f32(g, wt, s_w, h, w, **geo, depth_multiplier=dm)
    assert ref.shape == (h, w, ci)
    assert np.array_equal(
        blib.bwd_input("qdwconv_bwd_input_f32", g, wt, s_w, h, w, **geo, depth_multiplier=dm), ref
    )
    ref = conv.qdwconv_wgrad_f32(g, x, -4, 4, k[0], k[1], **geo, depth_multiplier=dm)
    got = blib.wgrad("qdwconv_wgrad_f32", g, x, -4, 4, k[0], k[1], **geo, depth_multiplier=dm)
    assert np.array_equal(got, ref)


def test_ort_kernels_native(lib: OpsNative) -> None:
    """numerics "ort": float-requant conv / depthwise, MLAS QLinearAdd, global and windowed average pools,
    the re-quantizing LUT."""
    from tinytrain.ops import add, requant

    rng = np.random.default_rng(13)
    x = rng.integers(-128, 128, (7, 6, 4)).astype(np.int8)
    wt = rng.integers(-127, 128, (5, 3, 3, 4)).astype(np.int8)
    bias = rng.integers(-3000, 3000, 5).astype(np.int32)
    scale = conv.ort_scales(0.05, rng.uniform(0.002, 0.02, 5), 0.1)
    a = {
        "x_zero": 3,
        "y_zero": -2,
        "act_min": -128,
        "act_max": 127,
        "stride_h": 2,
        "stride_w": 1,
        "pad_top": 1,
        "pad_left": 1,
        "out_h": 4,
        "out_w": 6,
    }

    def run(name: str, *args: object, shape: tuple[int, ...]) -> np.ndarray:
        y = np.zeros(shape, np.int8)
        conv_args = [np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v for v in args]
        lib._call(name, *conv_args, y)
        return y

    tail = [
        a[k]
        for k in (
            "x_zero",
            "y_zero",
            "act_min",
            "act_max",
            "stride_h",
            "stride_w",
            "pad_top",
            "pad_left",
            "out_h",
            "out_w",
        )
    ]
    ref = conv.qconv_f_s8(x, wt, bias, scale, **a)
    got = run("qconv_f_s8", x, 7, 6, 4, wt, 5, 3, 3, bias, scale.astype(np.float32), *tail, shape=ref.shape)
    assert np.array_equal(got, ref) and len(np.unique(ref)) > 10
    wd = rng.integers(-127, 128, (3, 3, 4)).astype(np.int8)
    sd = conv.ort_scales(0.05, rng.uniform(0.002, 0.02, 4), 0.1)
    ref = conv.qdwconv_f_s8(x, wd, bias[:4], sd, **a)
    got = run(
        "qdwconv_f_s8",
        x,
        7,
        6,
        4,
        wd,
        3,
        3,
        bias[:4].copy(),
        sd.astype(np.float32),
        *tail,
        1,
        shape=ref.shape,
    )
    assert np.array_equal(got, ref)
    b = rng.integers(-128, 128, x.shape).astype(np.int8)
    p = add.ort_params(0.05, 0.07, 0.09, 3, -5)
    ref = add.qadd_ort_s8(x, b, **p, y_zero=4)
    got = run(
        "qadd_ort_s8", x, b, x.size, p["a_mult"], p["b_mult"], p["zconst"], p["shift"], 4, shape=x.shape
    )
    assert np.array_equal(got, ref)
    ref = mean.mean_f_s8(x, 3, -1, 0.0123)
    y = np.zeros((1, 1, 4), np.int8)
    lib.lib.tt_mean_f_s8(
        *[C.c_void_p(x.ctypes.data)],
        C.c_int(7),
        C.c_int(6),
        C.c_int(4),
        C.c_int(3),
        C.c_int(-1),
        C.c_float(0.0123),
        C.c_void_p(y.ctypes.data),
    )
    assert np.array_equal(y, ref)
    for cip in (0, 1):
        ref = pool.avgpool_f_s8(x, 3, 3, 2, 2, 1, 1, 4, 3, 3, -2, 0.05, 0.04, cip)
        y = np.zeros(ref.shape, np.int8)
        ints = [7, 6, 4, 3, 3, 2, 2, 1, 1, 4, 3, 3, -2]
        lib.lib.tt_avgpool_f_s8(
            C.c_void_p(x.ctypes.data),
            *[C.c_int(v) for v in ints],
            C.c_float(0.05),
            C.c_float(0.04),
            C.c_int(cip),
            C.c_void_p(y.ctypes.data),
        )
        assert np.array_equal(y, ref)
    tab = requant.table(0.05, 3, 0.08, -7)
    assert np.array_equal(run("lut_s8", x, x.size, tab, shape=x.shape), requant.lut_s8(x, tab))


@pytest.mark.parametrize(("k", "s", "p", "h", "w"), GEOMS)
def test_qconv_dsp_variant(
    k: tuple[int, int], s: tuple[int, int], p: tuple[int, int], h: int, w: int
) -> None:
    """The SIMD (SMLAD) accumulation path, emulated on the host (TT_EMULATE_DSP), equals the numpy kernel."""
    dsp = OpsNative("dsp")
    rng = np.random.default_rng(h * 5 + w)
    ci, co = 7, 6  # a run length that is not a multiple of 4: the SIMD loop and its scalar tail
    x = rng.integers(-128, 128, (h, w, ci)).astype(np.int8)
    wt = rng.integers(-128, 128, (co, k[0], k[1], ci)).astype(np.int8)
    mult, shift = tflm.conv_multipliers(0.05, rng.uniform(0.002, 0.02, co), 0.08)
    a = {
        "x_zero": 9,
        "y_zero": -4,
        "act_min": -128,
        "act_max": 127,
        "stride_h": s[0],
        "stride_w": s[1],
        "pad_top": p[0],
        "pad_left": p[1],
        "out_h": _out(h, k[0], s[0], 1),
        "out_w": _out(w, k[1], s[1], 1),
    }
    bias = rng.integers(-5000, 5000, co).astype(np.int32)
    assert np.array_equal(
        dsp.qconv_s8(x, wt, bias, mult, shift, **a), conv.qconv_s8(x, wt, bias, mult, shift, **a)
    )
