"""PyTorch float model -> int8 IR: torch.fx trace, BatchNorm folding, activation folding, post-training
calibration, per-channel symmetric int8 weights.

The importer is a small compiler over the traced fx graph:

1. **Calibrate.** The traced module runs (eval mode, float32) on the calibration batch through an fx
   `Interpreter` that records, for every node, its shape and the min / max of its value.
2. **Fuse.** The nodes are walked in order and grouped into the IR's ops: a `Conv2d` (or `Linear`) takes
   the `BatchNorm2d` that directly follows it (folded into weight and bias) and then a `ReLU` / `ReLU6`
   (folded into the output range); a residual `add` may take a following ReLU too. Shape-only nodes
   (`flatten`, `view`, `Dropout`, `Identity`, ...) become aliases. Anything else is an error naming the
   module or function and its place (fx node, module path).
3. **Quantize.** Each op's output range comes from the calibration of its *last* fused node (so the
   folding changes no value):

   - ReLU6: `scale = 6/255`, `zero = -128`: the int8 clamp *is* ReLU6 (as in the zoo models);
   - ReLU: `zero = -128`, `scale = max/255` (calibrated max): the lower clamp is ReLU;
   - no activation: asymmetric min/max, `scale = (hi - lo)/255`, `zero = rne(-128 - lo/scale)`, with
     the range widened to include 0;
   - global average pool: input scale and zero point unchanged (the IR's semantics).

   Weights: symmetric per output channel, `w_scale[o] = max|W[o]|/127`, `W̃ = rne(W/w_scale)`. Bias:
   int32 `rne(b / (x_scale * w_scale[o]))`.

A `Linear` becomes a 1x1 conv over the globally pooled `(C, 1, 1)` tensor (the classifier).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op, Tensor

#: Real value of one input LSB for the zoo's convention `x = pixel - 128` (x_zero = 0).
DEFAULT_INPUT_SCALE = 1 / 127.5

_ALIAS_MODULES = (nn.Identity, nn.Dropout, nn.Dropout2d, nn.Flatten)
_ADD_FUNCS = (operator.add, operator.iadd, torch.add)
_RELU_FUNCS = (F.relu, torch.relu, torch.relu_)
_CLAMP_FUNCS = (torch.clamp, torch.clip, F.hardtanh, F.relu6)
_ALIAS_METHODS = ("flatten", "view", "reshape", "squeeze", "contiguous")
_SHAPE_METHODS = ("size", "dim")

SUPPORTED = (
    "modules: Conv2d (regular, depthwise, 1x1; square kernel and stride, zero padding, no dilation), "
    "BatchNorm2d (directly after a conv), ReLU, ReLU6, Hardtanh(0, 6), AdaptiveAvgPool2d(1), "
    "global AvgPool2d, "
    "Linear (on a pooled tensor), Flatten, Dropout, Identity; functions: add / +, relu, relu6, clamp(0, 6), "
    "hardtanh(0, 6), flatten / view / reshape / squeeze of a pooled tensor, mean over (2, 3), "
    "adaptive_avg_pool2d(x, 1), global avg_pool2d, dropout"
)


@dataclass
class _FOp:
    """A fused float op, before quantization."""

    kind: str  # conv | add | pool
    name: str
    inputs: list[str]  # value keys
    out_node: str  # the fx node whose (calibrated) value is this op's output
    act: str | None = None  # None | relu | relu6
    weight: np.ndarray | None = None  # float64 OIHW
    bias: np.ndarray | None = None  # float64 [O]
    attrs: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # the value key of the output


class _Recorder(fx.Interpreter):
    """Runs the traced module and records every node's shape and value range."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        self.lo: dict[str, float] = {}
        self.hi: dict[str, float] = {}

    def run_node(self, n: fx.Node) -> Any:
        try:
            out = super().run_node(n)
        except Exception as exc:
            raise TinytrainError(f"{_where(n)}: running the model failed during calibration: {exc}") from exc
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            self.shapes[n.name] = tuple(out.shape)
            if out.numel():
                lo, hi = float(out.min()), float(out.max())
                self.lo[n.name] = min(lo, self.lo.get(n.name, lo))
                self.hi[n.name] = max(hi, self.hi.get(n.name, hi))
        else:
            self.shapes.setdefault(n.name, None)
        return out


