"""qlogistic (LOGISTIC) and qmul (MUL, per-channel broadcast): a squeeze-excite block. Host reference vs
TFLite Micro, C vs numpy, gradients vs torch, training (host-native and QEMU)."""

from __future__ import annotations

import ctypes as C
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.ops.nets import Net
from tests.ops.oracle import assert_exact
from tinytrain.ops import logistic, mul

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")


def se_net(classes: int | None = None, seed: int = 8) -> bytes:
    """conv -> squeeze-excite (MEAN, 1x1 conv RELU, 1x1 conv, LOGISTIC, MUL by the feature map)
    [-> MEAN -> dense]."""
    n = Net([1, 8, 8, 3], seed=seed).conv(8, 3, 3, act="RELU")
    feat, fshape = n.x, list(n.shape)
    n.mean(keep_dims=True).conv(4, 1, 1, act="RELU").conv(8, 1, 1, act="NONE")
    gate = n.b.tensor("model/se/Sigmoid", [1, 1, 1, 8], scale=1 / 256, zero=-128)
    n.b.op("LOGISTIC", [n.x], [gate])
    t = n.b.tensors[feat]
    y = n.b.tensor("model/se/mul", fshape, scale=t.scale[0] * 0.7, zero=t.zero[0])
    n.b.op("MUL", [feat, gate], [y], "MulOptions", FusedActivationFunction=0)
    n.x, n.shape = y, fshape
    if classes:
        n.mean().fc(classes)
    return n.build()


def test_squeeze_excite_exact(tmp_path: Path) -> None:
    g = assert_exact(se_net(), tmp_path)
    assert [op.kind for op in g.ops][-2:] == ["qlogistic", "qmul"]


def test_logistic_full_range_matches_float() -> None:
    x = np.arange(-128, 128, dtype=np.int8)
    p = logistic.params(0.06)
    y = logistic.logistic_s8(x, 3, **p)
    ref = np.clip(np.rint(256 / (1 + np.exp(-(x.astype(np.float64) - 3) * 0.06))) - 128, -128, 127)
    assert np.abs(y.astype(int) - ref).max() <= 1


@needs_gcc
def test_logistic_and_mul_native() -> None:
    from tinytrain.ops.native import OpsNative

    lib = OpsNative().lib
    x = np.arange(-128, 128, dtype=np.int8)
    for xs in (0.01, 0.06, 0.3):
        p = logistic.params(xs)
        y = np.zeros_like(x)
        lib.tt_logistic_s8(
            C.c_void_p(x.ctypes.data),
            C.c_int(x.size),
            C.c_int(-7),
            *[C.c_int(p[k]) for k in ("mult", "shift", "radius")],
            C.c_void_p(y.ctypes.data),
        )
        assert np.array_equal(y, logistic.logistic_s8(x, -7, **p))
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (5, 4, 6)).astype(np.int8)
    b = rng.integers(-128, 128, 6).astype(np.int8)
    attrs = {
        "a_zero": -3,
        "b_zero": -128,
        "y_zero": 5,
        "mult": 1518500250,
        "shift": -7,
        "act_min": -128,
        "act_max": 127,
    }
    ref = mul.mul_s8(a, b, **attrs)
    y = np.zeros_like(a)
    lib.tt_mul_s8(
        C.c_void_p(a.ctypes.data),
        C.c_void_p(b.ctypes.data),
        C.c_int(a.size),
        C.c_int(6),
        C.c_int(6),
        *[C.c_int(v) for v in attrs.values()],
        C.c_void_p(y.ctypes.data),
    )
    assert np.array_equal(y, ref) and len(np.unique(ref)) > 20
    g = rng.standard_normal(a.shape).astype(np.float32)
    for other, red in ((a, 1), (b, 0), (a, 0)):  # reduce: the gradient of the broadcast b, from a
        dref = mul.mul_bwd_f32(g, other, 0.02, -5, red)
        dx = np.zeros(dref.shape, np.float32)
        lib.tt_mul_bwd_f32(
            C.c_void_p(g.ctypes.data),
            C.c_int(g.size),
            C.c_int(6),
            C.c_void_p(other.ctypes.data),
            C.c_int(other.size),
            C.c_float(0.02),
            C.c_int(-5),
            C.c_int(red),
            C.c_void_p(dx.ctypes.data),
        )
        assert np.array_equal(dx, dref)
    yl = np.arange(-128, 128, dtype=np.int8)
    gl = rng.standard_normal(256).astype(np.float32)
    dx = np.zeros(256, np.float32)
    lib.tt_logistic_bwd_f32(
        C.c_void_p(gl.ctypes.data),
        C.c_void_p(yl.ctypes.data),
        C.c_int(256),
        C.c_float(1 / 256),
        C.c_int(-128),
        C.c_void_p(dx.ctypes.data),
    )
    assert np.array_equal(dx, logistic.logistic_bwd_f32(gl, yl, 1 / 256, -128))


