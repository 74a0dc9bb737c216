"""qhardswish (HARD_SWISH): host reference vs TFLite Micro, C vs numpy, gradient vs torch, training."""

from __future__ import annotations

import ctypes as C
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from tests.ops.nets import Net
from tests.ops.oracle import assert_exact
from tinytrain.ops import hardswish


@pytest.mark.parametrize("ratio", [0.6, 0.35, 1.3])
def test_hardswish_exact(ratio: float, tmp_path: Path) -> None:
    n = Net([1, 6, 6, 3], seed=3).conv(8, 3, 3, act="NONE")
    t = n.b.tensors[n.x]
    y = n.b.tensor("model/hard_swish/mul_1", list(n.shape), scale=t.scale[0] * ratio, zero=-90)
    n.b.op("HARD_SWISH", [n.x], [y])
    n.x = y
    g = assert_exact(n.build(), tmp_path)
    assert [op.kind for op in g.ops] == ["qconv", "qhardswish"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")
def test_hardswish_native() -> None:
    from tinytrain.ops.native import OpsNative

    lib = OpsNative().lib
    x = np.arange(-128, 128, dtype=np.int8)
    for xs, ys in ((0.05, 0.03), (0.2, 0.01), (0.01, 0.02)):
        p = hardswish.params(xs, ys)
        ref = hardswish.hardswish_s8(x, 5, -90, **p)
        y = np.zeros_like(x)
        args = [
            C.c_int(v)
            for v in (x.size, 5, -90, p["out_mult16"], p["out_exp"], p["relu_mult16"], p["relu_exp"])
        ]
        lib.tt_hardswish_s8(C.c_void_p(x.ctypes.data), *args, C.c_void_p(y.ctypes.data))
        assert np.array_equal(y, ref)
        g = np.random.default_rng(1).standard_normal(x.size).astype(np.float32)
        dref = hardswish.hardswish_bwd_f32(g, x, xs, 5)
        dx = np.zeros_like(g)
        lib.tt_hardswish_bwd_f32(
            C.c_void_p(g.ctypes.data),
            C.c_void_p(x.ctypes.data),
            C.c_int(x.size),
            C.c_float(xs),
            C.c_int(5),
            C.c_void_p(dx.ctypes.data),
        )
        assert np.array_equal(dx, dref)


def test_hardswish_gradient_vs_torch() -> None:
    x = np.arange(-128, 128, dtype=np.int8)
    real = ((x.astype(np.int32) - 5).astype(np.float32) * np.float32(0.05)).astype(
        np.float64
    )  # as the kernel
    xr = torch.tensor(real, requires_grad=True)
    g = np.random.default_rng(2).standard_normal(x.size).astype(np.float32)
    (F.hardswish(xr) * torch.tensor(g.astype(np.float64))).sum().backward()
    ours = hardswish.hardswish_bwd_f32(g, x, 0.05, 5)
    ref = xr.grad.numpy()
    assert np.abs(ours - ref).max() <= 1e-5 * np.abs(ref).max()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")
def test_hardswish_trains_host_native(tmp_path: Path) -> None:
    """A gradient through HARD_SWISH: scheme full, generated C (host-native) equals the host reference."""
    from tests.ops.test_train_imported import _assert_matched, _config
    from tinytrain.emulate import emulate
    from tinytrain.models import import_model
    from tinytrain.models.importer import write_model_dir

    n = Net([1, 8, 8, 3], seed=4).conv(6, 3, 3, (2, 2), act="NONE")
    t = n.b.tensors[n.x]
    y = n.b.tensor("model/hard_swish/mul_1", list(n.shape), scale=t.scale[0] * 0.6, zero=-90)
    n.b.op("HARD_SWISH", [n.x], [y])
    n.x = y
    src = tmp_path / "hs.tflite"
    src.write_bytes(n.mean().fc(2).build())
    d = write_model_dir(import_model(src), tmp_path / "hs")
    _assert_matched(emulate(_config(d, tmp_path, "full", "m7", "host")).record)
