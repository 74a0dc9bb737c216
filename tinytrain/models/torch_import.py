"""PyTorch float model -> int8 IR: torch.fx trace, BatchNorm folding, activation folding, post-training
calibration, per-channel symmetric int8 weights.

The importer is a small compiler over the traced fx graph:

1. **Calibrate.** The traced module runs (eval mode, float32) on the calibration batch through an fx
   `Interpreter` that records, for every node, its shape and the min / max of its value.
2. **Fuse.** The nodes are walked in order and grouped into ops (`torch_lower.FOp`): a `Conv1d` / `Conv2d`
   / `Linear` takes the `BatchNorm1d/2d` that directly follows it (folded into weight and bias, float64)
   and then a `ReLU` / `ReLU6` (folded into the output range); a residual add, a Mul and a pool may take a
   following ReLU too. Max / average pools (windowed or global), `torch.cat`, Hardswish, Sigmoid, SiLU
   (Sigmoid + Mul) and Mul become ops of their own. Shape-only nodes (`flatten`, `view`, `squeeze`,
   `Dropout`, `Identity`, ...) become aliases; a trailing Softmax is dropped. Anything else is an error
   naming the module or function, its place (fx node, module path) and what to do.
3. **Quantize** (tinytrain/models/torch_lower.py): each value's range comes from the calibration of its
   *last* fused node (so the folding changes no value); weights symmetric per output channel, bias int32 in
   units of `x_scale * w_scale[o]`. Back end `float-m` (the zoo's ops, when the net is made of square
   convs, adds and a global pool) or `tflm` (the imported-model ops, TFLite Micro's integer kernels).

Layout: the input `[N, C, H, W]` maps to the IR's (C, H, W), a 1-D `[N, C, L]` to (C, 1, L) (a Conv1d is
the 1 x k conv), `[N, F]` to (F, 1, 1). A Linear reads a pooled `[N, C]` vector or a flattened map (the
VALID conv with an H x W kernel; PyTorch's flatten order C, H, W is the IR's OIHW).
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Tensor
from tinytrain.models.torch_lower import FOp, lower_tflm, lower_zoo, make_graph, zoo_misfit

#: Real value of one input LSB for the zoo's convention `x = pixel - 128` (x_zero = 0).
DEFAULT_INPUT_SCALE = 1 / 127.5
NUMERICS = ("auto", "float-m", "tflm")

_DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_RESHAPE_MODULES = (nn.Flatten, nn.Unflatten)
_ADD_FUNCS = (operator.add, operator.iadd, torch.add)
_MUL_FUNCS = (operator.mul, operator.imul, torch.mul)
_RELU_FUNCS = (F.relu, torch.relu, torch.relu_)
_CLAMP_FUNCS = (torch.clamp, torch.clip, F.hardtanh, F.relu6)
_SIGMOID_FUNCS = (torch.sigmoid, F.sigmoid)
_SOFTMAX_FUNCS = (F.softmax, F.log_softmax, torch.softmax, torch.log_softmax)
_RESHAPE_FUNCS = (torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze)
_RESHAPE_METHODS = ("flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous", "view_as")
_SHAPE_METHODS = ("size", "dim")
_MAXPOOL_FUNCS = (F.max_pool1d, F.max_pool2d)
_AVGPOOL_FUNCS = (F.avg_pool1d, F.avg_pool2d)
_ADAPTIVE_FUNCS = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d)

SUPPORTED = (
    "modules: Conv1d, Conv2d (any kernel, stride, zero padding; groups 1 or depthwise; no dilation), "
    "BatchNorm1d/2d (after a conv or Linear), Linear (on a pooled or flattened tensor), ReLU, ReLU6, "
    "Hardtanh(0, 6), Hardswish, Sigmoid, SiLU, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d and "
    "AdaptiveMaxPool1d/2d (output 1 or dividing the input), Flatten, Unflatten, Dropout, Identity, Softmax "
    "(last, dropped); functions: + / add, * / mul, torch.cat, relu, relu6, clamp(0, 6), clamp(min=0), "
    "hardswish, sigmoid, silu, max_pool / avg_pool / adaptive pools, mean over the spatial dims, "
    "flatten / view / reshape / squeeze / unsqueeze, dropout, softmax (last)"
)


class _Recorder(fx.Interpreter):
    """Runs the traced module and records every node's shape and value range."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.extra_traceback = False  # fx would append "While executing ..." lines to our one-line errors
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        self.lo: dict[str, float] = {}
        self.hi: dict[str, float] = {}

    def run_node(self, n: fx.Node) -> Any:
        try:
            out = super().run_node(n)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise TinytrainError(
                f"{_where(n)}: running the model on the calibration batch failed: {first}"
            ) from exc
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


