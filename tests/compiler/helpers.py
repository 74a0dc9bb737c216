"""Test helpers: small int8 graphs (random ones, and the fixed tiny model of the codegen golden files),
short host-reference training runs compared bit for bit, and a PyTorch autograd twin of a graph for
gradient checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np

from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.ir import Graph, Op, Tensor
from tinytrain.models.head import replace_head
from tinytrain.program import Program
from tinytrain.reference.inference import run_forward
from tinytrain.reference.training import Trainer


# small int8 graphs -----------------------------------------------------------------------------------
def _random_out_scale(x_scale: float, w_scale: float, fan_in: int) -> float:
    # typical |acc| ~ 60 * 45 * sqrt(fan_in); map it to ~50 output steps (some saturation, not all)
    return float(x_scale * w_scale * 60 * 45 * np.sqrt(fan_in) / 50)


def _tiny_out_scale(x_scale: float, w_scale: float, fan_in: int) -> float:
    m = 40.0 / (np.sqrt(fan_in) * 45.0 * 52.0)
    return float(x_scale * w_scale / m)


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
    w_max: int = 100,
    b_max: int = 3000,
    out_scale: Callable[[float, float, int], float] = _random_out_scale,
) -> str:
    """Append a conv op with seeded int8 weights in [-w_max, w_max], weight scales w_unit * U(0.5, 1.5), int32
    biases in [-b_max, b_max] and the output scale `out_scale(x_scale, median weight scale, fan_in)`."""
    x = tensors[src]
    cin = x.shape[0]
    pad = (k - 1) // 2
    h = (x.shape[1] + 2 * pad - k) // stride + 1
    w = rng.integers(-w_max, w_max + 1, size=(cout, 1 if depthwise else cin, k, k)).astype(np.int8)
    w_scales = (rng.uniform(0.5, 1.5, size=cout) * w_unit).astype(np.float32)
    fan_in = (1 if depthwise else cin) * k * k
    y_scale = out_scale(x.scale, float(np.median(w_scales)), fan_in)
    bias = rng.integers(-b_max, b_max + 1, size=cout).astype(np.int32)
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


def _add(tensors: dict[str, Tensor], ops: list[Op], name: str, a: str, b: str, gain: float, zero: int) -> str:
    """Append the residual add `name` (output `<name>.add`, scale gain * the larger input scale)."""
    ta, tb = tensors[a], tensors[b]
    out = f"{name}.add"
    tensors[out] = Tensor(out, ta.shape, float(max(ta.scale, tb.scale) * gain), zero)
    ops.append(Op(f"{name}.residual", "add", [a, b], out))
    return out


def _pool(tensors: dict[str, Tensor], ops: list[Op], src: str) -> str:
    """Append the global average pool (output `pool.out`)."""
    t = tensors[src]
    tensors["pool.out"] = Tensor("pool.out", (t.shape[0], 1, 1), t.scale, t.zero)
    ops.append(Op("pool", "avgpool", [src], "pool.out"))
    return "pool.out"


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
        k, stride = blk.get("k", 3), blk.get("stride", 1)
        cur = _conv(tensors, ops, rng, f"blocks.{i}.depthwise", cur, hidden, k, stride, True, -128)
        y_zero = int(rng.integers(-10, 10))
        cur = _conv(
            tensors, ops, rng, f"blocks.{i}.pointwise2", cur, blk.get("out", cin), 1, 1, False, y_zero
        )
        if tensors[cur].shape == tensors[block_in].shape and blk.get("residual", True):
            cur = _add(tensors, ops, f"blocks.{i}", cur, block_in, 1.3, int(rng.integers(-5, 5)))
    cur = _pool(tensors, ops, cur)
    _conv(tensors, ops, rng, "classifier", cur, classes, 1, 1, False, 0, out_name="logits", w_unit=2e-4)
    g = Graph(f"random{seed}", tensors, ops, "input", "logits", {})
    g.validate()
    return g


def tiny_graph(resolution: int = 8, classes: int = 2, seed: int = 7) -> Graph:
    """The fixed model of the codegen tests (and their golden files: keep it unchanged): stem 3x3 s2, one
    inverted-residual block (1x1, dw 3x3, 1x1, residual add), global pool, classifier. Seeded weights with
    scales chosen so that activations use the int8 range without saturating everywhere."""
    rng = np.random.default_rng(seed)
    tensors = {"input": Tensor("input", (3, resolution, resolution), 1 / 64, 0)}
    ops: list[Op] = []
    style = {"w_max": 90, "b_max": 2000, "out_scale": _tiny_out_scale}
    cur = _conv(tensors, ops, rng, "stem", "input", 8, 3, 2, False, -128, **style)
    block_in = cur
    cur = _conv(tensors, ops, rng, "blocks.0.pointwise1", cur, 16, 1, 1, False, -128, **style)
    cur = _conv(tensors, ops, rng, "blocks.0.depthwise", cur, 16, 3, 1, True, -128, **style)
    cur = _conv(tensors, ops, rng, "blocks.0.pointwise2", cur, 8, 1, 1, False, 0, **style)
    cur = _add(tensors, ops, "blocks.0", cur, block_in, 1.5, 0)
    cur = _pool(tensors, ops, cur)
    _conv(tensors, ops, rng, "classifier", cur, classes, 1, 1, False, 0, out_name="logits", **style)
    g = Graph("tiny", tensors, ops, "input", "logits", {"source": "tests/compiler/helpers.py"})
    g.validate()
    return g


def headed_graph(
    seed: int, resolution: int = 12, blocks: list[dict[str, Any]] | None = None, classes: int = 2
) -> Graph:
    """`random_graph` with a new `classes`-class head (`tinytrain.models.head.replace_head`)."""
    return replace_head(random_graph(seed, resolution, blocks=blocks), classes)


#: Two residual blocks (dw 3x3, then dw 5x5), 8 channels: the bit-identity tests' graph (seed 3).
TWO_BLOCKS = [{"expand": 2, "k": 3, "stride": 1, "out": 8}, {"expand": 3, "k": 5, "stride": 1, "out": 8}]


def random_input(graph: Graph, seed: int = 0) -> np.ndarray:
    c, h, w = graph.tensors[graph.input].shape
    return np.random.default_rng(seed).integers(-128, 128, size=(h, w, c)).astype(np.int8)


def two_class_problem(
    seed: int = 0, n: int = 48, res: int = 12
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A learnable two-class problem (two noisy prototypes): n training samples (xs, ys), then n test ones."""
    rng = np.random.default_rng(seed)
    protos = rng.integers(-100, 100, (2, res, res, 3))

    def sample(k: int) -> tuple[np.ndarray, np.ndarray]:
        ys = rng.integers(0, 2, k)
        xs = np.clip(protos[ys] + rng.integers(-60, 60, (k, res, res, 3)), -128, 127).astype(np.int8)
        return xs, ys

    xs, ys = sample(n)
    xt, yt = sample(n)
    return xs, ys, xt, yt