def test_gradients_vs_torch() -> None:
    rng = np.random.default_rng(4)
    a8 = rng.integers(-128, 128, (5, 4, 6)).astype(np.int8)
    b8 = rng.integers(-128, 128, 6).astype(np.int8)
    g = rng.standard_normal(a8.shape).astype(np.float32)
    ar = torch.tensor(
        ((a8.astype(np.int32) + 3).astype(np.float32) * np.float32(0.03)).astype(np.float64),
        requires_grad=True,
    )
    br = torch.tensor(
        ((b8.astype(np.int32) + 128).astype(np.float32) * np.float32(1 / 256)).astype(np.float64),
        requires_grad=True,
    )
    (ar * br * torch.tensor(g.astype(np.float64))).sum().backward()
    da = mul.mul_bwd_f32(g, b8, 1 / 256, -128, 0)
    db = mul.mul_bwd_f32(g, a8, 0.03, -3, 1)
    assert np.abs(da - ar.grad.numpy()).max() <= 1e-5 * np.abs(ar.grad.numpy()).max()
    assert np.abs(db - br.grad.numpy()).max() <= 1e-5 * np.abs(br.grad.numpy()).max()
    # logistic: d sigma / dx = s (1 - s) at the output
    y8 = np.arange(-128, 128, dtype=np.int8)
    s = torch.tensor(((y8.astype(np.int32) + 128) / 256.0), requires_grad=False)
    x = torch.log(s / (1 - s)).clamp(-30, 30).requires_grad_(True)
    gl = rng.standard_normal(256).astype(np.float32)
    (torch.sigmoid(x) * torch.tensor(gl.astype(np.float64))).sum().backward()
    ours = logistic.logistic_bwd_f32(gl, y8, 1 / 256, -128)
    assert np.abs(ours[1:] - x.grad.numpy()[1:]).max() <= 1e-5


@needs_gcc
def test_squeeze_excite_trains_host_native(tmp_path: Path) -> None:
    from tests.ops.test_train_imported import _assert_matched, _config
    from tinytrain.emulate import emulate
    from tinytrain.models import import_model
    from tinytrain.models.importer import write_model_dir

    src = tmp_path / "se.tflite"
    src.write_bytes(se_net(classes=2))
    d = write_model_dir(import_model(src), tmp_path / "se")
    _assert_matched(emulate(_config(d, tmp_path, "full", "m7", "host")).record)


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="QEMU missing")
@pytest.mark.parametrize("board", ["m4", "m7"])
def test_squeeze_excite_and_hardswish_train_in_qemu(board: str, tmp_path: Path) -> None:
    """LOGISTIC, MUL and HARD_SWISH forward and backward kernels in QEMU, bit-exact with the host."""
    from tests.ops.test_train_imported import _assert_matched, _config
    from tinytrain.emulate import emulate
    from tinytrain.models import import_model
    from tinytrain.models.importer import write_model_dir

    n = Net([1, 8, 8, 3], seed=9).conv(8, 3, 3, (2, 2), act="NONE")
    t = n.b.tensors[n.x]
    hs = n.b.tensor("model/hard_swish/mul_1", list(n.shape), scale=t.scale[0] * 0.6, zero=-90)
    n.b.op("HARD_SWISH", [n.x], [hs])
    n.x = hs
    feat, fshape = n.x, list(n.shape)
    n.mean(keep_dims=True).conv(4, 1, 1, act="RELU").conv(8, 1, 1, act="NONE")
    gate = n.b.tensor("model/se/Sigmoid", [1, 1, 1, 8], scale=1 / 256, zero=-128)
    n.b.op("LOGISTIC", [n.x], [gate])
    y = n.b.tensor("model/se/mul", fshape, scale=0.05, zero=-10)
    n.b.op("MUL", [feat, gate], [y], "MulOptions", FusedActivationFunction=0)
    n.x, n.shape = y, fshape
    src = tmp_path / "se_hs.tflite"
    src.write_bytes(n.mean().fc(2).build())
    d = write_model_dir(import_model(src), tmp_path / "se_hs")
    _assert_matched(emulate(_config(d, tmp_path, "full", board, "qemu")).record)