def _short(n: fx.Node, gm: fx.GraphModule) -> str:
    """The source op's name for the summary: the module type, or the function / method name."""
    if n.op == "call_module":
        return type(gm.get_submodule(str(n.target))).__name__
    return str(getattr(n.target, "__name__", n.target))


def _where(n: fx.Node) -> str:
    path = _module_path(n)
    return f"fx node {n.name!r}" + (f" (module path {path!r})" if path else " (top-level forward)")


def _unsupported(n: fx.Node, gm: fx.GraphModule, why: str = "") -> TinytrainError:
    msg = f"unsupported {_what(n, gm)} at {_where(n)}"
    return TinytrainError(
        msg + (f": {why}" if why else f"; replace it with a supported layer. Supported: {SUPPORTED}")
    )


def _arg(n: fx.Node, i: int, key: str, default: Any = None) -> Any:
    if len(n.args) > i:
        return n.args[i]
    return n.kwargs.get(key, default)


def _tuple(v: Any, nd: int) -> tuple[int, ...]:
    t = tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd
    return tuple(int(x) for x in t)


def chw_of(shape: tuple[int, ...] | None) -> tuple[int, int, int] | None:
    """The IR's (C, H, W) of a PyTorch tensor shape with its batch: [N, C, H, W], [N, C, L], [N, F]."""
    if shape is None:
        return None
    if len(shape) == 4:
        return (int(shape[1]), int(shape[2]), int(shape[3]))
    if len(shape) == 3:
        return (int(shape[1]), 1, int(shape[2]))
    if len(shape) == 2:
        return (int(shape[1]), 1, 1)
    return None


def _to_calibration(x: np.ndarray | torch.Tensor, scale: float, zero: int) -> tuple[torch.Tensor, float]:
    """The calibration batch as the device sees it (int8 inputs dequantized, float inputs fake-quantized),
    and the fraction of float inputs the int8 range clipped."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim not in (2, 3, 4) or a.shape[0] < 1 or a.size == 0:
        raise TinytrainError(
            f"calibration data must be a batch [N, C, H, W], [N, C, L] or [N, F], got shape {tuple(a.shape)}"
        )
    clipped = 0.0
    if a.dtype == np.int8:
        q = a.astype(np.float64)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise TinytrainError("calibration data contain NaN or infinite values")
        r = np.rint(a.astype(np.float64) / scale) + zero
        clipped = float(np.mean((r < -128) | (r > 127)))
        q = np.clip(r, -128, 127)
    else:
        raise TinytrainError(f"calibration data must be int8 or float, got {a.dtype}")
    return torch.from_numpy(((q - zero) * scale).astype(np.float32)), clipped


def quantize_input(
    x: np.ndarray | torch.Tensor, scale: float = DEFAULT_INPUT_SCALE, zero: int = 0
) -> np.ndarray:
    """Float input(s) in the model's units -> the int8 tensor the IR takes (`clamp(rne(x/scale) + zero)`)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.clip(np.rint(a.astype(np.float64) / scale) + zero, -128, 127).astype(np.int8)


def input_quantization_from(calibration: np.ndarray | torch.Tensor) -> tuple[float, int]:
    """(scale, zero) covering a float calibration batch's min/max (widened to include 0)."""
    a = (
        calibration.detach().cpu().numpy()
        if isinstance(calibration, torch.Tensor)
        else np.asarray(calibration)
    )
    if not np.issubdtype(a.dtype, np.floating) or a.size == 0:
        raise TinytrainError("an input scale from the calibration data needs float calibration data")
    lo, hi = min(float(a.min()), 0.0), max(float(a.max()), 0.0)
    if hi - lo < 1e-9:
        return DEFAULT_INPUT_SCALE, 0
    s = (hi - lo) / 255.0
    return s, int(np.clip(np.rint(-128.0 - lo / s), -128, 127))


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
    numerics: str = "auto",
) -> Graph:
    """Import a float PyTorch model as an int8 IR graph.

    `calibration` is a batch `[N, C, H, W]` (`[N, C, L]` for a 1-D model) of typical inputs: int8 (the
    quantized input itself, real value `(x - input_zero) * input_scale`) or float in the model's input
    units (quantized with the same parameters first, so calibration sees what the device sees). N of a few
    dozen to a few hundred samples is typical. The graph's input size is the calibration data's.

    `numerics`: "float-m" (the zoo's ops; only square convs, adds, a global pool and a classifier last),
    "tflm" (the imported-model ops with TFLite Micro's integer kernels: everything the importer maps), or
    "auto" (float-m when the net fits it, else tflm). The model runs in eval mode (its mode is restored).
    """
    if numerics not in NUMERICS:
        raise TinytrainError(f"numerics {numerics!r}: expected one of {', '.join(NUMERICS)}")
    if not isinstance(model, nn.Module):
        raise TinytrainError(f"expected a torch.nn.Module, got {type(model).__name__}")
    x, clipped = _to_calibration(calibration, input_scale, input_zero)
    was_training = model.training
    model.eval()
    try:
        try:
            gm = fx.symbolic_trace(model)
        except Exception as exc:  # fx raises many types (TraceError, TypeError, NotImplementedError, ...)
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TinytrainError(
                f"cannot trace {type(model).__name__} with torch.fx ({msg}); remove data-dependent control "
                "flow from forward()"
            ) from exc
        rec = _Recorder(gm)
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_size):
                rec.run(x[i : i + batch_size])
        walk = _Walker(gm, rec, tuple(int(v) for v in x.shape[1:]))
        walk.run()
    finally:
        model.train(was_training)
    label = name or type(model).__name__
    src = source or f"PyTorch {type(model).__module__}.{type(model).__name__} via torch.fx"
    return _lower(walk, label, src, license, numerics, input_scale, input_zero, int(x.shape[0]), clipped)


