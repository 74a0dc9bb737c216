"""Test helpers: small random int8 graphs, a local classifier-head replacement, and a PyTorch autograd
twin of a graph for gradient checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.ir import Graph, Op, Tensor
from tinytrain.reference.inference import run_forward
from tinytrain.reference.training import Trainer


def _conv(
    tensors: dict[str, Tensor],
    ops: list[Op],
    rng: np.random.Generator,
    name: str,
    src: str,
    cout: int,
    k: int,
    stride: int,
    depthwise: bool,
    y_zero: int,
    out_name: str | None = None,
    w_unit: float = 0.01,
) -> str:
    x = tensors[src]
    cin = x.shape[0]
    pad = (k - 1) // 2
    h = (x.shape[1] + 2 * pad - k) // stride + 1
    w = rng.integers(-100, 101, size=(cout, 1 if depthwise else cin, k, k)).astype(np.int8)
    w_scales = (rng.uniform(0.5, 1.5, size=cout) * w_unit).astype(np.float32)
    fan_in = (1 if depthwise else cin) * k * k
    # typical |acc| ~ 60 * 45 * sqrt(fan_in); map it to ~50 output steps (some saturation, not all)
    y_scale = float(x.scale * float(np.median(w_scales)) * 60 * 45 * np.sqrt(fan_in) / 50)
    bias = rng.integers(-3000, 3001, size=cout).astype(np.int32)
    out = Tensor(out_name or f"{name}.out", (cout, h, h), y_scale, y_zero)
    tensors[out.name] = out
    ops.append(
        Op(
            name,
            "conv2d",
            [src],
            out.name,
            {
                "kernel": k,
                "stride": stride,
                "padding": pad,
                "depthwise": depthwise,
                "x_scale": x.scale,
                "x_zero": x.zero,
            },
            {"weight": w, "bias": bias, "w_scales": w_scales},
        )
    )
    return out.name


def random_graph(
    seed: int = 0,
    resolution: int = 12,
    classes: int = 5,
    stem: int = 8,
    blocks: list[dict[str, Any]] | None = None,
) -> Graph:
    """stem 3x3 s2 -> blocks (expand pointwise1 | none, depthwise k/stride, pointwise2, residual when the
    shapes allow) -> global pool -> classifier. Each block: {"expand": e, "k": k, "stride": s, "out": c}."""
    rng = np.random.default_rng(seed)
    tensors = {"input": Tensor("input", (3, resolution, resolution), 1 / 64, 0)}
    ops: list[Op] = []
    cur = _conv(tensors, ops, rng, "first_conv", "input", stem, 3, 2, False, -128)
    for i, blk in enumerate(blocks or [{"expand": 2, "k": 3, "stride": 1, "out": stem}]):
        block_in = cur
        cin = tensors[cur].shape[0]
        hidden = cin * blk.get("expand", 1)
        if blk.get("expand", 1) != 1:
            cur = _conv(tensors, ops, rng, f"blocks.{i}.pointwise1", cur, hidden, 1, 1, False, -128)
        cur = _conv(
            tensors,
            ops,
            rng,
            f"blocks.{i}.depthwise",
            cur,
            hidden,
            blk.get("k", 3),
            blk.get("stride", 1),
            True,
            -128,
        )
        cur = _conv(
            tensors,
            ops,
            rng,
            f"blocks.{i}.pointwise2",
            cur,
            blk.get("out", cin),
            1,
            1,
            False,
            int(rng.integers(-10, 10)),
        )
        if tensors[cur].shape == tensors[block_in].shape and blk.get("residual", True):
            a, b = tensors[cur], tensors[block_in]
            name = f"blocks.{i}.add"
            tensors[name] = Tensor(
                name, a.shape, float(max(a.scale, b.scale) * 1.3), int(rng.integers(-5, 5))
            )
            ops.append(Op(f"blocks.{i}.residual", "add", [cur, block_in], name))
            cur = name
    c = tensors[cur].shape[0]
    tensors["pool.out"] = Tensor("pool.out", (c, 1, 1), tensors[cur].scale, tensors[cur].zero)
    ops.append(Op("pool", "avgpool", [cur], "pool.out"))
    _conv(
        tensors, ops, rng, "classifier", "pool.out", classes, 1, 1, False, 0, out_name="logits", w_unit=2e-4
    )
    g = Graph(f"random{seed}", tensors, ops, "input", "logits", {})
    g.validate()
    return g


def with_head(graph: Graph, classes: int, seed: int = 0) -> Graph:
    """The graph with a fresh classifier for `classes` classes (small random int8 weights, zero bias)."""
    rng = np.random.default_rng(seed)
    cls = graph.producer(graph.output)
    assert cls is not None
    cin = graph.tensors[cls.inputs[0]].shape[0]
    w = rng.integers(-20, 21, size=(classes, cin, 1, 1)).astype(np.int8)
    ws = np.full(classes, 0.01, np.float32)
    params = {"weight": w, "bias": np.zeros(classes, np.int32), "w_scales": ws}
    head = Op(cls.name, "conv2d", list(cls.inputs), cls.output, dict(cls.attrs), params)
    tensors = dict(graph.tensors)
    old = tensors[graph.output]
    x_scale = float(cls.attrs["x_scale"])
    tensors[graph.output] = Tensor(old.name, (classes, 1, 1), x_scale * 0.01 * 20 * 30 * np.sqrt(cin) / 40, 0)
    g = Graph(
        graph.name,
        tensors,
        [head if op is cls else op for op in graph.ops],
        graph.input,
        graph.output,
        dict(graph.meta),
    )
    g.validate()
    return g


def random_input(graph: Graph, seed: int = 0) -> np.ndarray:
    c, h, w = graph.tensors[graph.input].shape
    return np.random.default_rng(seed).integers(-128, 128, size=(h, w, c)).astype(np.int8)


# reference gradients ---------------------------------------------------------------------------------
def reference_gradients(
    graph: Graph, scheme: Any, x: np.ndarray, label: int
) -> dict[str, dict[str, np.ndarray]]:
    """Gradients the reference computes (lr = 0, split kernels, nothing in place), in real units:
    activations `act[t]` = dL/d(pre-clamp real t) HWC; `w[layer]` = dL/dW_real on the updated elements
    (device layout); `b[layer]` = dL/db_real; also the loss."""
    prog = compile_training(graph, scheme, CompileOptions(reorder=False, inplace=False))
    tr = Trainer(prog)
    loss = tr.train_step(x, label, 0.0)
    out: dict[str, dict[str, Any]] = {"act": {}, "w": {}, "b": {}, "loss": {"loss": np.float32(loss)}}
    for t, b in prog.meta["grad_buffers"].items():
        out["act"][t] = tr.buffers[b].copy()
    for layer, b in prog.meta["wgrad_buffers"].items():
        out["w"][layer] = tr.buffers[b] * np.float32(graph.op(layer).attrs["x_scale"])
    for layer, b in prog.meta["bgrad_buffers"].items():
        out["b"][layer] = tr.buffers[b].copy()
    return out


# the PyTorch twin ------------------------------------------------------------------------------------
def torch_gradients(graph: Graph, x: np.ndarray, label: int) -> dict[str, dict[str, np.ndarray]]:
    """Autograd (float64) on the dequantized network: W = s_w·W̃, b = s_x·s_w·b̃, forward values snapped to
    the int8 reference activations (straight-through rounding), gradients masked where an output
    saturated (y ∈ {-128, 127}; the logits are not masked). Same keys/units as `reference_gradients`
    (weights OIHW converted to device layout, all channels)."""
    acts = run_forward(graph, x)
    dt = torch.float64
    t_real: dict[str, torch.Tensor] = {}
    pre: dict[str, torch.Tensor] = {}
    wp: dict[str, torch.Tensor] = {}
    bp: dict[str, torch.Tensor] = {}

    def real(t: str) -> torch.Tensor:
        tt = graph.tensors[t]
        a = torch.tensor(acts[t].astype(np.float64).transpose(2, 0, 1)[None], dtype=dt)
        return (a - tt.zero) * tt.scale

    def snap(t: str, p: torch.Tensor, masked: bool) -> torch.Tensor:
        p.retain_grad()
        pre[t] = p
        val = real(t)
        if masked:
            y = torch.tensor(acts[t].transpose(2, 0, 1)[None].astype(np.int32))
            keep = ((y != -128) & (y != 127)).to(dt)
            p = p * keep
        return p + (val - p).detach()

    t_real[graph.input] = real(graph.input)
    for op in graph.ops:
        ins = [t_real[t] for t in op.inputs]
        if op.kind == "conv2d":
            xs = float(op.attrs["x_scale"])
            ws = torch.tensor(op.w_scales.astype(np.float64), dtype=dt)
            w = torch.tensor(op.weight.astype(np.float64), dtype=dt) * ws[:, None, None, None]
            b = torch.tensor(op.bias.astype(np.float64), dtype=dt) * ws * xs
            w.requires_grad_(True)
            b.requires_grad_(True)
            wp[op.name], bp[op.name] = w, b
            groups = ins[0].shape[1] if op.depthwise else 1
            p = F.conv2d(ins[0], w, b, op.stride, op.padding, groups=groups)
            t_real[op.output] = snap(op.output, p, op.output != graph.output)
        elif op.kind == "add":
            t_real[op.output] = snap(op.output, ins[0] + ins[1], True)
        elif op.kind == "avgpool":
            t_real[op.output] = snap(op.output, ins[0].mean(dim=(2, 3), keepdim=True), False)
        else:
            raise AssertionError(op.kind)
    logits = t_real[graph.output].reshape(1, -1)
    loss = F.cross_entropy(logits, torch.tensor([label]))
    loss.backward()
    out: dict[str, dict[str, Any]] = {"act": {}, "w": {}, "b": {}, "loss": {"loss": loss.item()}}
    for t, p in pre.items():
        if p.grad is not None:
            out["act"][t] = p.grad[0].numpy().transpose(1, 2, 0)
    for layer, w in wp.items():
        if w.grad is None:
            continue
        g = w.grad.numpy()
        out["w"][layer] = g[:, 0].transpose(1, 2, 0) if graph.op(layer).depthwise else g.transpose(0, 2, 3, 1)
        out["b"][layer] = bp[layer].grad.numpy()
    return out


def compare(
    ref: dict[str, dict[str, np.ndarray]], want: dict[str, dict[str, np.ndarray]], graph: Graph, rtol: float
) -> list[str]:
    """Mismatches: per tensor, max |ref - torch| > rtol * max |torch| (+ 1e-12). Weight gradients
    compare the updated (first k) channels only."""
    bad = []
    for kind in ("act", "w", "b"):
        for name, r in ref[kind].items():
            w = want[kind][name]
            if kind == "w":
                w = w[..., : r.shape[-1]]
            w = np.asarray(w).reshape(r.shape)
            err = float(np.max(np.abs(r.astype(np.float64) - w))) if r.size else 0.0
            scale = float(np.max(np.abs(w))) if w.size else 0.0
            if err > rtol * scale + 1e-12:
                bad.append(f"{kind} {name}: max err {err:.3g} vs max |grad| {scale:.3g}")
    return bad