# host-reference training runs ----------------------------------------------------------------------
class Run(NamedTuple):
    program: Program
    losses: list[float]
    params: dict[str, np.ndarray]  # copies, taken after the last step
    trainer: Trainer


def train(
    graph: Graph,
    scheme: Any,
    options: CompileOptions,
    xs: Sequence[np.ndarray],
    ys: Sequence[int],
    lr: float = 0.05,
    **trainer_kwargs: Any,
) -> Run:
    """Compile `graph` + `scheme` with `options` and train one step per (x, y) on the host reference."""
    program = compile_training(graph, scheme, options)
    tr = Trainer(program, **trainer_kwargs)
    losses = [tr.train_step(x, y, lr) for x, y in zip(xs, ys, strict=True)]
    return Run(program, losses, {k: v.copy() for k, v in tr.parameters().items()}, tr)


def lever_on_off(
    graph: Graph, scheme: Any, options: CompileOptions, samples: int = 3, classes: int = 3, **off: Any
) -> tuple[Run, Run]:
    """A lever's bit-identity runs on `samples` random inputs (labels i % classes): with `options` but the
    fields `off` (the lever switched off), then with `options`. Returns (base, run)."""
    xs = [random_input(graph, seed=s) for s in range(samples)]
    ys = [i % classes for i in range(samples)]
    return train(graph, scheme, replace(options, **off), xs, ys), train(graph, scheme, options, xs, ys)


def assert_same_training(run: Run, base: Run, what: object = "") -> None:
    """Bit-identical runs: the same losses and every parameter of `base` equal in `run`."""
    assert run.losses == base.losses, what
    for k in base.params:
        np.testing.assert_array_equal(run.params[k], base.params[k], err_msg=f"{k} {what}".strip())


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
    import torch  # here, not at the top: the graph helpers serve tests that do not need torch
    import torch.nn.functional as F

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