def _lower(
    walk: _Walker,
    name: str,
    source: str,
    license: str,
    numerics: str,
    input_scale: float,
    input_zero: int,
    n_calib: int,
    clipped: float,
) -> Graph:
    assert walk.input_key is not None and walk.output_key is not None
    in_chw = walk.shp[walk.input_key]
    x = Tensor("input", in_chw, float(input_scale), int(input_zero))
    misfit = zoo_misfit(walk.fops, walk.shp, walk.output_key)
    if numerics == "float-m" and misfit:
        raise TinytrainError(
            f"{name}: numerics float-m (the zoo's ops) cannot express it: {misfit}; use tflm"
        )
    chosen = "float-m" if numerics != "tflm" and misfit is None else "tflm"
    lower = lower_zoo if chosen == "float-m" else lower_tflm
    tensors, ops, out = lower(
        walk.fops, walk.rec.lo, walk.rec.hi, x, walk.input_key, walk.output_key, walk.shp
    )
    rank = len(walk.in_shape) + 1
    meta = {
        "source": source,
        "license": license,
        "format": "torch-import",
        "numerics": chosen,
        "source_layout": {4: "NCHW", 3: "NCW", 2: "NC"}[rank],
        "source_input_shape": [1, *walk.in_shape],
        "source_input_type": "float32",
        "input_quantization": {"scale": x.scale, "zero": x.zero},
        "calibration": {"samples": n_calib, "ranges": "min/max", "inputs_clipped": round(clipped, 6)},
        "source_ops": dict(sorted(walk.source_ops.items())),
        "dropped": walk.dropped,
        "folded": walk.folded,
        "folded_ops": walk.folded_ops,
    }
    if chosen == "tflm" and numerics == "auto" and misfit:
        meta["numerics_reason"] = misfit
    return make_graph(name, tensors, ops, out, meta)


