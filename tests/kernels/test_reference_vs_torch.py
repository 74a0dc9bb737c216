"""The numpy reference kernels against independent float64 / PyTorch math: checks the spec itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tinytrain.kernels as K
from tinytrain.ops import avgpool, conv2d

F32 = np.float32


def _rel_close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-5) -> None:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(np.abs(b).max(), 1e-30)
    assert np.abs(a - b).max() <= rtol * scale, np.abs(a - b).max() / scale


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, np.float64))


@pytest.mark.parametrize(
    "k,stride,dw,ci,co,h",
    [
        (1, 1, False, 13, 7, 5),
        (3, 2, False, 3, 8, 9),
        (3, 1, True, 6, 6, 7),
        (5, 2, True, 5, 5, 10),
        (7, 1, True, 4, 4, 6),
    ],
)
def test_forward_vs_torch(k: int, stride: int, dw: bool, ci: int, co: int, h: int) -> None:
    rng = np.random.default_rng(k * 100 + stride + ci)
    pad = (k - 1) // 2
    x = rng.integers(-128, 128, (h, h, ci), dtype=np.int8)
    x_zero, y_zero = -5, 3
    s_x, s_y = 0.02, 0.05
    s_w = rng.uniform(0.001, 0.01, co).astype(F32)
    bias = rng.integers(-2000, 2000, co).astype(np.int32)
    m = K.requant_multipliers(s_x, s_w, s_y)
    xr = _t(x.astype(np.int32) - x_zero).permute(2, 0, 1)[None] * s_x
    if dw:
        w = rng.integers(-127, 128, (k, k, ci), dtype=np.int8)
        y = conv2d.dwconv2d_s8(x, w, bias, m, x_zero, y_zero, stride, pad)
        wr = _t(w).permute(2, 0, 1)[:, None] * _t(s_w)[:, None, None, None]
        ref = F.conv2d(xr, wr, _t(bias) * s_x * _t(s_w), stride, pad, groups=ci)
    else:
        w = rng.integers(-127, 128, (co, k, k, ci), dtype=np.int8)
        y = conv2d.conv2d_s8(x, w, bias, m, x_zero, y_zero, stride, pad)
        wr = _t(w).permute(0, 3, 1, 2) * _t(s_w)[:, None, None, None]
        ref = F.conv2d(xr, wr, _t(bias) * s_x * _t(s_w), stride, pad)
    q = torch.clamp(torch.round(ref / s_y) + y_zero, -128, 127)[0].permute(1, 2, 0).numpy()
    assert np.abs(y.astype(np.int32) - q).max() <= 1


def _conv_setup(rng: np.random.Generator, h: int, ci: int, co: int, k: int):
    x = rng.integers(-128, 128, (h, h, ci), dtype=np.int8)
    w = rng.integers(-127, 128, (co, k, k, ci), dtype=np.int8)
    s_w = rng.uniform(0.001, 0.02, co).astype(F32)
    return x, w, s_w


def test_conv1x1_bwd_input_vs_autograd() -> None:
    rng = np.random.default_rng(1)
    h, ci, co = 6, 19, 11
    _, w, s_w = _conv_setup(rng, h, ci, co, 1)
    g = rng.standard_normal((h, h, co)).astype(F32)
    dx = conv2d.conv2d_bwd_input_f32(g, w, s_w)
    xr = torch.zeros(1, ci, h, h, dtype=torch.float64, requires_grad=True)
    wr = _t(w).permute(0, 3, 1, 2) * _t(s_w)[:, None, None, None]
    F.conv2d(xr, wr).backward(_t(g).permute(2, 0, 1)[None])
    _rel_close(dx, xr.grad[0].permute(1, 2, 0).numpy())
    # classifier: a vector
    dv = conv2d.conv2d_bwd_input_f32(g[0, 0], w, s_w)
    np.testing.assert_array_equal(dv, dx[0, 0])


@pytest.mark.parametrize("k,stride,h", [(3, 1, 7), (3, 2, 8), (5, 2, 9), (7, 1, 6), (5, 1, 4)])
def test_dw_bwd_input_vs_autograd(k: int, stride: int, h: int) -> None:
    rng = np.random.default_rng(k + stride + h)
    c, pad = 7, (k - 1) // 2
    w = rng.integers(-127, 128, (k, k, c), dtype=np.int8)
    s_w = rng.uniform(0.001, 0.02, c).astype(F32)
    ho = K.out_size(h, k, stride, pad)
    g = rng.standard_normal((ho, ho, c)).astype(F32)
    dx = conv2d.dwconv2d_bwd_input_f32(g, w, s_w, h, h, stride, pad)
    xr = torch.zeros(1, c, h, h, dtype=torch.float64, requires_grad=True)
    wr = _t(w).permute(2, 0, 1)[:, None] * _t(s_w)[:, None, None, None]
    F.conv2d(xr, wr, None, stride, pad, groups=c).backward(_t(g).permute(2, 0, 1)[None])
    _rel_close(dx, xr.grad[0].permute(1, 2, 0).numpy())


@pytest.mark.parametrize(
    "k,stride,dw,h",
    [
        (1, 1, False, 5),
        (3, 2, False, 9),
        (3, 1, True, 6),
        (5, 2, True, 8),
        (7, 1, True, 5),
    ],
)
def test_wgrad_update_vs_autograd(k: int, stride: int, dw: bool, h: int) -> None:
    """Weight and bias gradients (through the update's delta with lr=-1, QAS off, shadow rule)."""
    rng = np.random.default_rng(k * 7 + h)
    pad = (k - 1) // 2
    ci = co = 6
    k_in = 4
    x_zero, s_x = 3, 0.03
    x = rng.integers(-128, 128, (h, h, ci), dtype=np.int8)
    ho = K.out_size(h, k, stride, pad)
    g = rng.standard_normal((ho, ho, co)).astype(F32)
    xr = (_t(x.astype(np.int32) - x_zero) * s_x).permute(2, 0, 1)[None]
    if dw:
        w = rng.integers(-127, 128, (k, k, ci), dtype=np.int8)
        wr = torch.zeros(ci, 1, k, k, dtype=torch.float64, requires_grad=True)
        F.conv2d(xr, wr, None, stride, pad, groups=ci).backward(_t(g).permute(2, 0, 1)[None])
        ref = wr.grad[:, 0].permute(1, 2, 0).numpy()[..., :k_in]  # dL/dW real = s_x * S
        shadow = np.zeros((k, k, k_in), F32)
        conv2d.dwconv2d_wgrad_update(
            g,
            x,
            x_zero,
            w.copy(),
            k_in,
            np.full(ci, s_x, F32),
            1.0,
            "shadow",
            shadow=shadow,
            stride=stride,
            pad=pad,
        )
    else:
        w = rng.integers(-127, 128, (co, k, k, ci), dtype=np.int8)
        wr = torch.zeros(co, ci, k, k, dtype=torch.float64, requires_grad=True)
        F.conv2d(xr, wr, None, stride, pad).backward(_t(g).permute(2, 0, 1)[None])
        ref = wr.grad.permute(0, 2, 3, 1).numpy()[..., :k_in]
        shadow = np.zeros((co, k, k, k_in), F32)
        conv2d.conv2d_wgrad_update(
            g,
            x[..., :k_in].copy(),
            x_zero,
            w.copy(),
            k_in,
            np.full(co, s_x, F32),
            1.0,
            "shadow",
            shadow=shadow,
            stride=stride,
            pad=pad,
        )
    _rel_close(shadow, ref)
    # bias gradient: sum over positions
    bias = np.zeros(co, np.int32)
    big = np.full(co, 1000.0, F32)
    conv2d.bias_grad_update(g, bias, big, 1.0)
    assert np.abs(bias - g.astype(np.float64).sum(axis=(0, 1)) * 1000).max() <= 0.51


def test_softmax_xent_vs_torch() -> None:
    rng = np.random.default_rng(3)
    for kk in (2, 10, 37):
        z = rng.integers(-128, 128, kk, dtype=np.int8)
        label = int(rng.integers(0, kk))
        g, loss = K.softmax_xent(z, 0.07, label)
        zr = (_t(z) * float(F32(0.07))).requires_grad_(True)
        lr = F.cross_entropy(zr[None], torch.tensor([label]))
        lr.backward()
        assert abs(float(loss) - lr.item()) <= 2e-6 * max(1.0, lr.item())
        assert np.abs(g - zr.grad.numpy()).max() <= 2e-6


def test_expf_logf_accuracy() -> None:
    x = -np.linspace(0, 86.9, 20001).astype(F32)
    e = K.tt_expf(x)
    ref = np.exp(x.astype(np.float64))
    normal = ref > 2e-38
    assert (np.abs(e[normal] - ref[normal]) / ref[normal]).max() < 4e-7
    assert K.tt_expf(np.array([-87.5, -1e30], F32)).tolist() == [0.0, 0.0]
    s = np.concatenate([np.linspace(1, 4, 5000), np.geomspace(4, 1e30, 5000)]).astype(F32)
    assert np.abs(K.tt_logf(s) - np.log(s.astype(np.float64))).max() < 1e-5


def test_update_rules_semantics() -> None:
    """Hand-computed cases: ties to even, ±256 delta clamp, ±127 weight clamp, floor + u, shadow."""
    vals = np.array([[0.5, 1.5, -300.0, 300.0, 2.5]], F32)  # g [P=1, Co=5]; x = 1 so S = g
    x = np.ones((1, 1), np.int8)
    w0 = np.array([0, 5, -127, 127, 10], np.int8).reshape(5, 1)
    w = w0.copy()
    conv2d.conv2d_wgrad_update(vals, x, 0, w, 1, np.ones(5, F32), 1.0)
    assert w.reshape(-1).tolist() == [0, 7, -127, 127, 12]
    w = w0.copy()
    rng = K.Xorshift32(5)
    u = K.Xorshift32(5).uniform(5)
    conv2d.conv2d_wgrad_update(vals, x, 0, w, 1, np.ones(5, F32), 1.0, "stochastic", rng)
    expect = np.clip(w0.reshape(-1) + np.floor(np.clip(vals[0], -256, 256) + u), -127, 127)
    assert w.reshape(-1).tolist() == expect.tolist()
    assert rng.state == K.Xorshift32(5).draw(5)[-1]
    w = w0.copy()
    sh = K.shadow_init(w, 1)
    conv2d.conv2d_wgrad_update(vals, x, 0, w, 1, np.ones(5, F32), 1.0, "shadow", shadow=sh)
    assert sh.reshape(-1).tolist() == [0.5, 6.5, -427.0, 427.0, 12.5]
    assert w.reshape(-1).tolist() == [0, 6, -127, 127, 12]


def test_mask_and_small_kernels() -> None:
    y = np.array([-128, 0, 127, 5, 126, -127, 127, 1, -128, 3], np.int8)
    bits = K.mask_s8(y)
    assert bits.tolist() == [0b10111010, 0b00000010]
    g = np.arange(10, dtype=F32) - 4
    np.testing.assert_array_equal(K.apply_mask_f32(g, bits), np.where((y != -128) & (y != 127), g, 0))
    dx = avgpool.avgpool_bwd_f32(np.array([3.0, -6.0], F32), 3, 5)
    assert dx.shape == (3, 5, 2) and dx[2, 4, 1] == F32(-6.0) * F32(1 / 15)
    np.testing.assert_array_equal(K.add_f32(g, g), g * 2)
    assert K.scratch_bytes("conv2d_wgrad_update") == 0


def test_xorshift_sequence() -> None:
    r = K.Xorshift32(1)
    assert [r.next() for _ in range(3)] == [270369, 67634689, 2647435461]
    a, b = K.Xorshift32(99), K.Xorshift32(99)
    np.testing.assert_array_equal(a.draw(1000), [b.next() for _ in range(1000)])
    assert a.state == b.state
