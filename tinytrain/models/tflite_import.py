"""`.tflite` (full-integer int8, as the TFLite converter writes it) -> tinytrain IR, numerics "tflm".

Parsed with the `tflite` package (the flatbuffer schema's generated readers); no TensorFlow. Every op maps
to one IR op of tinytrain/ops (registry.py): CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED become `qconv`
(FULLY_CONNECTED on an [H, W, C] tensor is a VALID conv with an H x W kernel: TFLite flattens NHWC in the
order of the device's HWC layout), ADD `qadd`, MAX_POOL_2D / AVERAGE_POOL_2D `qpool`, MEAN `qmean`, PAD /
PADV2 `qpad`, CONCATENATION `qconcat`. RESHAPE / SQUEEZE / EXPAND_DIMS are folded (the converter wraps a
Conv1D as EXPAND_DIMS -> CONV_2D -> RESHAPE; in HWC a reshape moves no byte). Dropped, and said so: the
QUANTIZE of a float input, the DEQUANTIZE of the output, a trailing SOFTMAX.

Tensors map to the IR's (C, H, W): [1, H, W, C] -> (C, H, W), [1, W, C] (a 1-D signal, NWC) -> (C, 1, W),
[1, K] -> (K, 1, 1). Errors are `TinytrainError`s naming the file, the op (builtin name, index) and its
tensors, and what to do.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op, Tensor
from tinytrain.models.importer import check_dims, check_quant
from tinytrain.ops import tflm

FORMAT = "tflite"
RECONVERT = (
    "re-convert with full-integer quantization: converter.optimizations = [tf.lite.Optimize.DEFAULT], "
    "converter.representative_dataset = ..., "
    "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]"
)
_TYPE_NAMES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    7: "int16",
    9: "int8",
    10: "float64",
}
_ACT = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PADDING = {0: "SAME", 1: "VALID"}
SUPPORTED_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "ADD",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "MEAN",
    "PAD",
    "PADV2",
    "CONCATENATION",
    "HARD_SWISH",
    "LOGISTIC",
    "MUL",
    "RESHAPE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "QUANTIZE (input)",
    "DEQUANTIZE (output)",
    "SOFTMAX (last)",
)


def _mod(name: str) -> Any:
    return importlib.import_module(f"tflite.{name}")


def _opname(code: int) -> str:
    from tflite.utils import BUILTIN_OPCODE2NAME

    return str(BUILTIN_OPCODE2NAME.get(code, f"builtin #{code}"))


def tflite_padding(size: int, k: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(output size, pad before, pad after) as TFLite computes them: SAME puts the odd pixel after."""
    out = (size + stride - 1) // stride if padding == "SAME" else (size - k + stride) // stride
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2, total - total // 2


