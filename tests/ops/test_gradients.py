"""The imported ops' float backward kernels (numpy) vs PyTorch autograd in float64 on the same real-valued
layer: any kernel, stride and TFLite's asymmetric SAME padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from tinytrain.ops import concat, conv, pad, pool

GEOMS = [
    ((3, 3), (2, 2), (0, 0, 1, 1), 8, 8),
    ((3, 3), (2, 2), (1, 1, 1, 1), 9, 9),
    ((2, 3), (1, 2), (0, 1, 1, 1), 7, 8),
    ((1, 5), (1, 2), (0, 0, 1, 2), 1, 32),
    ((5, 5), (1, 1), (2, 2, 2, 2), 6, 6),
]


def _close(a: np.ndarray, b: torch.Tensor) -> None:
    ref = b.detach().numpy()
    assert a.shape == ref.shape
    assert np.abs(a - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize(("k", "s", "p", "h", "w"), GEOMS)
@pytest.mark.parametrize("depthwise", [False, True])
def test_qconv_gradients_vs_torch(
    k: tuple[int, int], s: tuple[int, int], p: tuple[int, int, int, int], h: int, w: int, depthwise: bool
) -> None:
    rng = np.random.default_rng(h * w)
    ci = 4
    co = ci if depthwise else 5
    pt, pb, pl, pr = p
    ho, wo = (h + pt + pb - k[0]) // s[0] + 1, (w + pl + pr - k[1]) // s[1] + 1
    x8 = rng.integers(-128, 128, (h, w, ci)).astype(np.int8)
    x_zero = 3
    w8 = rng.integers(-127, 128, (k[0], k[1], ci) if depthwise else (co, k[0], k[1], ci)).astype(np.int8)
    s_w = rng.uniform(0.005, 0.02, co).astype(np.float32)
    g = rng.standard_normal((ho, wo, co)).astype(np.float32)
    # torch: y = conv(pad(x - x_zero), s_w * w), NCHW
    xt = torch.tensor((x8.astype(np.float64) - x_zero).transpose(2, 0, 1)[None], requires_grad=True)
    if depthwise:
        wr = w8.transpose(2, 0, 1)[:, None].astype(np.float64)  # [C, 1, kh, kw]
    else:
        wr = w8.transpose(0, 3, 1, 2).astype(np.float64)
    wt = torch.tensor(wr, requires_grad=True)
    sw = torch.tensor(s_w.astype(np.float64)).reshape(-1, 1, 1, 1)
    y = F.conv2d(F.pad(xt, (pl, pr, pt, pb)), wt * sw, stride=s, groups=ci if depthwise else 1)
    (y * torch.tensor(g.transpose(2, 0, 1)[None].astype(np.float64))).sum().backward()
    geo = {"stride_h": s[0], "stride_w": s[1], "pad_top": pt, "pad_left": pl}
    name = "qdwconv" if depthwise else "qconv"
    dx = getattr(conv, f"{name}_bwd_input_f32")(g, w8, s_w, h, w, **geo)
    _close(dx, xt.grad[0].permute(1, 2, 0))
    sums = getattr(conv, f"{name}_wgrad_f32")(g, x8, x_zero, ci, k[0], k[1], **geo)
    # the sums are dL/dW of the integer weights per unit of s_w: dL/d(W) = S * s_w
    wgrad = wt.grad[:, 0].permute(1, 2, 0) if depthwise else wt.grad.permute(0, 2, 3, 1)
    scale = s_w if depthwise else s_w[:, None, None, None]
    _close(sums * scale, wgrad)


@pytest.mark.parametrize(("k", "s", "p", "h", "w"), GEOMS)
def test_pool_gradients_vs_torch(
    k: tuple[int, int], s: tuple[int, int], p: tuple[int, int, int, int], h: int, w: int
) -> None:
    rng = np.random.default_rng(9)
    c = 3
    pt, pb, pl, _ = p
    ho, wo = (h + pt + pb - k[0]) // s[0] + 1, (w + pl + p[3] - k[1]) // s[1] + 1
    x8 = rng.permutation(np.arange(-128, 128))[: h * w * c].reshape(h, w, c).astype(np.int8)  # no ties
    if h * w * c > 256:
        x8 = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    g = rng.standard_normal((ho, wo, c)).astype(np.float32)
    xt = torch.tensor(x8.astype(np.float64), requires_grad=True)
    outs_avg, outs_max = [], []
    for oy in range(ho):
        for ox in range(wo):
            y0, x0 = oy * s[0] - pt, ox * s[1] - pl
            win = xt[max(y0, 0) : min(y0 + k[0], h), max(x0, 0) : min(x0 + k[1], w)].reshape(-1, c)
            outs_avg.append(win.mean(0))
            outs_max.append(win.max(0).values)
    gt = torch.tensor(g.reshape(-1, c).astype(np.float64))
    a = {
        "kernel_h": k[0],
        "kernel_w": k[1],
        "stride_h": s[0],
        "stride_w": s[1],
        "pad_top": pt,
        "pad_left": pl,
    }
    (torch.stack(outs_avg) * gt).sum().backward()
    _close(pool.avgpool_win_bwd_f32(g, h, w, **a), xt.grad)
    xt.grad = None
    (torch.stack(outs_max) * gt).sum().backward()
    if h * w * c <= 256:  # distinct values: torch's argmax is ours
        _close(pool.maxpool_bwd_f32(g, x8, **a), xt.grad)


def test_pad_and_concat_gradients_vs_torch() -> None:
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.standard_normal((4, 5, 3)), requires_grad=True)
    g = rng.standard_normal((7, 8, 3)).astype(np.float32)
    (
        F.pad(x.permute(2, 0, 1), (1, 2, 2, 1)).permute(1, 2, 0) * torch.tensor(g.astype(np.float64))
    ).sum().backward()
    _close(pad.pad_bwd_f32(g, 2, 1, 4, 5), x.grad)
    a = torch.tensor(rng.standard_normal((4, 5, 2)), requires_grad=True)
    b = torch.tensor(rng.standard_normal((4, 5, 3)), requires_grad=True)
    gc = rng.standard_normal((4, 5, 5)).astype(np.float32)
    (torch.cat([a, b], -1) * torch.tensor(gc.astype(np.float64))).sum().backward()
    _close(concat.concat2_bwd_f32(gc, 0, 0, 4, 5, 2, 0), a.grad)
    _close(concat.concat2_bwd_f32(gc, 0, 1, 4, 5, 3, 2), b.grad)


def test_depth_multiplier_gradients_vs_torch() -> None:
    rng = np.random.default_rng(4)
    h, w, ci, dm = 7, 6, 3, 2
    co = ci * dm
    x8 = rng.integers(-128, 128, (h, w, ci)).astype(np.int8)
    w8 = rng.integers(-127, 128, (3, 3, co)).astype(np.int8)
    s_w = rng.uniform(0.005, 0.02, co).astype(np.float32)
    g = rng.standard_normal((4, 3, co)).astype(
        np.float32
    )  # stride 2, TFLite SAME (pad top/left 1, bottom/right 1/0)
    xt = torch.tensor((x8.astype(np.float64) - 2).transpose(2, 0, 1)[None], requires_grad=True)
    wt = torch.tensor(w8.transpose(2, 0, 1)[:, None].astype(np.float64), requires_grad=True)
    y = F.conv2d(
        F.pad(xt, (0, 1, 1, 1)),
        wt * torch.tensor(s_w.astype(np.float64)).reshape(-1, 1, 1, 1),
        stride=2,
        groups=ci,
    )
    (y * torch.tensor(g.transpose(2, 0, 1)[None].astype(np.float64))).sum().backward()
    geo = {"stride_h": 2, "stride_w": 2, "pad_top": 1, "pad_left": 0, "depth_multiplier": dm}
    _close(conv.qdwconv_bwd_input_f32(g, w8, s_w, h, w, **geo), xt.grad[0].permute(1, 2, 0))
    sums = conv.qdwconv_wgrad_f32(g, x8, 2, co, 3, 3, **geo)
    _close(sums * s_w, wt.grad[:, 0].permute(1, 2, 0))


def test_avgpool_count_include_pad_vs_torch() -> None:
    rng = np.random.default_rng(6)
    x = torch.tensor(rng.standard_normal((1, 3, 7, 6)), requires_grad=True)
    y = F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=True)
    g = rng.standard_normal(y.shape[1:]).astype(np.float32)
    (y * torch.tensor(g[None].astype(np.float64))).sum().backward()
    a = {"kernel_h": 3, "kernel_w": 3, "stride_h": 2, "stride_w": 2, "pad_top": 1, "pad_left": 1}
    ours = pool.avgpool_win_bwd_f32(g.transpose(1, 2, 0).copy(), 7, 6, **a, count_include_pad=1)
    _close(ours, x.grad[0].permute(1, 2, 0))
