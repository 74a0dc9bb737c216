"""A small fixed int8 model for codegen tests: stem 3x3 s2, one inverted-residual block (1x1, dw 3x3,
1x1, residual add), global pool, classifier. Deterministic (seeded) weights with scales chosen so that
activations use the int8 range without saturating everywhere."""

from __future__ import annotations

import numpy as np

from tinytrain.ir import Graph, Op, Tensor


def tiny_graph(resolution: int = 8, classes: int = 2, seed: int = 7) -> Graph:
    rng = np.random.default_rng(seed)
    tensors = {"input": Tensor("input", (3, resolution, resolution), 1 / 64, 0)}
    ops: list[Op] = []

    def conv(
        name: str,
        src: str,
        cout: int,
        k: int,
        stride: int,
        depthwise: bool,
        y_zero: int,
        out_name: str | None = None,
    ) -> str:
        x = tensors[src]
        cin = x.shape[0]
        pad = (k - 1) // 2
        h = (x.shape[1] + 2 * pad - k) // stride + 1
        w = rng.integers(-90, 91, size=(cout, 1 if depthwise else cin, k, k)).astype(np.int8)
        w_scales = (rng.uniform(0.5, 1.5, size=cout) * 0.01).astype(np.float32)
        fan_in = (1 if depthwise else cin) * k * k
        m = 40.0 / (np.sqrt(fan_in) * 45.0 * 52.0)
        y_scale = float(x.scale * float(np.median(w_scales)) / m)
        bias = rng.integers(-2000, 2001, size=cout).astype(np.int32)
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

    cur = conv("stem", "input", 8, 3, 2, False, -128)
    block_in = cur
    cur = conv("blocks.0.pointwise1", cur, 16, 1, 1, False, -128)
    cur = conv("blocks.0.depthwise", cur, 16, 3, 1, True, -128)
    cur = conv("blocks.0.pointwise2", cur, 8, 1, 1, False, 0)
    a, b = tensors[cur], tensors[block_in]
    tensors["blocks.0.add"] = Tensor("blocks.0.add", a.shape, float(max(a.scale, b.scale) * 1.5), 0)
    ops.append(Op("blocks.0.residual", "add", [cur, block_in], "blocks.0.add"))
    cur = "blocks.0.add"
    tensors["pool.out"] = Tensor("pool.out", (8, 1, 1), tensors[cur].scale, tensors[cur].zero)
    ops.append(Op("pool", "avgpool", [cur], "pool.out"))
    conv("classifier", "pool.out", classes, 1, 1, False, 0, out_name="logits")
    g = Graph("tiny", tensors, ops, "input", "logits", {"source": "tests/codegen/tiny_model.py"})
    g.validate()
    return g