class _Reader:
    """One .tflite file: raw flatbuffer access with every error turned into a one-line TinytrainError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TinytrainError(f"{path}: no such file") from None
        except OSError as exc:
            raise TinytrainError(f"{path}: cannot read it ({exc.strerror})") from None
        if len(data) < 16 or data[4:8] != b"TFL3":
            raise TinytrainError(
                f"{path}: not a TFLite model (no 'TFL3' flatbuffer identifier); give the .tflite file the "
                f"TFLite converter wrote"
            )
        self.data = data
        model = _mod("Model").Model.GetRootAs(data, 0)
        self.model = model
        self.sg = model.Subgraphs(0) if model.SubgraphsLength() else None
        if self.sg is None:
            raise TinytrainError(f"{path}: the model has no subgraph")
        self.codes = [
            max(int(c.DeprecatedBuiltinCode()), int(c.BuiltinCode()))
            for c in (model.OperatorCodes(i) for i in range(model.OperatorCodesLength()))
        ]
        self.num_tensors = self.sg.TensorsLength()

    def tensor(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.num_tensors:
            raise TinytrainError(f"{self.path}: tensor index {i} out of range (corrupt file?)")
        t = self.sg.Tensors(i)
        q = t.Quantization()
        scale = zero = None
        qdim = 0
        if q is not None and q.ScaleLength():
            scale = np.asarray(q.ScaleAsNumpy(), np.float32)
            zero = (
                np.asarray(q.ZeroPointAsNumpy(), np.int64) if q.ZeroPointLength() else np.zeros(1, np.int64)
            )
            qdim = int(q.QuantizedDimension())
        sig = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else None
        return {
            "index": i,
            "name": (t.Name() or b"").decode("utf-8", "replace"),
            "shape": [int(v) for v in (t.ShapeAsNumpy() if t.ShapeLength() else [])],
            "signature": None if sig is None else [int(v) for v in sig],
            "type": int(t.Type()),
            "buffer": int(t.Buffer()),
            "scale": scale,
            "zero": zero,
            "qdim": qdim,
        }

    def data_of(self, t: dict[str, Any]) -> np.ndarray | None:
        if t["buffer"] <= 0 or t["buffer"] >= self.model.BuffersLength():
            return None
        buf = self.model.Buffers(t["buffer"])
        if buf.DataLength() == 0:
            return None
        dtype = {0: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}.get(t["type"])
        if dtype is None:
            return None
        raw = np.asarray(buf.DataAsNumpy(), np.uint8).tobytes()
        arr = np.frombuffer(raw, dtype)
        n = int(np.prod(t["shape"])) if t["shape"] else 1
        if arr.size != n:
            raise TinytrainError(
                f"{self.path}: tensor {t['name']!r} holds {arr.size} values for shape {t['shape']} "
                "(corrupt file?)"
            )
        return arr.reshape(t["shape"]) if t["shape"] else arr

    def ops(self) -> list[tuple[int, str, list[int], list[int], Any]]:
        out = []
        for i in range(self.sg.OperatorsLength()):
            o = self.sg.Operators(i)
            idx = int(o.OpcodeIndex())
            if not 0 <= idx < len(self.codes):
                raise TinytrainError(
                    f"{self.path}: op #{i} has opcode index {idx} out of range (corrupt file?)"
                )
            ins = [int(v) for v in o.InputsAsNumpy()] if o.InputsLength() else []
            outs = [int(v) for v in o.OutputsAsNumpy()] if o.OutputsLength() else []
            out.append((i, _opname(self.codes[idx]), ins, outs, o))
        return out


def _options(op: Any, cls: str) -> Any:
    table = op.BuiltinOptions()
    if table is None:
        return None
    obj = getattr(_mod(cls), cls)()
    obj.Init(table.Bytes, table.Pos)
    return obj


def _short(name: str) -> str:
    """The Keras layer name inside a converter tensor name ('model/conv1d_2/Relu;...' -> 'conv1d_2')."""
    first = name.split(";")[0]
    parts = [p for p in first.split("/") if p]
    cand = parts[1] if len(parts) >= 3 else parts[-1] if parts else ""
    cand = re.sub(r"[^A-Za-z0-9_.\-]", "_", cand)
    return cand


_WEIGHTED = re.compile(r"^(conv|depthwise|separable|dense|fc|linear|pointwise|classifier|logits)", re.I)


def _weighted_layer(names: str) -> str:
    """The first path segment naming a conv / dense layer in ';'-joined converter tensor names."""
    for part in names.split(";"):
        for seg in [q for q in part.split("/") if q][1:-1] or [q for q in part.split("/") if q][:1]:
            if _WEIGHTED.match(seg):
                return re.sub(r"[^A-Za-z0-9_.\-]", "_", seg)
    return ""


class _Importer:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.r = _Reader(path)
            self.raw_ops = self.r.ops()
            sg = self.r.sg
            self.inputs = [int(v) for v in sg.InputsAsNumpy()] if sg.InputsLength() else []
            self.outputs = [int(v) for v in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
        except TinytrainError:
            raise
        except Exception as exc:  # noqa: BLE001  (a corrupt flatbuffer fails in many ways)
            raise TinytrainError(
                f"{path}: corrupt or truncated .tflite file ({type(exc).__name__}); re-export it"
            ) from None
        self.tensors: dict[str, Tensor] = {}
        self.ir_name: dict[int, str] = {}  # tflite tensor index -> IR tensor name
        self.ops: list[Op] = []
        self.dropped: list[str] = []
        self.folded: list[str] = []
        self.source_ops: Counter[str] = Counter()
        self.layer_names: set[str] = set()

    # errors ---------------------------------------------------------------------------------------
    def fail(self, i: int, opname: str, ins: list[int], outs: list[int], what: str) -> TinytrainError:
        names = ", ".join(repr(self.r.tensor(t)["name"]) for t in [*ins, *outs] if t >= 0)
        return TinytrainError(f"{self.path}: op #{i} {opname} (tensors {names}): {what}")

    # tensors --------------------------------------------------------------------------------------
    def ir_shape(self, t: dict[str, Any], where: str) -> tuple[int, int, int]:
        s = t["shape"]
        sig = t["signature"]
        if sig is not None and any(v < 0 for v in sig[1:]):
            raise TinytrainError(
                f"{self.path}: {where}: tensor {t['name']!r} has a dynamic shape {sig}; "
                f"re-convert with a fixed input shape (e.g. tf.keras.Input(shape=..., batch_size=1))"
            )
        if not s or s[0] != 1 or len(s) > 4 or len(s) < 2:
            raise TinytrainError(
                f"{self.path}: {where}: tensor {t['name']!r} has shape {s}; supported: [1, H, W, C], "
                f"[1, W, C] or [1, K] (batch 1)"
            )
        check_dims(s, f"{self.path}: {where}: tensor {t['name']!r}")
        if len(s) == 4:
            return (s[3], s[1], s[2])
        if len(s) == 3:
            return (s[2], 1, s[1])
        return (s[1], 1, 1)

    def check_act(self, t: dict[str, Any], where: str) -> None:
        if t["type"] == 9 and t["scale"] is not None:
            if t["scale"].size != 1:
                raise TinytrainError(
                    f"{self.path}: {where}: activation {t['name']!r} is quantized per channel; "
                    f"TFLite int8 activations are per tensor"
                )
            zero = t.get("zero")
            check_quant(
                float(t["scale"][0]),
                int(zero.reshape(-1)[0]) if zero is not None and zero.size else 0,
                f"{self.path}: {where}: activation {t['name']!r}",
            )
            return
        ty = _TYPE_NAMES.get(t["type"], str(t["type"]))
        if t["type"] == 7:
            raise TinytrainError(
                f"{self.path}: {where}: activation {t['name']!r} is int16 (16x8 quantization); tinytrain "
                f"trains int8 activations: {RECONVERT} "
                f"(not the EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16 ops set)"
            )
        if t["type"] in (0, 1, 10):
            raise TinytrainError(
                f"{self.path}: {where}: tensor {t['name']!r} is {ty}: this is a float model; {RECONVERT}"
            )
        raise TinytrainError(f"{self.path}: {where}: tensor {t['name']!r} is {ty}, expected quantized int8")

    def define(self, idx: int, name: str, where: str) -> str:
        t = self.r.tensor(idx)
        self.check_act(t, where)
        shape = self.ir_shape(t, where)
        self.tensors[name] = Tensor(name, shape, float(t["scale"][0]), int(t["zero"][0]))
        self.ir_name[idx] = name
        return name

    def act(self, idx: int, where: str) -> str:
        if idx not in self.ir_name:
            t = self.r.tensor(idx)
            if self.r.data_of(t) is not None:
                raise TinytrainError(
                    f"{self.path}: {where}: input {t['name']!r} is a constant; tinytrain supports constant "
                    f"operands only as weights, biases, paddings and axes"
                )
            raise TinytrainError(f"{self.path}: {where}: tensor {t['name']!r} is read before it is produced")
        return self.ir_name[idx]

    def layer(self, idx: int, kind: str, weight: int | None = None) -> str:
        base = ""
        if weight is not None:  # the Keras layer owning the weights (outputs are named by activations)
            names = f"{self.r.tensor(idx)['name']};{self.r.tensor(weight)['name']}"
            base = _weighted_layer(names)
        base = base or _short(self.r.tensor(idx)["name"]) or kind
        name, n = base, 1
        while name in self.layer_names or name in ("input", "loss"):
            n += 1
            name = f"{base}_{n}"
        self.layer_names.add(name)
        return name

    def const(self, idx: int, where: str, what: str) -> tuple[dict[str, Any], np.ndarray]:
        t = self.r.tensor(idx)
        d = self.r.data_of(t)
        if d is None:
            raise TinytrainError(f"{self.path}: {where}: {what} {t['name']!r} is not a constant tensor")
        return t, d

    # the walk -------------------------------------------------------------------------------------
    def run(self) -> Graph:
        r = self.r
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            names = [r.tensor(i)["name"] for i in self.inputs]
            onames = [r.tensor(i)["name"] for i in self.outputs]
            raise TinytrainError(
                f"{self.path}: the model has {len(self.inputs)} inputs {names} and {len(self.outputs)} "
                f"outputs {onames}; tinytrain imports a classifier with one input and one output: "
                f"convert a model with a single input and a single output"
            )
        in_t = r.tensor(self.inputs[0])
        out_idx = self.outputs[0]
        ops = list(self.raw_ops)
        # the input: int8, or float followed by QUANTIZE (dropped)
        start = 0
        self.in_source = in_t
        if in_t["type"] in (0, 1) and ops and ops[0][1] == "QUANTIZE" and ops[0][2] == [self.inputs[0]]:
            i, name, ins, outs, _ = ops[0]
            self.define(outs[0], "input", f"op #{i} {name}")
            self.dropped.append(
                f"QUANTIZE op #{i} of the float input {in_t['name']!r} (infer takes int8 input)"
            )
            start = 1
        else:
            self.define(self.inputs[0], "input", "the model input")
        self.ir_shape(in_t, "the model input")
        # trailing DEQUANTIZE / SOFTMAX: dropped
        end = len(ops)
        while end > start:
            i, name, ins, outs, _ = ops[end - 1]
            if outs != [out_idx] or not ins:
                break
            if name == "DEQUANTIZE":
                self.dropped.append(f"DEQUANTIZE op #{i} of the output (outputs are the int8 logits)")
            elif name == "SOFTMAX":
                self.dropped.append(
                    f"SOFTMAX op #{i} at the end (training applies its own softmax cross-entropy to the "
                    f"logits; the predicted class is unchanged)"
                )
            else:
                break
            out_idx = ins[0]
            end -= 1
        for i, name, ins, outs, op in ops[start:end]:
            self.source_ops[name] += 1
            if self._shape_computation(i, name, outs):
                continue
            handler = getattr(self, f"_op_{name.lower()}", None)
            if handler is None:
                raise self.fail(
                    i,
                    name,
                    ins,
                    outs,
                    f"op {name} is not supported (supported: {', '.join(SUPPORTED_OPS)}); "
                    f"replace it in the model before converting",
                )
            if len(outs) != 1:
                raise self.fail(i, name, ins, outs, f"{len(outs)} outputs, expected one")
            try:
                handler(i, name, ins, outs[0], op)
            except TinytrainError:
                raise
            except Exception as exc:  # noqa: BLE001  (malformed options or constants)
                raise self.fail(
                    i, name, ins, outs, f"malformed op ({type(exc).__name__}: {exc}); re-export the model"
                ) from None
        if out_idx not in self.ir_name:
            raise TinytrainError(f"{self.path}: the output {r.tensor(out_idx)['name']!r} is never produced")
        out_name = self.ir_name[out_idx]
        if out_name == "input":
            raise TinytrainError(f"{self.path}: the model has no operation between its input and output")
        self._rename_output(out_name)
        meta = self._meta(in_t)
        g = Graph(self.path.stem, self.tensors, self.ops, "input", "logits", meta)
        g.validate()
        return g

    _SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION", "GATHER", "SLICE")

    def _shape_computation(self, i: int, name: str, outs: list[int]) -> bool:
        """An int32 op that only computes the target shape of a RESHAPE (Keras' Flatten with a dynamic batch:
        SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE): skipped, the RESHAPE's static output shape is used."""
        if name not in self._SHAPE_OPS or not outs or any(self.r.tensor(t)["type"] != 2 for t in outs):
            return False
        for t in outs:
            for _, cname, cins, _, _ in self.raw_ops:
                if t in cins and not (cname in self._SHAPE_OPS or (cname == "RESHAPE" and cins[1:2] == [t])):
                    return False
        self.folded.append(f"{name} op #{i} (computes a RESHAPE target shape; the static shape is used)")
        return True

    def _rename_output(self, out_name: str) -> None:
        t = self.tensors.pop(out_name)
        self.tensors["logits"] = Tensor("logits", t.shape, t.scale, t.zero)
        for op in self.ops:
            op.inputs = ["logits" if x == out_name else x for x in op.inputs]
            if op.output == out_name:
                op.output = "logits"
        for k, v in list(self.ir_name.items()):
            if v == out_name:
                self.ir_name[k] = "logits"

    def _meta(self, in_t: dict[str, Any]) -> dict[str, Any]:
        shape = in_t["shape"]
        layout = {4: "NHWC", 3: "NWC", 2: "NC"}.get(len(shape), "?")
        x = self.tensors["input"]
        return {
            "format": FORMAT,
            "source": str(self.path.name),
            "numerics": "tflm",
            "source_layout": layout,
            "source_input_shape": shape,
            "source_input_type": _TYPE_NAMES.get(in_t["type"], str(in_t["type"])),
            "input_quantization": {"scale": x.scale, "zero": x.zero},
            "source_ops": dict(sorted(self.source_ops.items())),
            "dropped": list(self.dropped),
            "folded": list(self.folded),
        }

    # ops ------------------------------------------------------------------------------------------
    def _act_range(self, i: int, name: str, ins: list[int], out: int, code: int) -> tuple[str, int, int]:
        act = _ACT.get(int(code), str(code))
        t = self.tensors[self.ir_name[out]]
        try:
            lo, hi = tflm.activation_range(act, t.scale, t.zero)
        except ValueError:
            raise self.fail(
                i,
                name,
                ins,
                [out],
                f"fused activation {act} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1); "
                f"use one of these or a separate supported op",
            ) from None
        return act, lo, hi

    def _conv_common(self, i: int, name: str, ins: list[int], out: int, depthwise: bool, opts: Any) -> None:
        where = f"op #{i} {name}"
        x = self.act(ins[0], where)
        xt = self.tensors[x]
        wt, w = self.const(ins[1], where, "weight")
        if wt["type"] != 9 or wt["scale"] is None:
            if wt["type"] in (0, 1):
                raise self.fail(i, name, ins, [out], f"float weights: this is a float model; {RECONVERT}")
            raise self.fail(i, name, ins, [out], f"weights are {_TYPE_NAMES.get(wt['type'])}, expected int8")
        if np.any(wt["zero"] != 0):
            raise self.fail(i, name, ins, [out], "weights are not symmetric (zero point != 0); " + RECONVERT)
        if opts is None:
            raise self.fail(i, name, ins, [out], "options missing (corrupt file?)")
        if opts.DilationHFactor() != 1 or opts.DilationWFactor() != 1:
            raise self.fail(
                i,
                name,
                ins,
                [out],
                f"dilation {opts.DilationHFactor()}x{opts.DilationWFactor()} is not supported; "
                f"use dilation 1 (a larger kernel or stride instead)",
            )
        c, h, wd = xt.shape
        if depthwise:
            _, kh, kw, co = w.shape
            if co % c:
                raise self.fail(i, name, ins, [out], f"{co} output channels for {c} input channels")
            w_oihw = np.ascontiguousarray(w[0].transpose(2, 0, 1)[:, None])  # [C * m, 1, kh, kw]
        else:
            co, kh, kw, ci = w.shape
            if ci != c:
                raise self.fail(i, name, ins, [out], f"weights expect {ci} input channels, input has {c}")
            w_oihw = np.ascontiguousarray(w.transpose(0, 3, 1, 2))
        pad = _PADDING.get(int(opts.Padding()), "?")
        sh, sw = int(opts.StrideH()), int(opts.StrideW())
        self._check_window(i, name, ins, out, kh, kw, sh, sw, pad)
        ho, pt, pb = tflite_padding(h, kh, sh, pad)
        wo, pl, pr = tflite_padding(wd, kw, sw, pad)
        self._finish_conv(
            i, name, ins, out, x, w_oihw, co, depthwise, (kh, kw, sh, sw, pt, pb, pl, pr), (ho, wo), wt, opts
        )

    def _check_window(
        self, i: int, name: str, ins: list[int], out: int, kh: int, kw: int, sh: int, sw: int, pad: str
    ) -> None:
        """A kernel / filter and strides of at least 1 and a known padding: else one line (corrupt file)."""
        if min(kh, kw, sh, sw) < 1 or pad not in ("SAME", "VALID"):
            raise self.fail(
                i, name, ins, [out], f"kernel {kh}x{kw}, strides {sh}x{sw}, padding {pad}: kernel and "
                "strides must be at least 1, padding SAME or VALID (corrupt file?)",
            )  # fmt: skip

    def _finish_conv(
        self,
        i: int,
        name: str,
        ins: list[int],
        out: int,
        x: str,
        w_oihw: np.ndarray,
        co: int,
        depthwise: bool,
        geom: tuple[int, ...],
        out_hw: tuple[int, int],
        wt: dict[str, Any],
        opts: Any,
    ) -> None:
        where = f"op #{i} {name}"
        xt = self.tensors[x]
        layer = self.layer(out, "conv", ins[1])
        y = self.define(out, f"{layer}.out", where)
        yt = self.tensors[y]
        if yt.shape != (co, *out_hw):
            raise self.fail(
                i, name, ins, [out], f"output shape {yt.shape} (C, H, W) but the op gives {(co, *out_hw)}"
            )
        scales = wt["scale"].astype(np.float32)
        if scales.size == 1:
            scales = np.full(co, scales[0], np.float32)
        if scales.size != co:
            raise self.fail(i, name, ins, [out], f"{scales.size} weight scales for {co} output channels")
        if len(ins) > 2 and ins[2] >= 0:
            bt, b = self.const(ins[2], where, "bias")
            if bt["type"] != 2:
                raise self.fail(i, name, ins, [out], f"bias is {_TYPE_NAMES.get(bt['type'])}, expected int32")
            bias = b.reshape(-1).astype(np.int32)
        else:
            bias = np.zeros(co, np.int32)
        act, lo, hi = self._act_range(i, name, ins, out, opts.FusedActivationFunction())
        mult, shift = tflm.conv_multipliers(xt.scale, scales, yt.scale)
        kh, kw, sh, sw, pt, pb, pl, pr = geom
        self.ops.append(
            Op(
                layer,
                "qconv",
                [x],
                y,
                {
                    "kernel_h": kh,
                    "kernel_w": kw,
                    "stride_h": sh,
                    "stride_w": sw,
                    "pad_top": pt,
                    "pad_bottom": pb,
                    "pad_left": pl,
                    "pad_right": pr,
                    "depthwise": depthwise,
                    **({"depth_multiplier": co // xt.shape[0]} if depthwise and co != xt.shape[0] else {}),
                    "x_scale": xt.scale,
                    "x_zero": xt.zero,
                    "act_min": lo,
                    "act_max": hi,
                    "activation": act,
                    "source_op": name,
                    "source_index": i,
                },
                {
                    "weight": w_oihw.astype(np.int8),
                    "bias": bias,
                    "w_scales": scales,
                    "multiplier": mult,
                    "shift": shift,
                },
            )
        )

    def _op_conv_2d(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        self._conv_common(i, name, ins, out, False, _options(op, "Conv2DOptions"))

    def _op_depthwise_conv_2d(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        opts = _options(op, "DepthwiseConv2DOptions")
        self._conv_common(i, name, ins, out, True, opts)

    def _op_fully_connected(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        where = f"op #{i} {name}"
        opts = _options(op, "FullyConnectedOptions")
        x = self.act(ins[0], where)
        c, h, wd = self.tensors[x].shape
        wt, w = self.const(ins[1], where, "weight")
        if wt["type"] != 9 or wt["scale"] is None:
            if wt["type"] in (0, 1):
                raise self.fail(i, name, ins, [out], f"float weights: this is a float model; {RECONVERT}")
            raise self.fail(i, name, ins, [out], f"weights are {_TYPE_NAMES.get(wt['type'])}, expected int8")
        if np.any(wt["zero"] != 0):
            raise self.fail(i, name, ins, [out], "weights are not symmetric (zero point != 0); " + RECONVERT)
        if opts is not None and int(opts.WeightsFormat()) != 0:
            raise self.fail(i, name, ins, [out], "shuffled weights format is not supported; use the default")
        if opts is not None and opts.KeepNumDims():
            raise self.fail(i, name, ins, [out], "keep_num_dims is not supported (a [1, K] output is)")
        k, n = w.shape
        if n != c * h * wd:
            raise self.fail(i, name, ins, [out], f"weights take {n} inputs, the input has {c * h * wd}")
        w_oihw = np.ascontiguousarray(w.reshape(k, h, wd, c).transpose(0, 3, 1, 2))

        class _FC:  # the conv view of a fully connected layer
            def FusedActivationFunction(self) -> int:  # noqa: N802
                return int(opts.FusedActivationFunction()) if opts is not None else 0

        self._finish_conv(
            i, name, ins, out, x, w_oihw, k, False, (h, wd, 1, 1, 0, 0, 0, 0), (1, 1), wt, _FC()
        )

    def _op_add(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        where = f"op #{i} {name}"
        if len(ins) != 2:
            raise self.fail(i, name, ins, [out], f"{len(ins)} inputs, expected 2")
        a, b = (self.act(t, where) for t in ins)
        ta, tb = self.tensors[a], self.tensors[b]
        if ta.shape != tb.shape:
            raise self.fail(
                i,
                name,
                ins,
                [out],
                f"broadcasting {ta.shape} + {tb.shape} is not supported; equal shapes only",
            )
        layer = self.layer(out, "add")
        y = self.define(out, f"{layer}.out", where)
        opts = _options(op, "AddOptions")
        act, lo, hi = self._act_range(i, name, ins, out, opts.FusedActivationFunction() if opts else 0)
        self.ops.append(
            Op(
                layer,
                "qadd",
                [a, b],
                y,
                {
                    **qadd_params(ta, tb, self.tensors[y]),
                    "act_min": lo,
                    "act_max": hi,
                    "activation": act,
                    "source_op": name,
                    "source_index": i,
                },
            )
        )

    def _pool(self, i: int, name: str, ins: list[int], out: int, op: Any, mode: str) -> None:
        where = f"op #{i} {name}"
        x = self.act(ins[0], where)
        xt = self.tensors[x]
        opts = _options(op, "Pool2DOptions")
        kh, kw = int(opts.FilterHeight()), int(opts.FilterWidth())
        sh, sw = int(opts.StrideH()), int(opts.StrideW())
        pad = _PADDING.get(int(opts.Padding()), "?")
        self._check_window(i, name, ins, out, kh, kw, sh, sw, pad)
        _, h, wd = xt.shape
        ho, pt, pb = tflite_padding(h, kh, sh, pad)
        wo, pl, pr = tflite_padding(wd, kw, sw, pad)
        layer = self.layer(out, mode + "pool")
        y = self.define(out, f"{layer}.out", where)
        yt = self.tensors[y]
        if yt.shape != (xt.shape[0], ho, wo):
            raise self.fail(
                i, name, ins, [out], f"output shape {yt.shape} but the op gives {(xt.shape[0], ho, wo)}"
            )
        if (yt.scale, yt.zero) != (xt.scale, xt.zero):
            raise self.fail(
                i, name, ins, [out], "input and output quantization differ (TFLite requires equal)"
            )
        act, lo, hi = self._act_range(i, name, ins, out, opts.FusedActivationFunction())
        self.ops.append(
            Op(
                layer,
                "qpool",
                [x],
                y,
                {
                    "mode": mode,
                    "kernel_h": kh,
                    "kernel_w": kw,
                    "stride_h": sh,
                    "stride_w": sw,
                    "pad_top": pt,
                    "pad_left": pl,
                    "act_min": lo,
                    "act_max": hi,
                    "activation": act,
                    "source_op": name,
                    "source_index": i,
                },
            )
        )

    def _op_max_pool_2d(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        self._pool(i, name, ins, out, op, "max")

    def _op_average_pool_2d(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        self._pool(i, name, ins, out, op, "avg")

    def _op_mean(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        where = f"op #{i} {name}"
        x = self.act(ins[0], where)
        xt = self.tensors[x]
        rank = len(self.r.tensor(ins[0])["shape"])
        _, axes = self.const(ins[1], where, "axis")
        ax = sorted({int(a) % rank for a in np.asarray(axes).reshape(-1)})
        spatial = [1, 2] if rank == 4 else [1] if rank == 3 else None
        if ax != spatial:
            raise self.fail(
                i,
                name,
                ins,
                [out],
                f"MEAN over axes {ax} of a rank-{rank} tensor; only the spatial axes "
                f"{spatial} (a global average pool) are supported",
            )
        layer = self.layer(out, "mean")
        y = self.define(out, f"{layer}.out", where)
        yt = self.tensors[y]
        if yt.shape != (xt.shape[0], 1, 1):
            raise self.fail(i, name, ins, [out], f"output shape {yt.shape}, expected {(xt.shape[0], 1, 1)}")
        m, s = tflm.quantize_multiplier(float(np.float32(xt.scale)) / float(np.float32(yt.scale)))
        self.ops.append(
            Op(
                layer,
                "qmean",
                [x],
                y,
                {
                    "x_zero": xt.zero,
                    "y_zero": yt.zero,
                    "multiplier": m,
                    "shift": s,
                    "same_quant": bool(xt.scale == yt.scale and xt.zero == yt.zero),
                    "source_op": name,
                    "source_index": i,
                },
            )
        )

    def _op_pad(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        where = f"op #{i} {name}"
        x = self.act(ins[0], where)
        xt = self.tensors[x]
        rank = len(self.r.tensor(ins[0])["shape"])
        _, p = self.const(ins[1], where, "paddings")
        p = np.asarray(p).reshape(rank, 2).astype(int)
        if p[0].any() or p[-1].any():
            raise self.fail(i, name, ins, [out], "padding the batch or channel axis is not supported")
        if rank == 4:
            pt, pb, pl, pr = int(p[1, 0]), int(p[1, 1]), int(p[2, 0]), int(p[2, 1])
        elif rank == 3:
            pt, pb, pl, pr = 0, 0, int(p[1, 0]), int(p[1, 1])
        else:
            raise self.fail(i, name, ins, [out], f"PAD of a rank-{rank} tensor is not supported")
        layer = self.layer(out, "pad")
        y = self.define(out, f"{layer}.out", where)
        yt = self.tensors[y]
        value = yt.zero
        if name == "PADV2" and len(ins) > 2:
            _, v = self.const(ins[2], where, "constant value")
            value = int(np.asarray(v).reshape(-1)[0])
        if (yt.scale, yt.zero) != (xt.scale, xt.zero):
            raise self.fail(i, name, ins, [out], "input and output quantization differ")
        c, h, wd = xt.shape
        if yt.shape != (c, h + pt + pb, wd + pl + pr):
            raise self.fail(i, name, ins, [out], f"output shape {yt.shape} does not match the paddings")
        self.ops.append(
            Op(
                layer,
                "qpad",
                [x],
                y,
                {
                    "pad_top": pt,
                    "pad_bottom": pb,
                    "pad_left": pl,
                    "pad_right": pr,
                    "value": value,
                    "source_op": name,
                    "source_index": i,
                },
            )
        )

    _op_padv2 = _op_pad

    def _op_concatenation(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        where = f"op #{i} {name}"
        xs = [self.act(t, where) for t in ins]
        opts = _options(op, "ConcatenationOptions")
        rank = len(self.r.tensor(out)["shape"])
        axis = int(opts.Axis()) % rank if opts is not None else rank - 1
        if opts is not None and int(opts.FusedActivationFunction()) != 0:
            raise self.fail(i, name, ins, [out], "a fused activation on CONCATENATION is not supported")
        ir_axis = {4: {3: 0, 1: 1, 2: 2}, 3: {2: 0, 1: 2}, 2: {1: 0}}.get(rank, {}).get(axis)
        if ir_axis is None:
            raise self.fail(
                i, name, ins, [out], f"concatenation along axis {axis} (the batch) is not supported"
            )
        layer = self.layer(out, "concat")
        y = self.define(out, f"{layer}.out", where)
        yt = self.tensors[y]
        for t in xs:
            if (self.tensors[t].scale, self.tensors[t].zero) != (yt.scale, yt.zero):
                raise self.fail(
                    i,
                    name,
                    ins,
                    [out],
                    f"input {t!r} is quantized differently from the output; "
                    "TFLite Micro concatenates int8 tensors of equal scale and zero point only",
                )
        self.ops.append(Op(layer, "qconcat", xs, y, {"axis": ir_axis, "source_op": name, "source_index": i}))

    def _op_logistic(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        from tinytrain.ops import logistic

        where = f"op #{i} {name}"
        x = self.act(ins[0], where)
        xt = self.tensors[x]
        layer = self.layer(out, "logistic")
        y = self.define(out, f"{layer}.out", where)
        if self.tensors[y].zero != -128:
            raise self.fail(i, name, ins, [out], "output zero point must be -128 (TFLite's int8 LOGISTIC)")
        self.ops.append(
            Op(
                layer,
                "qlogistic",
                [x],
                y,
                {"x_zero": xt.zero, **logistic.params(xt.scale), "source_op": name, "source_index": i},
            )
        )

    def _op_mul(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        where = f"op #{i} {name}"
        if len(ins) != 2:
            raise self.fail(i, name, ins, [out], f"{len(ins)} inputs, expected 2")
        a, b = (self.act(t, where) for t in ins)
        ta, tb = self.tensors[a], self.tensors[b]
        if ta.shape != tb.shape and tb.shape == (ta.shape[0], 1, 1):
            pass
        elif ta.shape != tb.shape and ta.shape == (tb.shape[0], 1, 1):
            a, b, ta, tb = b, a, tb, ta  # the broadcast operand second
        elif ta.shape != tb.shape:
            raise self.fail(i, name, ins, [out], f"broadcasting {ta.shape} * {tb.shape} is not supported")
        layer = self.layer(out, "mul")
        y = self.define(out, f"{layer}.out", where)
        ty = self.tensors[y]
        opts = _options(op, "MulOptions")
        act, lo, hi = self._act_range(i, name, ins, out, opts.FusedActivationFunction() if opts else 0)
        m, s = tflm.quantize_multiplier(
            float(np.float32(ta.scale)) * float(np.float32(tb.scale)) / float(np.float32(ty.scale))
        )
        self.ops.append(
            Op(
                layer,
                "qmul",
                [a, b],
                y,
                {
                    "a_zero": ta.zero,
                    "b_zero": tb.zero,
                    "y_zero": ty.zero,
                    "mult": m,
                    "shift": s,
                    "act_min": lo,
                    "act_max": hi,
                    "activation": act,
                    "source_op": name,
                    "source_index": i,
                },
            )
        )

    def _op_hard_swish(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        from tinytrain.ops import hardswish

        where = f"op #{i} {name}"
        x = self.act(ins[0], where)
        xt = self.tensors[x]
        layer = self.layer(out, "hard_swish")
        y = self.define(out, f"{layer}.out", where)
        p = hardswish.params(xt.scale, self.tensors[y].scale)
        if p["out_exp"] > 0:
            raise self.fail(
                i, name, ins, [out], "output scale below input scale / 128 (TFLite requires larger)"
            )
        self.ops.append(
            Op(
                layer,
                "qhardswish",
                [x],
                y,
                {
                    "x_zero": xt.zero,
                    "y_zero": self.tensors[y].zero,
                    "x_scale": xt.scale,
                    **p,
                    "source_op": name,
                    "source_index": i,
                },
            )
        )

    def _fold(self, i: int, name: str, ins: list[int], out: int, op: Any) -> None:
        where = f"op #{i} {name}"
        x = self.act(ins[0], where)
        xt = self.tensors[x]
        t = self.r.tensor(out)
        self.check_act(t, where)
        shape = self.ir_shape(t, where)
        if float(t["scale"][0]) != xt.scale or int(t["zero"][0]) != xt.zero:
            raise self.fail(i, name, ins, [out], "input and output quantization differ")
        if int(np.prod(shape)) != int(np.prod(xt.shape)):
            raise self.fail(i, name, ins, [out], f"{xt.shape} -> {shape} changes the number of elements")
        consumers = [o for o in self.raw_ops if out in o[2]]
        fc_only = consumers and all(o[1] == "FULLY_CONNECTED" and o[2][0] == out for o in consumers)
        if shape != xt.shape and not fc_only and out not in self.outputs:
            raise self.fail(
                i,
                name,
                ins,
                [out],
                f"reshaping {xt.shape} to {shape} (C, H, W) for a "
                f"{', '.join(o[1] for o in consumers) or 'later op'} is not supported (only before "
                "FULLY_CONNECTED, or layout-preserving EXPAND_DIMS/SQUEEZE around a Conv1D)",
            )
        self.ir_name[out] = x
        self.folded.append(f"{name} op #{i} {self.r.tensor(ins[0])['shape']} -> {t['shape']}")

    _op_reshape = _fold
    _op_squeeze = _fold
    _op_expand_dims = _fold


def qadd_params(ta: Tensor, tb: Tensor, ty: Tensor) -> dict[str, int]:
    """TFLite Micro's int8 ADD parameters (add.cc CalculateOpData): left shift 20, the inputs scaled to
    twice the larger input scale, the output multiplier."""
    left = 20
    twice = 2.0 * float(max(np.float32(ta.scale), np.float32(tb.scale)))
    m1, s1 = tflm.quantize_multiplier(float(np.float32(ta.scale)) / twice)
    m2, s2 = tflm.quantize_multiplier(float(np.float32(tb.scale)) / twice)
    mo, so = tflm.quantize_multiplier(twice / ((1 << left) * float(np.float32(ty.scale))))
    return {
        "a_zero": ta.zero,
        "b_zero": tb.zero,
        "y_zero": ty.zero,
        "left_shift": left,
        "a_mult": m1,
        "a_shift": s1,
        "b_mult": m2,
        "b_shift": s2,
        "y_mult": mo,
        "y_shift": so,
    }


def import_tflite(path: str | Path) -> Graph:
    """Parse a full-integer int8 .tflite file into a tinytrain IR graph (numerics "tflm")."""
    p = Path(path)
    try:
        import tflite  # noqa: F401  (the flatbuffer schema's readers)
    except ImportError:
        raise TinytrainError(
            f"{p}: reading .tflite files needs the `tflite` package: pip install tflite "
            "(or tinytrain[import])"
        ) from None
    imp = _Importer(p)
    try:
        return imp.run()
    except TinytrainError:
        raise
    except Exception as exc:  # noqa: BLE001  (a corrupt flatbuffer fails in many ways)
        raise TinytrainError(
            f"{p}: corrupt or truncated .tflite file ({type(exc).__name__}: {exc}); re-export it"
        ) from None
