"""The PyTorch importer's back end: fused float ops (tinytrain/models/torch_import.py) -> quantized IR ops.

Two back ends share the quantization scheme (activations per tensor, asymmetric min/max from calibration;
weights per output channel, symmetric) and differ in the op kinds and requantization they emit:

- `float-m` (the zoo's ops `conv2d` / `add` / `avgpool`, float32 requantization multiplier): only for nets
  made of square convs (symmetric padding, square input), residual adds, one global average pool and a
  classifier last. It keeps the zoo's fast kernels and `Graph.with_resolution`.
- `tflm` (the op kinds of tinytrain/ops with TFLite Micro's fixed-point requantization, as a `.tflite`
  import): everything the importer maps: any kh x kw / stride / padding, 1-D convs, max and windowed
  average pools, concatenation, Hardswish, Sigmoid, Mul.

Quantization (both): a tensor's real range is its calibrated min/max widened to include 0 (ReLU: `[0, max]`,
ReLU6: `[0, 6]`), `scale = (hi - lo)/255`, `zero = rne(-128 - lo/scale)`. Tensors that an op requires to
share one quantization (a max / average pool's input and output, the inputs and output of a concatenation)
get the union of their ranges, or the fixed quantization of a member (the model input; a Sigmoid's output
is 1/256, -128). A folded ReLU / ReLU6 is the op's clamp range `[act_min, act_max]` (TFLite's
CalculateActivationRangeQuantized).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op, Tensor
from tinytrain.ops import tflm

ACTS = {None: "NONE", "relu": "RELU", "relu6": "RELU6"}


@dataclass
class FOp:
    """A fused float op, before quantization.

    kind: conv | add | gpool | maxpool | avgpool | concat | hardswish | sigmoid | mul.
    conv attrs: kernel_h/w, stride_h/w, pad_top/bottom/left/right, depthwise (+ depth_multiplier);
    pool attrs: the same geometry (+ count_include_pad); concat: axis (of the IR's (C, H, W))."""

    kind: str
    name: str
    inputs: list[str]  # value keys
    out_node: str  # the fx node whose (calibrated) value is this op's output
    act: str | None = None  # None | relu | relu6
    weight: np.ndarray | None = None  # float64 OIHW
    bias: np.ndarray | None = None  # float64 [O]
    attrs: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # the value key of the output
    source_op: str = ""  # the PyTorch module type or function


def qparams(lo: float, hi: float, act: str | None) -> tuple[float, int]:
    """Output (scale, zero) of an op from its calibrated range and folded activation."""
    if act == "relu6":
        return 6.0 / 255.0, -128
    if act == "relu":
        return max(hi, 1e-6) / 255.0, -128
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-6:
        return 1.0 / 255.0, 0
    scale = (hi - lo) / 255.0
    return scale, int(np.clip(np.rint(-128.0 - lo / scale), -128, 127))


def quantize_weights(
    w: np.ndarray, b: np.ndarray, x_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8 weights, their float32 scales and the int32 bias."""
    amax = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    # a channel whose weights are (nearly) zero but whose bias is not would need a bias beyond int32; widen
    # its weight scale so |bias| <= 2^30, which leaves int32 headroom for acc + bias
    s = np.maximum(amax / 127.0, np.abs(b) / (float(x_scale) * 2.0**30))
    s = np.where(s > 0, s, 1.0 / 127.0).astype(np.float32)
    s64 = s.astype(np.float64)
    wq = np.clip(np.rint(w / s64.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int8)
    bq = np.clip(np.rint(b / (float(x_scale) * s64)), -(2**31), 2**31 - 1).astype(np.int32)
    return wq, bq, s


def zoo_misfit(fops: list[FOp], shapes: dict[str, tuple[int, int, int]], output_key: str) -> str | None:
    """Why the fused ops cannot be the zoo's conv2d / add / avgpool (None: they can)."""
    for f in fops:
        c, h, w = shapes[f.inputs[0]]
        if f.kind not in ("conv", "add", "gpool"):
            return f"layer {f.name!r} ({f.source_op}) has no zoo op"
        if h != w:
            return f"layer {f.name!r} reads a non-square {h}x{w} map"
        if f.kind == "conv":
            a = f.attrs
            pads = {a["pad_top"], a["pad_bottom"], a["pad_left"], a["pad_right"]}
            if a["kernel_h"] != a["kernel_w"] or a["stride_h"] != a["stride_w"] or len(pads) != 1:
                return f"layer {f.name!r} has a non-square kernel, stride or padding"
            if a.get("depth_multiplier", 1) != 1:
                return f"layer {f.name!r} is a depthwise conv with a channel multiplier"
            if f.source_op == "Linear" and a["kernel_h"] != 1:
                return f"layer {f.name!r} is a Linear on a flattened {h}x{w} map"
    last = next((f for f in fops if f.key == output_key), None)
    if last is None or last.kind != "conv":
        return "the model does not end with a classifier (Linear or conv)"
    return None


def lower_zoo(
    fops: list[FOp],
    lo: dict[str, float],
    hi: dict[str, float],
    x: Tensor,
    input_key: str,
    output_key: str,
    shapes: dict[str, tuple[int, int, int]],
) -> tuple[dict[str, Tensor], list[Op], str]:
    """numerics float-m: the zoo's conv2d / add / avgpool (see the module doc)."""
    tensors = {x.name: x}
    tname = {input_key: x.name}
    ops: list[Op] = []
    for f in fops:
        ins = [tensors[tname[k]] for k in f.inputs]
        oname = "logits" if f.key == output_key else f"{f.name}.out"
        c, h, w = shapes[f.key]
        if f.kind == "gpool":
            out = Tensor(oname, (c, 1, 1), ins[0].scale, ins[0].zero)
            op = Op(f.name, "avgpool", [ins[0].name], oname)
        else:
            scale, zero = qparams(lo[f.out_node], hi[f.out_node], f.act)
            out = Tensor(oname, (c, h, w), float(scale), int(zero))
            if f.kind == "add":
                op = Op(f.name, "add", [t.name for t in ins], oname)
            else:
                assert f.weight is not None and f.bias is not None
                wq, bq, s = quantize_weights(f.weight, f.bias, ins[0].scale)
                a = f.attrs
                op = Op(
                    f.name,
                    "conv2d",
                    [ins[0].name],
                    oname,
                    {
                        "kernel": int(a["kernel_h"]),
                        "stride": int(a["stride_h"]),
                        "padding": int(a["pad_top"]),
                        "depthwise": bool(a["depthwise"]),
                        "x_scale": float(ins[0].scale),
                        "x_zero": int(ins[0].zero),
                        "kernel_h": int(a["kernel_h"]),  # for the import summary
                        "kernel_w": int(a["kernel_w"]),
                        "source_op": f.source_op,
                    },
                    {"weight": wq, "bias": bq, "w_scales": s},
                )
        tensors[oname] = out
        tname[f.key] = oname
        ops.append(op)
    return tensors, ops, tname[output_key]


class _Groups:
    """Union-find over value keys that must share one quantization."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, k: str) -> str:
        self.parent.setdefault(k, k)
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _quant_tflm(
    fops: list[FOp], lo: dict[str, float], hi: dict[str, float], x: Tensor, input_key: str
) -> dict[str, tuple[float, int]]:
    """(scale, zero) of every value key (module doc: ranges, shared groups, fixed members)."""
    rng: dict[str, tuple[float, float]] = {}
    fixed: dict[str, tuple[float, int]] = {input_key: (x.scale, x.zero)}
    groups = _Groups()
    for f in fops:
        if f.kind == "sigmoid":
            fixed[f.key] = (1.0 / 256.0, -128)
            continue
        if f.act == "relu6":
            rng[f.key] = (0.0, 6.0)
        elif f.act == "relu":
            rng[f.key] = (0.0, max(hi[f.out_node], 1e-6))
        else:
            rng[f.key] = (min(lo[f.out_node], 0.0), max(hi[f.out_node], 0.0))
        if f.kind in ("maxpool", "avgpool", "concat"):
            for k in f.inputs:
                groups.union(k, f.key)
    members: dict[str, list[str]] = {}
    for k in [input_key, *(f.key for f in fops)]:
        members.setdefault(groups.find(k), []).append(k)
    q: dict[str, tuple[float, int]] = {}
    for keys in members.values():
        fix = {fixed[k] for k in keys if k in fixed}
        if len(fix) > 1:
            raise TinytrainError(
                f"tensors {keys} must share one quantization (a pool or torch.cat joins them) but "
                f"have fixed different ones {sorted(fix)} (the model input, a Sigmoid output); "
                "insert a conv between them"
            )
        if fix:
            qp = next(iter(fix))
        else:
            a = min(rng[k][0] for k in keys)
            b = max(rng[k][1] for k in keys)
            if b - a < 1e-6:
                qp = (1.0 / 255.0, 0)
            else:
                s = (b - a) / 255.0
                qp = (s, int(np.clip(np.rint(-128.0 - a / s), -128, 127)))
        for k in keys:
            q[k] = (float(qp[0]), int(qp[1]))
    return q


def _geometry(a: dict[str, Any]) -> dict[str, int]:
    keys = ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left", "pad_right")
    return {k: int(a[k]) for k in keys}


def lower_tflm(
    fops: list[FOp],
    lo: dict[str, float],
    hi: dict[str, float],
    x: Tensor,
    input_key: str,
    output_key: str,
    shapes: dict[str, tuple[int, int, int]],
) -> tuple[dict[str, Tensor], list[Op], str]:
    """numerics tflm: the op kinds of tinytrain/ops (see the module doc)."""
    from tinytrain.models.tflite_import import qadd_params
    from tinytrain.ops import hardswish, logistic

    q = _quant_tflm(fops, lo, hi, x, input_key)
    tensors = {x.name: x}
    tname = {input_key: x.name}
    ops: list[Op] = []

    def define(f: FOp, name: str | None = None) -> Tensor:
        oname = name or ("logits" if f.key == output_key else f"{f.name}.out")
        s, z = q[f.key]
        t = Tensor(oname, shapes[f.key], s, z)
        tensors[oname] = t
        tname[f.key] = oname
        return t

    def act_range(f: FOp, y: Tensor) -> dict[str, Any]:
        act = ACTS[f.act]
        lo_, hi_ = tflm.activation_range(act, y.scale, y.zero)
        return {"act_min": lo_, "act_max": hi_, "activation": act}

    for f in fops:
        ins = [tensors[tname[k]] for k in f.inputs]
        src = {"source_op": f.source_op}
        if f.kind == "conv":
            assert f.weight is not None and f.bias is not None
            y = define(f)
            xt = ins[0]
            wq, bq, s = quantize_weights(f.weight, f.bias, xt.scale)
            mult, shift = tflm.conv_multipliers(xt.scale, s, y.scale)
            attrs: dict[str, Any] = {
                **_geometry(f.attrs),
                "depthwise": bool(f.attrs["depthwise"]),
                **(
                    {"depth_multiplier": int(f.attrs["depth_multiplier"])}
                    if "depth_multiplier" in f.attrs
                    else {}
                ),
                "x_scale": xt.scale,
                "x_zero": xt.zero,
                **act_range(f, y),
                **src,
            }
            params = {"weight": wq, "bias": bq, "w_scales": s, "multiplier": mult, "shift": shift}
            ops.append(Op(f.name, "qconv", [xt.name], y.name, attrs, params))
        elif f.kind == "add":
            y = define(f)
            attrs = {**qadd_params(ins[0], ins[1], y), **act_range(f, y), **src}
            ops.append(Op(f.name, "qadd", [t.name for t in ins], y.name, attrs))
        elif f.kind in ("maxpool", "avgpool"):
            y = define(f)
            g = _geometry(f.attrs)
            del g["pad_bottom"], g["pad_right"]
            attrs = {"mode": "max" if f.kind == "maxpool" else "avg", **g, **act_range(f, y), **src}
            if f.attrs.get("count_include_pad"):
                attrs.update({"requant": "float", "count_include_pad": 1})
            ops.append(Op(f.name, "qpool", [ins[0].name], y.name, attrs))
        elif f.kind == "gpool":
            y = define(f)
            xt = ins[0]
            m, sh = tflm.quantize_multiplier(float(np.float32(xt.scale)) / float(np.float32(y.scale)))
            attrs = {
                "x_zero": xt.zero,
                "y_zero": y.zero,
                "multiplier": m,
                "shift": sh,
                "same_quant": bool(xt.scale == y.scale and xt.zero == y.zero),
                **src,
            }
            ops.append(Op(f.name, "qmean", [xt.name], y.name, attrs))
        elif f.kind == "concat":
            y = define(f)
            parts = [t.name for t in ins]
            while len(parts) > 2:  # a chain of two-input concatenations (one quantization: exact)
                a, b = (tensors[p] for p in parts[:2])
                ax = int(f.attrs["axis"])
                shape = list(a.shape)
                shape[ax] += b.shape[ax]
                mid = f"{f.name}.part{len(ops)}"
                tensors[f"{mid}.out"] = Tensor(f"{mid}.out", (shape[0], shape[1], shape[2]), y.scale, y.zero)
                ops.append(Op(mid, "qconcat", parts[:2], f"{mid}.out", {"axis": ax, **src}))
                parts = [f"{mid}.out", *parts[2:]]
            ops.append(Op(f.name, "qconcat", parts, y.name, {"axis": int(f.attrs["axis"]), **src}))
        elif f.kind == "hardswish":
            xt = ins[0]
            if q[f.key][0] < float(np.float32(xt.scale)) / 128.0:  # TFLite: y_scale >= x_scale / 128
                raise TinytrainError(
                    f"layer {f.name!r} (Hardswish): output range below 1/128 of its input's; "
                    "TFLite Micro's int8 HARD_SWISH cannot represent it (calibrate with typical inputs)"
                )
            y = define(f)
            attrs = {
                "x_zero": xt.zero,
                "y_zero": y.zero,
                "x_scale": xt.scale,
                **hardswish.params(xt.scale, y.scale),
                **src,
            }
            ops.append(Op(f.name, "qhardswish", [xt.name], y.name, attrs))
        elif f.kind == "sigmoid":
            y = define(f)
            xt = ins[0]
            attrs = {"x_zero": xt.zero, **logistic.params(xt.scale), **src}
            ops.append(Op(f.name, "qlogistic", [xt.name], y.name, attrs))
        elif f.kind == "mul":
            y = define(f)
            ta, tb = ins
            m, sh = tflm.quantize_multiplier(
                float(np.float32(ta.scale)) * float(np.float32(tb.scale)) / float(np.float32(y.scale))
            )
            attrs = {
                "a_zero": ta.zero,
                "b_zero": tb.zero,
                "y_zero": y.zero,
                "mult": m,
                "shift": sh,
                **act_range(f, y),
                **src,
            }
            ops.append(Op(f.name, "qmul", [ta.name, tb.name], y.name, attrs))
        else:  # pragma: no cover  (the front end emits only the kinds above)
            raise TinytrainError(f"layer {f.name!r}: no lowering for {f.kind!r}")
    return tensors, ops, tname[output_key]


def make_graph(
    name: str,
    tensors: dict[str, Tensor],
    ops: list[Op],
    output: str,
    meta: dict[str, Any],
) -> Graph:
    if output != "logits":  # the output is an input passed through (no op): impossible after the walk
        raise TinytrainError(f"{name}: the model's output is not computed by any supported op")
    g = Graph(name, tensors, ops, "input", "logits", meta)
    g.validate()
    return g