def _module_path(n: fx.Node) -> str:
    if n.op == "call_module":
        return str(n.target)
    stack = n.meta.get("nn_module_stack") or {}
    if stack:
        path = list(stack.values())[-1]
        return str(path[0] if isinstance(path, tuple) else path)
    return ""


def _what(n: fx.Node, gm: fx.GraphModule) -> str:
    if n.op == "call_module":
        return f"module {type(gm.get_submodule(str(n.target))).__name__}"
    if n.op == "call_method":
        return f"method .{n.target}()"
    name = getattr(n.target, "__name__", str(n.target))
    mod = (getattr(n.target, "__module__", None) or "").replace("_operator", "operator")
    return f"function {mod + '.' if mod and mod != 'builtins' else ''}{name}"


def _where(n: fx.Node) -> str:
    path = _module_path(n)
    return f"fx node {n.name!r}" + (f" (module path {path!r})" if path else " (top-level forward)")


def _unsupported(n: fx.Node, gm: fx.GraphModule, why: str = "") -> TinytrainError:
    msg = f"unsupported {_what(n, gm)} at {_where(n)}"
    return TinytrainError(msg + (f": {why}" if why else f". Supported: {SUPPORTED}"))


def _pair(v: Any, what: str, n: fx.Node, gm: fx.GraphModule) -> int:
    t = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(set(t)) != 1:
        raise _unsupported(n, gm, f"non-square {what} {t}")
    return int(t[0])


def _arg(n: fx.Node, i: int, key: str, default: Any = None) -> Any:
    if len(n.args) > i:
        return n.args[i]
    return n.kwargs.get(key, default)


def _qparams(lo: float, hi: float, act: str | None) -> tuple[float, int]:
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


