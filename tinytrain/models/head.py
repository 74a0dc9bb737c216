"""A new classifier head with N classes, for transfer learning to a downstream task."""

from __future__ import annotations

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op, Tensor

#: Real logit range of a new head: logits are int8 with zero point 0 and scale LOGIT_RANGE / 127.
LOGIT_RANGE = 8.0
#: Weight-scale headroom: the initial weights span +-127 / HEADROOM of the int8 range.
HEADROOM = 2.0


def classifier(graph: Graph) -> Op:
    """The graph's classifier: the 1x1 conv producing the output from the pooled (C, 1, 1) tensor."""
    op = graph.producer(graph.output)
    if op is not None and op.kind == "qconv" and not op.attrs.get("depthwise"):
        return op  # an imported model's FULLY_CONNECTED (or conv) classifier
    if (
        op is None
        or op.kind != "conv2d"
        or op.kernel != 1
        or op.depthwise
        or graph.tensors[op.inputs[0]].shape[1:] != (1, 1)
    ):
        raise TinytrainError(
            f"model {graph.name!r}: its output is not produced by a 1x1 classifier conv on a "
            "pooled tensor; cannot replace the head"
        )
    return op


def replace_head(
    graph: Graph,
    num_classes: int,
    seed: int = 0,
    logit_range: float = LOGIT_RANGE,
    headroom: float = HEADROOM,
) -> Graph:
    """The same backbone with a freshly initialized `num_classes`-way classifier (the input graph is
    not modified; the backbone's ops and arrays are shared with it).

    Initialization, with `C` the classifier's input channels and `rng = numpy.random.default_rng(seed)`:

    - real weights `W ~ U(-1/sqrt(C), 1/sqrt(C))` (PyTorch's `nn.Linear` default), shape `[N, C, 1, 1]`,
      drawn as `rng.uniform(-b, b, (N, C))` in float64;
    - per-output-channel scale `w_scale[o] = f32(headroom * max|W[o]| / 127)`; `W̃ = rne(W / w_scale)`.
      With the default `headroom = 2` the initial weights fill half the int8 range (|W̃| <= 64), so QAS-SGD
      (`ΔW̃ = -lr·G/w_scale`) can grow them 2x before they clamp, while one int8 step stays ~1.5% of the
      initial weight magnitude (representable updates);
    - bias 0 (int32, units `x_scale * w_scale[o]`);
    - logits: int8 scale `logit_range / 127` (default +-8 real), zero point 0. Softmax saturates long before
      +-8, so the range is ample, and a zero-centred range keeps "no evidence" at logit 0.

    The op keeps the old classifier's name and the output tensor its name; `meta["head"]` records the init.
    """
    if int(num_classes) < 2:
        raise TinytrainError(f"a classifier head needs at least 2 classes, got {num_classes}")
    if logit_range <= 0 or headroom < 1:
        raise TinytrainError("logit_range must be positive and headroom >= 1")
    old = classifier(graph)
    n = int(num_classes)
    x = graph.tensors[old.inputs[0]]
    c = x.shape[0]
    rng = np.random.default_rng(seed)
    if old.kind == "qconv":
        return _replace_imported_head(graph, old, n, rng, logit_range, headroom, seed)
    bound = 1.0 / np.sqrt(c)
    w = rng.uniform(-bound, bound, (n, c))
    s = (headroom * np.abs(w).max(axis=1) / 127.0).astype(np.float32)
    wq = np.clip(np.rint(w / s.astype(np.float64)[:, None]), -127, 127).astype(np.int8).reshape(n, c, 1, 1)
    op = Op(
        old.name,
        "conv2d",
        list(old.inputs),
        old.output,
        {
            "kernel": 1,
            "stride": 1,
            "padding": 0,
            "depthwise": False,
            "x_scale": float(x.scale),
            "x_zero": int(x.zero),
        },
        {"weight": wq, "bias": np.zeros(n, np.int32), "w_scales": s},
    )
    tensors = dict(graph.tensors)
    tensors[old.output] = Tensor(old.output, (n, 1, 1), float(logit_range) / 127.0, 0)
    ops = [op if o is old else o for o in graph.ops]
    meta = dict(graph.meta)
    meta["head"] = {
        "num_classes": n,
        "seed": int(seed),
        "init": "uniform(+-1/sqrt(C))",
        "headroom": float(headroom),
        "logit_range": float(logit_range),
    }
    g = Graph(graph.name, tensors, ops, graph.input, graph.output, meta)
    g.validate()
    return g


def _replace_imported_head(
    graph: Graph, old: Op, n: int, rng: np.random.Generator, logit_range: float, headroom: float, seed: int
) -> Graph:
    """The new head of an imported model: a `qconv` of the old one's geometry (a FULLY_CONNECTED, possibly on
    an [H, W, C] tensor), initialised as `replace_head` says with fan-in C*kh*kw, TFLite Micro multipliers
    (an ONNX model's head: onnxruntime's float output scales, as its importer writes them), no fused
    activation."""
    from tinytrain.ops import tflm

    x = graph.tensors[old.inputs[0]]
    _, c, kh, kw = old.weight.shape
    fan_in = c * kh * kw
    bound = 1.0 / np.sqrt(fan_in)
    w = rng.uniform(-bound, bound, (n, fan_in))
    s = (headroom * np.abs(w).max(axis=1) / 127.0).astype(np.float32)
    wq = np.clip(np.rint(w / s.astype(np.float64)[:, None]), -127, 127).astype(np.int8).reshape(n, c, kh, kw)
    y_scale = float(logit_range) / 127.0
    if old.attrs.get("requant") == "float":  # an ONNX model's head: onnxruntime's float requantization
        from tinytrain.ops.conv import ort_scales

        requant: dict[str, np.ndarray] = {"scale": ort_scales(x.scale, s, y_scale)}
    else:
        mult, shift = tflm.conv_multipliers(x.scale, s, y_scale)
        requant = {"multiplier": mult, "shift": shift}
    attrs = dict(old.attrs)
    attrs.update(act_min=-128, act_max=127, activation="NONE", source_op="FULLY_CONNECTED (new head)")
    op = Op(
        old.name,
        "qconv",
        list(old.inputs),
        old.output,
        attrs,
        {"weight": wq, "bias": np.zeros(n, np.int32), "w_scales": s, **requant},
    )
    tensors = dict(graph.tensors)
    tensors[old.output] = Tensor(old.output, (n, 1, 1), y_scale, 0)
    meta = dict(graph.meta)
    meta["head"] = {
        "num_classes": n,
        "seed": int(seed),
        "init": "uniform(+-1/sqrt(C*kh*kw))",
        "headroom": float(headroom),
        "logit_range": float(logit_range),
    }
    g = Graph(
        graph.name, tensors, [op if o is old else o for o in graph.ops], graph.input, graph.output, meta
    )
    g.validate()
    return g