class _Walker:
    """The fx graph -> fused float ops (module doc, step 2)."""

    def __init__(self, gm: fx.GraphModule, rec: _Recorder, in_shape: tuple[int, ...]) -> None:
        self.gm, self.rec, self.in_shape = gm, rec, in_shape
        self.fops: list[FOp] = []
        self.alias: dict[str, str] = {}  # fx node name -> value key (fx node name of the value's producer)
        self.producer: dict[str, FOp] = {}  # value key -> fused op
        self.shp: dict[str, tuple[int, int, int]] = {}  # value key -> (C, H, W)
        self.names: set[str] = {"input", "logits"}
        self.input_key: str | None = None
        self.output_key: str | None = None
        self.source_ops: Counter[str] = Counter()
        self.dropped: list[str] = []
        self.folded: list[str] = []
        self.fold_counts: Counter[str] = Counter()
        self.folded_ops = 0
        self.nodes = {m.name: m for m in gm.graph.nodes}

    # helpers ------------------------------------------------------------------------------------------
    def fail(self, n: fx.Node, why: str = "") -> TinytrainError:
        return _unsupported(n, self.gm, why)

    def value(self, a: Any, user: fx.Node) -> str:
        if not isinstance(a, fx.Node) or a.name not in self.alias:
            raise self.fail(user, f"argument {a!r} is not a tensor value the importer can follow")
        return self.alias[a.name]

    def spatial(self, a: Any, user: fx.Node, what: str) -> str:
        """The value key of `a`, which must be in the [N, C, H, W] / [N, C, L] layout of its value."""
        key = self.value(a, user)
        shape = self.rec.shapes.get(a.name)
        if chw_of(shape) != self.shp[key]:
            raise self.fail(
                user,
                f"{what} of a reshaped tensor {list(shape or [])} (the value is {self.shp[key]} as "
                "(C, H, W)); "
                "only a Linear may read a flattened map",
            )
        return key

    def unique(self, base: str) -> str:
        base = "".join(c if c.isalnum() or c in "_.-" else "_" for c in base) or "op"
        nm, i = base, 1
        while nm in self.names:
            i += 1
            nm = f"{base}_{i}"
        self.names.add(nm)
        return nm

    def layer(self, n: fx.Node, kind: str) -> str:
        if n.op == "call_module":
            return self.unique(str(n.target))
        path = _module_path(n)
        return self.unique(f"{path}.{kind}" if path else n.name)

    def out_chw(self, n: fx.Node) -> tuple[int, int, int]:
        c = chw_of(self.rec.shapes.get(n.name))
        if c is None:
            raise self.fail(
                n, f"output shape {self.rec.shapes.get(n.name)} (expected [N, C, H, W], [N, C, L], [N, F])"
            )
        return c

    def emit(self, f: FOp, n: fx.Node, chw: tuple[int, int, int]) -> FOp:
        f.key = n.name
        f.source_op = f.source_op or _short(n, self.gm)
        self.fops.append(f)
        self.alias[n.name] = n.name
        self.producer[n.name] = f
        self.shp[n.name] = chw
        return f

    def real_users(self, n: fx.Node) -> list[fx.Node]:
        """The users of n's value, looking through pass-through nodes (reshapes, dropout)."""
        out: list[fx.Node] = []
        for u in n.users:
            if self.passthrough(u):
                out.extend(self.real_users(u))
            else:
                out.append(u)
        return out

    def passthrough(self, n: fx.Node) -> bool:
        if n.op == "call_module":
            return isinstance(
                self.gm.get_submodule(str(n.target)), (*_DROPOUT_MODULES, *_RESHAPE_MODULES, nn.Identity)
            )
        if n.op == "call_method":
            return str(n.target) in _RESHAPE_METHODS
        if n.op == "call_function":
            return n.target in _RESHAPE_FUNCS or n.target is F.dropout
        return False

    def foldable(self, n: fx.Node, src: Any, what: str, kinds: tuple[str, ...]) -> FOp:
        if not isinstance(src, fx.Node):
            raise self.fail(n, f"{what} of a non-tensor")
        key = self.value(src, n)
        f = self.producer.get(key)
        if f is None or f.kind not in kinds:
            made = "the model input" if f is None else f"a {f.source_op} ({f.kind})"
            raise self.fail(
                n,
                f"{what} must directly follow a {' / '.join(kinds)} op; its input is {made}: "
                f"move the {what} right after such a layer",
            )
        last = self.nodes[f.out_node]
        others = [u.name for u in self.real_users(last) if u is not n]
        if others:
            raise self.fail(
                n,
                f"cannot fold {what} into {f.name!r}: its input (fx node {src.name!r}) "
                f"is also used by {sorted(others)}",
            )
        return f

    def fold_act(self, n: fx.Node, src: Any, act: str) -> None:
        label = "ReLU" if act == "relu" else "ReLU6"
        f = self.foldable(n, src, label, ("conv", "add", "mul", "maxpool", "avgpool"))
        if f.kind == "avgpool" and f.attrs.get("count_include_pad"):
            raise self.fail(n, f"{label} after an average pool with count_include_pad and padding; pad 0")
        if f.act is not None:
            if not (f.act == "relu6" and act == "relu"):  # relu after relu6 is a no-op
                f.act = "relu6" if "relu6" in (f.act, act) else "relu"
        else:
            f.act = act
        f.out_node = n.name
        self.alias[n.name] = self.alias[src.name]
        self.fold_counts[f"{_short(n, self.gm)} into the clamp of the op before"] += 1  # "3 ReLU into ..."

    def clamp_act(self, n: fx.Node) -> str | None:
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

    # the walk -----------------------------------------------------------------------------------------
    def run(self) -> None:
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                if self.input_key is not None:
                    raise self.fail(n, "the model must take exactly one input tensor")
                chw = chw_of((1, *self.in_shape))
                assert chw is not None
                self.alias[n.name] = self.input_key = n.name
                self.shp[n.name] = chw
            elif n.op == "get_attr":
                raise self.fail(
                    n, f"a tensor attribute {n.target!r} used as a value; use modules (nn.Conv2d, ...)"
                )
            elif n.op == "output":
                self.output(n)
            else:
                self.node(n)
        if self.input_key is None or self.output_key is None:
            raise TinytrainError("the traced model has no input or no output")
        self.folded[:0] = [f"{v} {k}" for k, v in sorted(self.fold_counts.items())]
        self.folded_ops = sum(self.fold_counts.values()) + len(self.folded) - len(self.fold_counts)

    def output(self, n: fx.Node) -> None:
        out = n.args[0]
        if not isinstance(out, fx.Node):
            raise self.fail(n, "the model must return a single logits tensor [N, K]")
        key = self.value(out, n)
        shape = self.rec.shapes.get(out.name)
        c, h, w = self.shp[key]
        if shape is None or len(shape) != 2 or h * w != 1:
            raise self.fail(
                n,
                f"the model's output must be logits [N, K], got {list(shape or [])} ({c}x{h}x{w} as C, H, W)",
            )
        if key == self.input_key:
            raise self.fail(n, "the model computes nothing: its output is its input")
        self.output_key = key

    def node(self, n: fx.Node) -> None:
        t = n.target
        if (
            n.op == "call_function"
            and self.rec.shapes.get(n.name) is None
            and t in (getattr, operator.getitem)
        ):
            return  # shape arithmetic (x.shape[0]): only usable as view/reshape arguments
        if n.op == "call_method" and str(t) in _SHAPE_METHODS:
            return
        self.source_ops[_short(n, self.gm)] += 1
        if n.op == "call_module":
            return self.module(n, self.gm.get_submodule(str(t)))
        if n.op == "call_method":
            return self.method(n, str(t))
        if n.op == "call_function":
            return self.function(n)
        raise self.fail(n)

    def module(self, n: fx.Node, mod: nn.Module) -> None:
        src = n.args[0] if n.args else None
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            return self.conv(n, mod, src)
        if isinstance(mod, nn.Linear):
            return self.linear(n, mod, src)
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self.batchnorm(n, mod, src)
        if isinstance(mod, nn.ReLU):
            return self.fold_act(n, src, "relu")
        if isinstance(mod, nn.ReLU6) or (
            isinstance(mod, nn.Hardtanh) and (mod.min_val, mod.max_val) == (0.0, 6.0)
        ):
            return self.fold_act(n, src, "relu6")
        if isinstance(mod, nn.Hardswish):
            return self.unary(n, src, "hardswish")
        if isinstance(mod, nn.Sigmoid):
            return self.unary(n, src, "sigmoid")
        if isinstance(mod, nn.SiLU):
            return self.silu(n, src)
        if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d)):
            if mod.return_indices:
                raise self.fail(n, "return_indices=True")
            return self.pool(
                n, src, "maxpool", mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode
            )
        if isinstance(mod, (nn.AvgPool1d, nn.AvgPool2d)):
            if getattr(mod, "divisor_override", None) is not None:
                raise self.fail(n, "divisor_override (the divisor is the window's size)")
            return self.pool(
                n,
                src,
                "avgpool",
                mod.kernel_size,
                mod.stride,
                mod.padding,
                1,
                mod.ceil_mode,
                mod.count_include_pad,
            )
        if isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            return self.adaptive(n, src, "avgpool")
        if isinstance(mod, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
            if mod.return_indices:
                raise self.fail(n, "return_indices=True")
            return self.adaptive(n, src, "maxpool")
        if isinstance(mod, _DROPOUT_MODULES):
            self.alias[n.name] = self.value(src, n)
            self.dropped.append(f"{type(mod).__name__} {str(n.target)!r} (identity at inference)")
            return None
        if isinstance(mod, nn.Identity):
            self.alias[n.name] = self.value(src, n)
            return None
        if isinstance(mod, _RESHAPE_MODULES):
            return self.reshape(n, src)
        if isinstance(mod, (nn.Softmax, nn.LogSoftmax)):
            return self.softmax(n, src)
        raise self.fail(n)

    def method(self, n: fx.Node, m: str) -> None:
        src = n.args[0] if n.args else None
        if m in ("relu", "relu_"):
            return self.fold_act(n, src, "relu")
        if m in ("clamp", "clip", "clamp_"):
            act = self.clamp_act(n)
            if act is None:
                raise self.fail(n, "only clamp(0, 6) (ReLU6) or clamp(min=0) (ReLU)")
            return self.fold_act(n, src, act)
        if m in ("sigmoid", "sigmoid_"):
            return self.unary(n, src, "sigmoid")
        if m in _RESHAPE_METHODS:
            return self.reshape(n, src)
        if m == "mean":
            return self.mean(n)
        if m in ("add", "add_"):
            return self.add(n)
        if m in ("mul", "mul_"):
            return self.mul(n)
        if m in ("softmax", "log_softmax"):
            return self.softmax(n, src)
        raise self.fail(n)

    def function(self, n: fx.Node) -> None:
        t = n.target
        src = n.args[0] if n.args else None
        if t in _ADD_FUNCS:
            return self.add(n)
        if t in _MUL_FUNCS:
            return self.mul(n)
        if t in _RELU_FUNCS:
            return self.fold_act(n, src, "relu")
        if t in _CLAMP_FUNCS:
            act = self.clamp_act(n)
            if act is None:
                raise self.fail(n, "only clamp(0, 6) / hardtanh(0, 6) (ReLU6) or clamp(min=0) (ReLU)")
            return self.fold_act(n, src, act)
        if t is F.hardswish:
            return self.unary(n, src, "hardswish")
        if t in _SIGMOID_FUNCS:
            return self.unary(n, src, "sigmoid")
        if t is F.silu:
            return self.silu(n, src)
        if t in (torch.cat, torch.concat):
            return self.cat(n)
        if t in _RESHAPE_FUNCS:
            return self.reshape(n, src)
        if t is F.dropout:
            self.alias[n.name] = self.value(src, n)
            self.dropped.append(f"dropout at {n.name!r} (identity at inference)")
            return None
        if t in _MAXPOOL_FUNCS:
            if _arg(n, 6, "return_indices", False):
                raise self.fail(n, "return_indices=True")
            k = _arg(n, 1, "kernel_size")
            return self.pool(
                n,
                src,
                "maxpool",
                k,
                _arg(n, 2, "stride"),
                _arg(n, 3, "padding", 0),
                _arg(n, 4, "dilation", 1),
                _arg(n, 5, "ceil_mode", False),
            )
        if t in _AVGPOOL_FUNCS:
            if _arg(n, 6, "divisor_override") is not None:
                raise self.fail(n, "divisor_override (the divisor is the window's size)")
            return self.pool(
                n,
                src,
                "avgpool",
                _arg(n, 1, "kernel_size"),
                _arg(n, 2, "stride"),
                _arg(n, 3, "padding", 0),
                1,
                _arg(n, 4, "ceil_mode", False),
                _arg(n, 5, "count_include_pad", True),
            )
        if t in _ADAPTIVE_FUNCS:
            return self.adaptive(n, src, "maxpool" if "max" in t.__name__ else "avgpool")
        if t is torch.mean:
            return self.mean(n)
        if t in _SOFTMAX_FUNCS:
            return self.softmax(n, src)
        raise self.fail(n)

    # ops ----------------------------------------------------------------------------------------------
    def conv(self, n: fx.Node, mod: nn.Conv1d | nn.Conv2d, src: Any) -> None:
        key = self.spatial(src, n, "a conv")
        c, h, w = self.shp[key]
        one_d = isinstance(mod, nn.Conv1d)
        nd = 1 if one_d else 2
        if mod.padding_mode != "zeros":
            raise self.fail(n, f"padding_mode {mod.padding_mode!r} (only 'zeros')")
        if any(d != 1 for d in _tuple(mod.dilation, nd)):
            raise self.fail(n, f"dilation {tuple(mod.dilation)}; use dilation 1 (a larger kernel instead)")
        k, s = _tuple(mod.kernel_size, nd), _tuple(mod.stride, nd)
        kh, kw = (1, k[0]) if one_d else k
        sh, sw = (1, s[0]) if one_d else s
        if mod.padding == "valid":
            pt = pb = pl = pr = 0
        elif mod.padding == "same":  # PyTorch: total k - 1, the odd pixel after
            pt, pl = (kh - 1) // 2, (kw - 1) // 2
            pb, pr = kh - 1 - pt, kw - 1 - pl
        else:
            p = _tuple(mod.padding, nd)
            pt, pl = (0, p[0]) if one_d else p
            pb, pr = pt, pl
        cin, cout, groups = mod.in_channels, mod.out_channels, mod.groups
        attrs: dict[str, Any] = {"depthwise": False}
        if groups > 1:
            if groups != cin or cout % cin:
                raise self.fail(
                    n,
                    f"grouped conv (groups={groups}, {cin}->{cout} channels); only regular (groups=1) and "
                    "depthwise (groups=in_channels) convs: split it into separate convs + torch.cat",
                )
            attrs["depthwise"] = True
            if cout != cin:
                attrs["depth_multiplier"] = cout // cin
        wt = mod.weight.detach().double().numpy().copy()
        if one_d:
            wt = wt[:, :, None, :]
        b = mod.bias.detach().double().numpy().copy() if mod.bias is not None else np.zeros(cout)
        ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
        chw = self.out_chw(n)
        if chw != (cout, ho, wo):
            raise self.fail(n, f"output {chw} (C, H, W) but the geometry gives {(cout, ho, wo)}")
        attrs.update(
            {
                "kernel_h": kh,
                "kernel_w": kw,
                "stride_h": sh,
                "stride_w": sw,
                "pad_top": pt,
                "pad_bottom": pb,
                "pad_left": pl,
                "pad_right": pr,
            }
        )
        self.emit(FOp("conv", self.layer(n, "conv"), [key], n.name, None, wt, b, attrs), n, chw)

    def linear(self, n: fx.Node, mod: nn.Linear, src: Any) -> None:
        key = self.value(src, n)
        shape = self.rec.shapes.get(src.name)
        c, h, w = self.shp[key]
        if shape is None or len(shape) != 2 or shape[1] != c * h * w:
            raise self.fail(
                n,
                f"Linear reads {list(shape or [])}; it needs a pooled or flattened input [N, C*H*W] of a "
                f"{c}x{h}x{w} value (flatten(x, 1) first)",
            )
        wt = mod.weight.detach().double().numpy().reshape(mod.out_features, c, h, w).copy()
        b = mod.bias.detach().double().numpy().copy() if mod.bias is not None else np.zeros(mod.out_features)
        attrs = {
            "depthwise": False,
            "kernel_h": h,
            "kernel_w": w,
            "stride_h": 1,
            "stride_w": 1,
            "pad_top": 0,
            "pad_bottom": 0,
            "pad_left": 0,
            "pad_right": 0,
        }
        if h * w > 1:
            self.folded.append(f"the flatten before Linear {str(n.target)!r} (a {h}x{w} VALID conv)")
        self.emit(
            FOp("conv", self.layer(n, "linear"), [key], n.name, None, wt, b, attrs),
            n,
            (mod.out_features, 1, 1),
        )

    def batchnorm(self, n: fx.Node, mod: nn.BatchNorm1d | nn.BatchNorm2d, src: Any) -> None:
        what = type(mod).__name__
        f = self.foldable(n, src, what, ("conv",))
        if f.act is not None:
            raise self.fail(
                n, f"{what} after the activation of {f.name!r}; put it between the conv and the activation"
            )
        if mod.running_mean is None or mod.running_var is None:
            raise self.fail(n, f"{what} without running statistics (track_running_stats=False)")
        assert f.weight is not None and f.bias is not None
        co = f.weight.shape[0]
        gamma = mod.weight.detach().double().numpy() if mod.weight is not None else np.ones(co)
        beta = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros(co)
        mean = mod.running_mean.detach().double().numpy()
        inv = gamma / np.sqrt(mod.running_var.detach().double().numpy() + mod.eps)
        f.weight = f.weight * inv[:, None, None, None]
        f.bias = (f.bias - mean) * inv + beta
        f.out_node = n.name
        self.alias[n.name] = self.alias[src.name]
        self.fold_counts[f"{what} into the conv / Linear before"] += 1

    def unary(self, n: fx.Node, src: Any, kind: str) -> None:
        key = self.value(src, n)
        self.emit(FOp(kind, self.layer(n, kind), [key], n.name), n, self.shp[key])

    def silu(self, n: fx.Node, src: Any) -> None:
        """SiLU = x * sigmoid(x): a Sigmoid op, then a Mul."""
        key = self.value(src, n)
        name = self.layer(n, "silu")
        sig = FOp("sigmoid", self.unique(f"{name}.sigmoid"), [key], n.name, source_op=_short(n, self.gm))
        sig.key = f"{n.name}.sigmoid"
        self.fops.append(sig)
        self.producer[sig.key] = sig
        self.shp[sig.key] = self.shp[key]
        self.emit(FOp("mul", name, [key, sig.key], n.name), n, self.shp[key])

    def add(self, n: fx.Node) -> None:
        if (
            len(n.args) != 2
            or n.kwargs.get("alpha", 1) != 1
            or not all(isinstance(a, fx.Node) for a in n.args)
        ):
            raise self.fail(n, "only the sum of two tensors (no scalars, no alpha) is supported")
        a, b = self.value(n.args[0], n), self.value(n.args[1], n)
        if self.shp[a] != self.shp[b]:
            raise self.fail(
                n, f"adding tensors of different shapes {self.shp[a]} + {self.shp[b]} (no broadcasting)"
            )
        self.emit(FOp("add", self.layer(n, "add"), [a, b], n.name), n, self.shp[a])

    def mul(self, n: fx.Node) -> None:
        if len(n.args) != 2 or not all(isinstance(a, fx.Node) for a in n.args):
            raise self.fail(
                n, "only the product of two tensors (no scalars) is supported; fold constants into a conv"
            )
        a, b = self.value(n.args[0], n), self.value(n.args[1], n)
        sa, sb = self.shp[a], self.shp[b]
        if sa != sb and sa == (sb[0], 1, 1):
            a, b, sa, sb = b, a, sb, sa  # the broadcast operand second
        if sa != sb and sb != (sa[0], 1, 1):
            raise self.fail(n, f"multiplying {sa} by {sb}: equal shapes or a per-channel (C, 1, 1) gate only")
        self.emit(FOp("mul", self.layer(n, "mul"), [a, b], n.name), n, sa)

    def cat(self, n: fx.Node) -> None:
        parts = _arg(n, 0, "tensors")
        dim = int(_arg(n, 1, "dim", 0))
        if not isinstance(parts, (list, tuple)) or len(parts) < 2:
            raise self.fail(n, "torch.cat of fewer than two tensors")
        keys = [self.spatial(p, n, "torch.cat") for p in parts]
        rank = len(self.rec.shapes.get(parts[0].name) or ())
        axis = {4: {1: 0, 2: 1, 3: 2}, 3: {1: 0, 2: 2}, 2: {1: 0}}.get(rank, {}).get(
            dim % rank if rank else dim
        )
        if axis is None:
            raise self.fail(
                n, f"concatenation along dim {dim} of a rank-{rank} tensor (only channels or space)"
            )
        self.emit(FOp("concat", self.layer(n, "cat"), keys, n.name, attrs={"axis": axis}), n, self.out_chw(n))

    def pool(
        self,
        n: fx.Node,
        src: Any,
        kind: str,
        k: Any,
        s: Any,
        p: Any,
        d: Any,
        ceil: Any,
        count_pad: Any = False,
    ) -> None:
        key = self.spatial(src, n, "a pool")
        c, h, w = self.shp[key]
        one_d = len(self.rec.shapes.get(src.name) or ()) == 3
        nd = 1 if one_d else 2
        if ceil:
            raise self.fail(n, "ceil_mode=True; use ceil_mode=False (pad the input instead)")
        if any(v != 1 for v in _tuple(d, nd)):
            raise self.fail(n, f"dilation {d}")
        kk = _tuple(k, nd)
        ss = _tuple(s if s is not None and s != [] and s != () else k, nd)
        pp = _tuple(p, nd)
        kh, kw = (1, kk[0]) if one_d else kk
        sh, sw = (1, ss[0]) if one_d else ss
        pt, pl = (0, pp[0]) if one_d else pp
        ho, wo = (h + 2 * pt - kh) // sh + 1, (w + 2 * pl - kw) // sw + 1
        chw = self.out_chw(n)
        if chw != (c, ho, wo):
            raise self.fail(n, f"output {chw} (C, H, W) but the geometry gives {(c, ho, wo)}")
        if kind == "avgpool" and (kh, kw) == (h, w) and (ho, wo) == (1, 1) and pt == pl == 0:
            return self.gpool(n, key)
        attrs = {
            "kernel_h": kh,
            "kernel_w": kw,
            "stride_h": sh,
            "stride_w": sw,
            "pad_top": pt,
            "pad_bottom": pt,
            "pad_left": pl,
            "pad_right": pl,
        }
        if kind == "avgpool" and count_pad and (pt or pl):
            attrs["count_include_pad"] = 1
        self.emit(FOp(kind, self.layer(n, kind), [key], n.name, attrs=attrs), n, chw)

    def adaptive(self, n: fx.Node, src: Any, kind: str) -> None:
        key = self.spatial(src, n, "an adaptive pool")
        c, h, w = self.shp[key]
        _, oh, ow = self.out_chw(n)
        if h % oh or w % ow:
            raise self.fail(
                n, f"output {oh}x{ow} does not divide the input {h}x{w}; use output size 1 or a divisor"
            )
        if kind == "avgpool" and (oh, ow) == (1, 1):
            return self.gpool(n, key)
        kh, kw = h // oh, w // ow
        attrs = {
            "kernel_h": kh,
            "kernel_w": kw,
            "stride_h": kh,
            "stride_w": kw,
            "pad_top": 0,
            "pad_bottom": 0,
            "pad_left": 0,
            "pad_right": 0,
        }
        self.emit(FOp(kind, self.layer(n, kind), [key], n.name, attrs=attrs), n, (c, oh, ow))

    def gpool(self, n: fx.Node, key: str) -> None:
        self.emit(FOp("gpool", self.layer(n, "pool"), [key], n.name), n, (self.shp[key][0], 1, 1))

    def mean(self, n: fx.Node) -> None:
        src = n.args[0]
        key = self.spatial(src, n, "a mean")
        rank = len(self.rec.shapes.get(src.name) or ())
        dims = _arg(n, 1, "dim")
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
        if not all(isinstance(d, int) for d in dims) or sorted(d % rank for d in dims) != list(
            range(2, rank)
        ):
            raise self.fail(
                n, f"mean over dims {dims}; only the spatial mean (dims {tuple(range(2, rank))}) is supported"
            )
        self.gpool(n, key)

    def reshape(self, n: fx.Node, src: Any) -> None:
        key = self.value(src, n)
        shape = self.rec.shapes.get(n.name)
        c, h, w = self.shp[key]
        if (
            shape is None
            or int(np.prod(shape[1:])) != c * h * w
            or shape[0] != self.rec.shapes.get(src.name, (0,))[0]
        ):
            raise self.fail(
                n, f"reshape of a {c}x{h}x{w} value to {list(shape or [])} (the batch must stay first)"
            )
        self.alias[n.name] = key

    def softmax(self, n: fx.Node, src: Any) -> None:
        users = self.real_users(n)
        if len(users) != 1 or users[0].op != "output":
            raise self.fail(
                n, "a Softmax that is not the model's last op; only a trailing Softmax is dropped"
            )
        self.alias[n.name] = self.value(src, n)
        self.dropped.append(
            f"{_short(n, self.gm)} at {n.name!r} at the end (training applies its own softmax "
            "cross-entropy to the logits; the predicted class is unchanged)"
        )