def _quantize_weights(
    w: np.ndarray, b: np.ndarray, x_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8 weights, their float32 scales and the int32 bias."""
    amax = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    # a channel whose weights are (nearly) zero but whose bias is not would need a bias beyond int32; widen
    # its weight scale so |bias| <= 2^30, which leaves int32 headroom for acc + bias
    s = np.maximum(amax / 127.0, np.abs(b) / (float(x_scale) * 2.0**30))
    s = np.where(s > 0, s, 1.0 / 127.0).astype(np.float32)
    s64 = s.astype(np.float64)
    wq = np.clip(np.rint(w / s64[:, None, None, None]), -127, 127).astype(np.int8)
    bq = np.clip(np.rint(b / (float(x_scale) * s64)), -(2**31), 2**31 - 1).astype(np.int32)
    return wq, bq, s


def _to_calibration(x: np.ndarray | torch.Tensor, scale: float, zero: int) -> torch.Tensor:
    """The calibration batch as the device sees it: int8 inputs dequantized, float inputs fake-quantized."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[0] < 1:
        raise TinytrainError(f"calibration data must be [N, C, H, W], got shape {tuple(a.shape)}")
    if a.shape[2] != a.shape[3]:
        raise TinytrainError(f"input must be square, got {a.shape[2]}x{a.shape[3]}")
    if a.dtype == np.int8:
        q = a.astype(np.float64)
    elif np.issubdtype(a.dtype, np.floating):
        q = np.clip(np.rint(a.astype(np.float64) / scale) + zero, -128, 127)
    else:
        raise TinytrainError(f"calibration data must be int8 or float, got {a.dtype}")
    return torch.from_numpy(((q - zero) * scale).astype(np.float32))


def quantize_input(
    x: np.ndarray | torch.Tensor, scale: float = DEFAULT_INPUT_SCALE, zero: int = 0
) -> np.ndarray:
    """Float input(s) in the model's units -> the int8 tensor the IR takes (`clamp(rne(x/scale) + zero)`)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.clip(np.rint(a.astype(np.float64) / scale) + zero, -128, 127).astype(np.int8)


def import_torch(
    model: nn.Module,
    calibration: np.ndarray | torch.Tensor,
    *,
    name: str | None = None,
    input_scale: float = DEFAULT_INPUT_SCALE,
    input_zero: int = 0,
    batch_size: int = 64,
    source: str | None = None,
    license: str = "",
) -> Graph:
    """Import a float PyTorch model as an int8 IR graph.

    `calibration` is a batch `[N, C, H, W]` of typical inputs: int8 (the quantized input itself, real
    value `(x - input_zero) * input_scale`) or float in the model's input units (quantized with the same
    parameters first, so calibration sees what the device sees). N of a few dozen to a few hundred
    images is typical. The graph's input resolution is the calibration data's; any other resolution via
    `Graph.with_resolution`. The model is run in eval mode (its mode is restored afterwards).
    """
    x = _to_calibration(calibration, input_scale, input_zero)
    was_training = model.training
    model.eval()
    try:
        try:
            gm = fx.symbolic_trace(model)
        except Exception as exc:  # fx raises many types (TraceError, TypeError, NotImplementedError, ...)
            raise TinytrainError(f"cannot trace {type(model).__name__} with torch.fx: {exc}") from exc
        rec = _Recorder(gm)
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_size):
                rec.run(x[i : i + batch_size])
        return _build(
            gm,
            rec,
            x.shape[1:],
            name or type(model).__name__,
            input_scale,
            input_zero,
            source or f"PyTorch {type(model).__module__}.{type(model).__name__} via torch.fx",
            license,
            int(x.shape[0]),
        )
    finally:
        model.train(was_training)


def _build(
    gm: fx.GraphModule,
    rec: _Recorder,
    in_shape: tuple[int, ...],
    name: str,
    input_scale: float,
    input_zero: int,
    source: str,
    license: str,
    n_calib: int,
) -> Graph:
    fops: list[_FOp] = []
    alias: dict[str, str] = {}  # fx node name -> value key (the fx node name of the value's first producer)
    producer: dict[str, _FOp] = {}  # value key -> fused op
    spatial: dict[str, int] = {}  # value key -> H (== W)
    channels: dict[str, int] = {}
    used_names: set[str] = set()
    input_key: str | None = None
    output_key: str | None = None

    def value(n: Any, user: fx.Node) -> str:
        if not isinstance(n, fx.Node) or n.name not in alias:
            raise _unsupported(user, gm, f"argument {n!r} is not a tensor value the importer can follow")
        return alias[n.name]

    def unique(base: str) -> str:
        nm, i = base, 1
        while nm in used_names:
            i += 1
            nm = f"{base}_{i}"
        used_names.add(nm)
        return nm

    def emit(fop: _FOp, n: fx.Node, c: int, h: int) -> None:
        fop.key = n.name
        fops.append(fop)
        alias[n.name] = n.name
        producer[n.name] = fop
        channels[n.name], spatial[n.name] = c, h

    def foldable(n: fx.Node, src: fx.Node, what: str, kinds: tuple[str, ...]) -> _FOp:
        key = value(src, n)
        fop = producer.get(key)
        if fop is None or fop.kind not in kinds or fop.out_node != src.name:
            raise _unsupported(
                n,
                gm,
                f"{what} must directly follow a {' or '.join(kinds)} (its input is fx node {src.name!r})",
            )
        if len(src.users) != 1:
            raise _unsupported(
                n,
                gm,
                f"cannot fold {what} into {fop.name!r}: its input (fx node {src.name!r}) "
                f"is also used by {sorted(u.name for u in src.users if u is not n)}",
            )
        return fop

    def fold_act(n: fx.Node, src: Any, act: str) -> None:
        if not isinstance(src, fx.Node):
            raise _unsupported(n, gm, "activation of a non-tensor")
        fop = foldable(n, src, "ReLU" if act == "relu" else "ReLU6", ("conv", "add"))
        if fop.act is not None:
            if not (fop.act == "relu6" and act == "relu"):  # relu after relu6 is a no-op
                fop.act = "relu6" if "relu6" in (fop.act, act) else "relu"
        else:
            fop.act = act
        fop.out_node = n.name
        alias[n.name] = alias[src.name]

    def pool(n: fx.Node, src: Any) -> None:
        key = value(src, n)
        path = _module_path(n)
        base = path if n.op == "call_module" else f"{path}.pool" if path else "pool"
        fop = _FOp("pool", unique(base), [key], n.name)
        emit(fop, n, channels[key], 1)

    def alias_flat(n: fx.Node, src: Any) -> None:
        key = value(src, n)
        shape = rec.shapes.get(n.name)
        if spatial[key] != 1 or shape is None or int(np.prod(shape[1:])) != channels[key]:
            raise _unsupported(
                n,
                gm,
                f"reshaping a {channels[key]}x{spatial[key]}x{spatial[key]} map is not "
                f"supported (only a globally pooled [C, 1, 1] tensor may be flattened)",
            )
        alias[n.name] = key

    def clamp_act(n: fx.Node) -> str | None:
        """relu / relu6 if this clamp-like call is one, else None."""
        t = n.target
        if t is F.relu6:
            return "relu6"
        if t is F.hardtanh:
            lo, hi = _arg(n, 1, "min_val", -1.0), _arg(n, 2, "max_val", 1.0)
        else:
            lo, hi = _arg(n, 1, "min"), _arg(n, 2, "max")
        if lo == 0 and hi == 6:
            return "relu6"
        if lo == 0 and hi is None:
            return "relu"
        return None

    for n in gm.graph.nodes:
        shape = rec.shapes.get(n.name)
        if n.op == "placeholder":
            if input_key is not None:
                raise _unsupported(n, gm, "the model must take exactly one input tensor")
            alias[n.name] = input_key = n.name
            channels[n.name], spatial[n.name] = int(in_shape[0]), int(in_shape[1])
            continue
        if n.op == "get_attr":
            raise _unsupported(n, gm, f"a tensor attribute {n.target!r} used as a value")
        if n.op == "output":
            out = n.args[0]
            if not isinstance(out, fx.Node):
                raise _unsupported(n, gm, "the model must return a single logits tensor")
            output_key = value(out, n)
            if spatial[output_key] != 1:
                raise _unsupported(
                    n,
                    gm,
                    f"the model's output must be logits [N, K] (pooled), got a "
                    f"{channels[output_key]}x{spatial[output_key]}x{spatial[output_key]} map",
                )
            continue

        if n.op == "call_module":
            mod = gm.get_submodule(str(n.target))
            src = n.args[0] if n.args else None
            if isinstance(mod, nn.Conv2d):
                key = value(src, n)
                if mod.padding_mode != "zeros":
                    raise _unsupported(n, gm, f"padding_mode {mod.padding_mode!r} (only 'zeros')")
                if tuple(mod.dilation) != (1, 1):
                    raise _unsupported(n, gm, f"dilation {tuple(mod.dilation)}")
                k = _pair(mod.kernel_size, "kernel", n, gm)
                stride = _pair(mod.stride, "stride", n, gm)
                pad = (
                    (k - 1) // 2
                    if mod.padding == "same"
                    else 0
                    if mod.padding == "valid"
                    else _pair(mod.padding, "padding", n, gm)
                )
                if mod.padding == "same" and (stride != 1 or k % 2 == 0):
                    raise _unsupported(n, gm, "padding='same' with an even kernel or stride > 1")
                cin, cout, groups = mod.in_channels, mod.out_channels, mod.groups
                depthwise = groups > 1
                if depthwise and not (groups == cin == cout):
                    raise _unsupported(
                        n,
                        gm,
                        f"grouped conv (groups={groups}, {cin}->{cout} channels); only "
                        "regular (groups=1) and depthwise (groups=in=out) convs",
                    )
                w = mod.weight.detach().double().numpy().copy()
                b = mod.bias.detach().double().numpy().copy() if mod.bias is not None else np.zeros(cout)
                h = (spatial[key] + 2 * pad - k) // stride + 1
                if shape is None or shape[2] != shape[3] or shape[2] != h:
                    raise _unsupported(n, gm, f"input must be square (output shape {shape})")
                emit(
                    _FOp(
                        "conv",
                        unique(str(n.target)),
                        [key],
                        n.name,
                        None,
                        w,
                        b,
                        {"kernel": k, "stride": stride, "padding": pad, "depthwise": depthwise},
                    ),
                    n,
                    cout,
                    h,
                )
            elif isinstance(mod, nn.BatchNorm2d):
                fop = foldable(n, src, "BatchNorm2d", ("conv",))
                if fop.act is not None:
                    raise _unsupported(n, gm, f"BatchNorm2d after the activation of {fop.name!r}")
                if mod.running_mean is None or mod.running_var is None:
                    raise _unsupported(n, gm, "BatchNorm2d without running statistics")
                assert fop.weight is not None and fop.bias is not None
                gamma = mod.weight.detach().double().numpy() if mod.weight is not None else 1.0
                beta = mod.bias.detach().double().numpy() if mod.bias is not None else 0.0
                mean = mod.running_mean.detach().double().numpy()
                inv = gamma / np.sqrt(mod.running_var.detach().double().numpy() + mod.eps)
                fop.weight = fop.weight * np.broadcast_to(inv, (fop.weight.shape[0],))[:, None, None, None]
                fop.bias = (fop.bias - mean) * inv + beta
                fop.out_node = n.name
                alias[n.name] = alias[src.name]
            elif isinstance(mod, nn.ReLU):
                fold_act(n, src, "relu")
            elif isinstance(mod, nn.ReLU6):
                fold_act(n, src, "relu6")
            elif isinstance(mod, nn.Hardtanh) and (mod.min_val, mod.max_val) == (0.0, 6.0):
                fold_act(n, src, "relu6")
            elif isinstance(mod, nn.AdaptiveAvgPool2d):
                if shape is None or tuple(shape[2:]) != (1, 1):
                    raise _unsupported(
                        n, gm, f"output size {mod.output_size} (only global pooling, output 1x1)"
                    )
                pool(n, src)
            elif isinstance(mod, nn.AvgPool2d):
                key = value(src, n)
                hw = spatial[key]
                if _pair(mod.kernel_size, "kernel", n, gm) != hw or _pair(mod.padding, "padding", n, gm) != 0:
                    raise _unsupported(
                        n,
                        gm,
                        f"non-global average pooling (kernel {mod.kernel_size} on a "
                        f"{hw}x{hw} map); only global pooling is supported",
                    )
                pool(n, src)
            elif isinstance(mod, nn.Linear):
                key = value(src, n)
                if spatial[key] != 1 or shape is None or len(shape) != 2:
                    raise _unsupported(
                        n,
                        gm,
                        "Linear needs a globally pooled, flattened input [N, C] "
                        f"(got a {channels[key]}x{spatial[key]}x{spatial[key]} map)",
                    )
                w = mod.weight.detach().double().numpy()[:, :, None, None].copy()
                b = (
                    mod.bias.detach().double().numpy().copy()
                    if mod.bias is not None
                    else np.zeros(w.shape[0])
                )
                emit(
                    _FOp(
                        "conv",
                        unique(str(n.target)),
                        [key],
                        n.name,
                        None,
                        w,
                        b,
                        {"kernel": 1, "stride": 1, "padding": 0, "depthwise": False},
                    ),
                    n,
                    w.shape[0],
                    1,
                )
            elif isinstance(mod, nn.Flatten):
                alias_flat(n, src)
            elif isinstance(mod, _ALIAS_MODULES):
                alias[n.name] = value(src, n)
            else:
                raise _unsupported(n, gm)
            continue

        if n.op == "call_function":
            t = n.target
            if shape is None and (t is getattr or t is operator.getitem):
                continue  # shape arithmetic (x.shape[0]): only usable as view/reshape arguments
            if t in _ADD_FUNCS:
                if (
                    len(n.args) != 2
                    or n.kwargs.get("alpha", 1) != 1
                    or not all(isinstance(a, fx.Node) for a in n.args)
                ):
                    raise _unsupported(
                        n, gm, "only the sum of two tensors (no scalars, no alpha) is supported"
                    )
                a, b = value(n.args[0], n), value(n.args[1], n)
                if (channels[a], spatial[a]) != (channels[b], spatial[b]):
                    raise _unsupported(n, gm, "residual add of tensors of different shapes")
                path = _module_path(n)
                emit(
                    _FOp("add", unique(f"{path}.add" if path else n.name), [a, b], n.name),
                    n,
                    channels[a],
                    spatial[a],
                )
            elif t in _RELU_FUNCS:
                fold_act(n, n.args[0], "relu")
            elif t in _CLAMP_FUNCS:
                act = clamp_act(n)
                if act is None:
                    raise _unsupported(
                        n, gm, "only clamp(0, 6) / hardtanh(0, 6) (ReLU6) or clamp(min=0) (ReLU)"
                    )
                fold_act(n, n.args[0], act)
            elif t is torch.flatten:
                alias_flat(n, n.args[0])
            elif t is F.dropout:
                alias[n.name] = value(n.args[0], n)
            elif t is F.adaptive_avg_pool2d:
                if shape is None or tuple(shape[2:]) != (1, 1):
                    raise _unsupported(n, gm, "only global pooling (output size 1)")
                pool(n, n.args[0])
            elif t is F.avg_pool2d:
                key = value(n.args[0], n)
                k, p = _arg(n, 1, "kernel_size"), _arg(n, 3, "padding", 0)
                if _pair(k, "kernel", n, gm) != spatial[key] or _pair(p, "padding", n, gm) != 0:
                    raise _unsupported(n, gm, "non-global average pooling")
                pool(n, n.args[0])
            elif t is torch.mean:
                _mean(n, gm, shape, pool)
            else:
                raise _unsupported(n, gm)
            continue

        if n.op == "call_method":
            m = str(n.target)
            if m in _SHAPE_METHODS:
                continue
            if m in ("relu", "relu_"):
                fold_act(n, n.args[0], "relu")
            elif m in ("clamp", "clip", "clamp_"):
                act = clamp_act(n)
                if act is None:
                    raise _unsupported(n, gm, "only clamp(0, 6) (ReLU6) or clamp(min=0) (ReLU)")
                fold_act(n, n.args[0], act)
            elif m == "contiguous":
                alias[n.name] = value(n.args[0], n)
            elif m in _ALIAS_METHODS:
                alias_flat(n, n.args[0])
            elif m == "mean":
                _mean(n, gm, shape, pool)
            else:
                raise _unsupported(n, gm)
            continue
        raise _unsupported(n, gm)

    if input_key is None or output_key is None:
        raise TinytrainError(f"{name}: the traced model has no input or no output")
    if output_key not in producer or producer[output_key].kind != "conv":
        raise TinytrainError(
            f"{name}: the model must end with a classifier (Linear or 1x1 conv on the pooled tensor)"
        )
    return _quantize(
        fops,
        rec,
        input_key,
        output_key,
        in_shape,
        name,
        input_scale,
        input_zero,
        spatial,
        channels,
        {
            "source": source,
            "license": license,
            "format": "torch-import",
            "calibration": {"samples": n_calib, "ranges": "min/max"},
        },
    )


def _mean(n: fx.Node, gm: fx.GraphModule, shape: tuple[int, ...] | None, pool: Any) -> None:
    dims = _arg(n, 1, "dim")
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if sorted(d % 4 for d in dims if isinstance(d, int)) != [2, 3]:
        raise _unsupported(n, gm, f"mean over dims {dims}; only the spatial mean over (2, 3) is supported")
    pool(n, n.args[0])


def _quantize(
    fops: list[_FOp],
    rec: _Recorder,
    input_key: str,
    output_key: str,
    in_shape: tuple[int, ...],
    name: str,
    input_scale: float,
    input_zero: int,
    spatial: dict[str, int],
    channels: dict[str, int],
    meta: dict[str, Any],
) -> Graph:
    x = Tensor(
        "input", (int(in_shape[0]), int(in_shape[1]), int(in_shape[2])), float(input_scale), int(input_zero)
    )
    tensors = {x.name: x}
    tname = {input_key: x.name}
    ops: list[Op] = []
    for fop in fops:
        ins = [tensors[tname[k]] for k in fop.inputs]
        out_key = fop.key
        oname = "logits" if out_key == output_key else f"{fop.name}.out"
        c, h = channels[out_key], spatial[out_key]
        if fop.kind == "pool":
            out = Tensor(oname, (c, 1, 1), ins[0].scale, ins[0].zero)
            op = Op(fop.name, "avgpool", [ins[0].name], oname)
        else:
            scale, zero = _qparams(rec.lo[fop.out_node], rec.hi[fop.out_node], fop.act)
            out = Tensor(oname, (c, h, h), float(scale), int(zero))
            if fop.kind == "add":
                op = Op(fop.name, "add", [t.name for t in ins], oname)
            else:
                assert fop.weight is not None and fop.bias is not None
                wq, bq, s = _quantize_weights(fop.weight, fop.bias, ins[0].scale)
                op = Op(
                    fop.name,
                    "conv2d",
                    [ins[0].name],
                    oname,
                    {**fop.attrs, "x_scale": float(ins[0].scale), "x_zero": int(ins[0].zero)},
                    {"weight": wq, "bias": bq, "w_scales": s},
                )
        tensors[oname] = out
        tname[out_key] = oname
        ops.append(op)
    g = Graph(name, tensors, ops, "input", tname[output_key], meta)
    g.validate()
    return g
