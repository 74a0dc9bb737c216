"""`.onnx` (int8, as onnxruntime's `quantize_static` writes it) -> tinytrain IR, numerics "ort".

Both forms: QOperator (`QLinearConv`, `com.microsoft.QGemm`, `QLinearAdd`, `QLinearGlobalAveragePool`, int8
`MaxPool`) and QDQ (`DequantizeLinear` -> float `Conv` / `Gemm` / `Add` / `MaxPool` / `GlobalAveragePool` ->
`QuantizeLinear`, which onnxruntime fuses into the same integer kernels). The ops map to the op kinds of
tinytrain/ops with onnxruntime's CPU numerics (docs/numerics.md, "onnxruntime numerics"): `qconv` with a
float32 scale per output channel, `qadd` in MLAS's fixed point, `qmean` (float scale), `qpool` max.
Layout: NCHW `[1, C, H, W]` -> (C, H, W); NCW `[1, C, W]` (Conv1d) -> (C, 1, W); `[1, N]` -> (N, 1, 1).
The QuantizeLinear of the float input and the DequantizeLinear of the output are dropped (said so); a Flatten
is folded into the Gemm that reads it (its weight columns are in C, H, W order, the IR's OIHW).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op, Tensor
from tinytrain.models.importer import check_dims, check_quant
from tinytrain.ops.add import ort_params
from tinytrain.ops.conv import ort_scales

FORMAT = "onnx"
REQUANTIZE = (
    "quantize it with onnxruntime.quantization.quantize_static(..., weight_type=QuantType.QInt8, "
    "activation_type=QuantType.QInt8, per_channel=True)"
)
FLOAT_OPS = ("Conv", "Gemm", "Add", "MaxPool", "GlobalAveragePool", "Flatten", "Reshape")
SUPPORTED = (
    "QLinearConv / Conv (QDQ)",
    "QGemm / Gemm (QDQ)",
    "QLinearAdd / Add (QDQ)",
    "MaxPool",
    "QLinearAveragePool / AveragePool (QDQ)",
    "QLinearConcat / Concat (QDQ)",
    "Pad (constant)",
    "QLinearGlobalAveragePool / GlobalAveragePool (QDQ)",
    "Flatten",
    "HardSwish (HardSigmoid + Mul / QLinearMul)",
    "QuantizeLinear (input)",
    "DequantizeLinear (output)",
)


class _Onnx:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError:
            raise TinytrainError(
                f"{path}: reading .onnx files needs the `onnx` package: pip install onnx "
                "(or tinytrain[import])"
            ) from None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TinytrainError(f"{path}: no such file") from None
        except OSError as exc:
            raise TinytrainError(f"{path}: cannot read it ({exc.strerror})") from None
        try:
            model = onnx.load_model_from_string(data)
        except Exception as exc:  # noqa: BLE001  (protobuf raises many kinds)
            raise TinytrainError(
                f"{path}: not an ONNX model, or a corrupt or truncated one ({type(exc).__name__}); "
                "re-export it"
            ) from None
        g = model.graph
        if not g.node:
            raise TinytrainError(
                f"{path}: not an ONNX model, or a corrupt or truncated one (no graph); re-export it"
            )
        self.graph = g
        self.init: dict[str, np.ndarray] = {}
        for init in g.initializer:
            try:
                self.init[init.name] = numpy_helper.to_array(init)
            except Exception as exc:  # noqa: BLE001  (onnx raises ValueError, TypeError, KeyError, ...)
                raise TinytrainError(
                    f"{path}: initializer {init.name!r} is corrupt (dims {list(init.dims)}, type "
                    f"{init.data_type}: {type(exc).__name__}); re-export the model"
                ) from None
        self.onnx = onnx
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = {}
        for n in g.node:
            for t in n.output:
                self.producer[t] = n
            for t in n.input:
                self.consumers.setdefault(t, []).append(n)
        self.tensors: dict[str, Tensor] = {}
        self.ir: dict[str, str] = {}  # onnx int8 tensor (or DQ float alias) -> IR tensor
        self.flat: dict[str, str] = {}  # onnx flattened tensor -> the IR tensor it flattens
        self.ops: list[Op] = []
        self.dropped: list[str] = []
        self.folded: list[str] = []
        self.names: set[str] = set()
        self.source_ops: Counter[str] = Counter()
        self.done: set[int] = set()

    # helpers ------------------------------------------------------------------------------------------
    def attrs(self, node: Any) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def fail(self, i: int, node: Any, what: str) -> TinytrainError:
        tensors = ", ".join(repr(t) for t in [*node.input, *node.output] if t)
        op = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
        return TinytrainError(f"{self.path}: node #{i} {op} {node.name!r} (tensors {tensors}): {what}")

    def const(self, name: str, i: int, node: Any, what: str) -> np.ndarray:
        if name not in self.init:
            raise self.fail(i, node, f"{what} {name!r} is not a constant initializer")
        return self.init[name]

    def scalar_q(self, s_name: str, z_name: str, i: int, node: Any) -> tuple[float, int]:
        s = self.const(s_name, i, node, "scale").reshape(-1)
        z = self.const(z_name, i, node, "zero point") if z_name else np.zeros(1, np.int8)
        if s.size != 1 or z.size != 1:
            raise self.fail(i, node, "per-channel activation quantization is not supported (per tensor only)")
        if z.dtype != np.int8:
            raise self.fail(i, node, f"activations are {z.dtype}, expected int8; {REQUANTIZE}")
        if not np.issubdtype(s.dtype, np.floating):
            raise self.fail(i, node, f"scale {s_name!r} is {s.dtype}, expected float32")
        scale, zero = float(np.float32(s[0])), int(z.reshape(-1)[0])
        try:
            check_quant(scale, zero, f"scale {s_name!r}")
        except TinytrainError as exc:
            raise self.fail(i, node, str(exc)) from None
        return scale, zero

    def layer(self, node: Any, kind: str) -> str:
        """The PyTorch module path in torch.onnx's node name ('/3/body/body.0/Conv' -> '3.body.0')."""
        parts: list[str] = []
        for comp in [p for p in (node.name or "").split("/") if p][:-1]:
            if parts and comp.startswith(parts[-1] + "."):
                parts[-1] = comp  # a child scope repeats its parent's name: body -> body.0
            else:
                parts.append(comp)
        base = ".".join(parts)
        base = "".join(c if c.isalnum() or c in "_.-" else "_" for c in base) or kind
        name, n = base, 1
        while name in self.names or name in ("input", "logits", "loss"):
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def src(self, name: str, i: int, node: Any) -> str:
        if name in self.ir:
            return self.ir[name]
        raise self.fail(
            i, node, f"input {name!r} is not an int8 tensor produced earlier (float path?); {REQUANTIZE}"
        )

    def define(
        self, onnx_name: str, ir_name: str, shape: tuple[int, int, int], scale: float, zero: int
    ) -> str:
        check_dims(shape, f"{self.path}: tensor {onnx_name!r} (C, H, W)")
        self.tensors[ir_name] = Tensor(ir_name, shape, scale, zero)
        self.ir[onnx_name] = ir_name
        return ir_name

    def out_q(self, node: Any, i: int) -> tuple[str, float, int]:
        """QDQ: the QuantizeLinear that reads a float op's output: (its int8 output, scale, zero)."""
        cons = self.consumers.get(node.output[0], [])
        if len(cons) != 1 or cons[0].op_type != "QuantizeLinear":
            raise self.fail(
                i, node, f"the float output is not re-quantized by one QuantizeLinear; {REQUANTIZE}"
            )
        q = cons[0]
        s, z = self.scalar_q(q.input[1], q.input[2] if len(q.input) > 2 else "", i, q)
        self.done.add(id(q))
        return q.output[0], s, z

    def weight_of(self, name: str, i: int, node: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(int8 weight, per-channel scales, zero points) of a QDQ weight's DequantizeLinear."""
        p = self.producer.get(name)
        if p is not None and p.op_type == "DequantizeLinear":
            w = self.const(p.input[0], i, node, "weight")
            s = self.const(p.input[1], i, node, "weight scale")
            z = self.init.get(p.input[2]) if len(p.input) > 2 else None
            return w, s, z
        raise self.fail(i, node, f"weight {name!r} is not a DequantizeLinear of a constant; {REQUANTIZE}")

    # the walk -----------------------------------------------------------------------------------------
    def run(self) -> Graph:
        g = self.graph
        inputs = [v for v in g.input if v.name not in self.init]
        if len(inputs) != 1 or len(g.output) != 1:
            raise TinytrainError(
                f"{self.path}: the model has {len(inputs)} inputs {[v.name for v in inputs]} and "
                f"{len(g.output)} outputs {[v.name for v in g.output]}; tinytrain imports a classifier "
                "with one input and one output"
            )
        inp = inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim]
        if any(d < 0 for d in dims[1:]) or not 2 <= len(dims) <= 4:
            raise TinytrainError(
                f"{self.path}: input {inp.name!r} has shape {dims}; supported: a fixed [1, C, H, W], "
                f"[1, C, W] or [1, N] (export with fixed dimensions)"
            )
        check_dims(dims[1:], f"{self.path}: input {inp.name!r} {dims}")
        shape = (
            (dims[1], dims[2], dims[3])
            if len(dims) == 4
            else (dims[1], 1, dims[2])
            if len(dims) == 3
            else (dims[1], 1, 1)
        )
        self.in_dims = [1, *dims[1:]]
        self.shape_of: dict[str, tuple[int, int, int]] = {inp.name: shape}
        if not any(n.op_type in ("QuantizeLinear", "QLinearConv", "DequantizeLinear") for n in g.node):
            raise TinytrainError(
                f"{self.path}: a float model (no QuantizeLinear / QLinear* node); {REQUANTIZE}"
            )
        for i, node in enumerate(g.node):
            if id(node) in self.done:
                continue
            self.source_ops[node.op_type] += 1
            try:
                self.visit(i, node, inp.name)
            except TinytrainError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self.fail(i, node, f"malformed node ({type(exc).__name__}: {exc})") from None
        out = g.output[0].name
        p = self.producer.get(out)
        if p is not None and p.op_type == "DequantizeLinear" and p.input[0] in self.ir:
            out = p.input[0]
        if out not in self.ir or self.ir[out] == "input":
            raise TinytrainError(
                f"{self.path}: the output {g.output[0].name!r} is not an int8 tensor tinytrain produced"
            )
        last = self.ir[out]
        t = self.tensors.pop(last)
        self.tensors["logits"] = Tensor("logits", t.shape, t.scale, t.zero)
        for op in self.ops:
            op.inputs = ["logits" if x == last else x for x in op.inputs]
            if op.output == last:
                op.output = "logits"
        x = self.tensors["input"]
        layout = {4: "NCHW", 3: "NCW", 2: "NC"}[len(self.in_dims)]
        meta = {
            "format": FORMAT,
            "source": self.path.name,
            "numerics": "ort",
            "source_layout": layout,
            "source_input_shape": self.in_dims,
            "source_input_type": "float32",
            "input_quantization": {"scale": x.scale, "zero": x.zero},
            "source_ops": dict(sorted(self.source_ops.items())),
            "dropped": self.dropped,
            "folded": self.folded,
        }
        graph = Graph(self.path.stem, self.tensors, self.ops, "input", "logits", meta)
        graph.validate()
        return graph

    def visit(self, i: int, node: Any, graph_input: str) -> None:
        op = node.op_type
        ins = list(node.input)
        if op == "QuantizeLinear":
            src = ins[0]
            if src in self.shape_of and "input" not in self.tensors:
                s, z = self.scalar_q(ins[1], ins[2] if len(ins) > 2 else "", i, node)
                self.define(node.output[0], "input", self.shape_of[src], s, z)
                if src in self.flat:
                    self.flat[node.output[0]] = "input"
                self.dropped.append(f"QuantizeLinear node #{i} of the float input (infer takes int8 input)")
                return
            raise self.fail(
                i, node, f"a QuantizeLinear that is not re-quantizing a supported op; {REQUANTIZE}"
            )
        if op == "DequantizeLinear":
            if ins[0] in self.init:
                return  # a weight or bias: read by the op that uses it
            if ins[0] in self.ir:
                self.ir[node.output[0]] = self.ir[ins[0]]  # QDQ: the float alias of an int8 tensor
                if ins[0] in self.flat:
                    self.flat[node.output[0]] = self.flat[ins[0]]
                if node.output[0] == self.graph.output[0].name:
                    self.dropped.append(
                        f"DequantizeLinear node #{i} of the output (outputs are the int8 logits)"
                    )
                return
            raise self.fail(i, node, "dequantizes a tensor tinytrain did not produce")
        if op == "Flatten" or op == "Reshape":
            src = ins[0]
            if src == graph_input:  # a float Flatten of the input before its QuantizeLinear
                self.shape_of[node.output[0]] = self.shape_of[src]
                self.flat[node.output[0]] = "input"
                self.folded.append(f"{op} node #{i} of the input (folded into the Gemm that reads it)")
                return
            x = self.src(src, i, node)
            outs = [node.output[0]]
            if node.domain == "" and node.output[0] in self.consumers and self._is_qdq_float(node):
                q, _, _ = self.out_q(node, i)
                outs.append(q)
            for o in outs:
                self.ir[o] = x
                self.flat[o] = x
            self.folded.append(f"{op} node #{i} (folded into the Gemm that reads it)")
            return
        if op in ("QLinearConv", "Conv"):
            return self.conv(i, node)
        if op in ("QGemm", "Gemm"):
            return self.gemm(i, node)
        if op in ("QLinearAdd", "Add"):
            return self.add(i, node)
        if op == "MaxPool":
            return self.maxpool(i, node)
        if op in ("QLinearGlobalAveragePool", "GlobalAveragePool"):
            return self.gap(i, node)
        if op in ("QLinearAveragePool", "AveragePool"):
            return self.avgpool(i, node)
        if op in ("QLinearConcat", "Concat"):
            return self.concat(i, node)
        if op == "Pad":
            return self.pad(i, node)
        if op == "HardSigmoid":
            return self.hardswish(i, node)
        raise self.fail(
            i,
            node,
            f"op {op} is not supported (supported: {', '.join(SUPPORTED)}); replace it before exporting",
        )

    def _is_qdq_float(self, node: Any) -> bool:
        cons = self.consumers.get(node.output[0], [])
        return len(cons) == 1 and cons[0].op_type == "QuantizeLinear"

    # ops ------------------------------------------------------------------------------------------------
    def conv(self, i: int, node: Any) -> None:
        a = self.attrs(node)
        qop = node.op_type == "QLinearConv"
        if qop:
            x = self.src(node.input[0], i, node)
            xs, xz = self.scalar_q(node.input[1], node.input[2], i, node)
            w = self.const(node.input[3], i, node, "weight")
            ws = self.const(node.input[4], i, node, "weight scale")
            wz = self.init.get(node.input[5])
            ys, yz = self.scalar_q(node.input[6], node.input[7], i, node)
            b = self.const(node.input[8], i, node, "bias") if len(node.input) > 8 and node.input[8] else None
            out = node.output[0]
        else:
            x = self.src(node.input[0], i, node)
            xt = self.tensors[x]
            xs, xz = xt.scale, xt.zero
            w, ws, wz = self.weight_of(node.input[1], i, node)
            b = None
            if len(node.input) > 2 and node.input[2]:
                bp = self.producer.get(node.input[2])
                if bp is None or bp.op_type != "DequantizeLinear":
                    raise self.fail(i, node, f"bias is not a DequantizeLinear of int32; {REQUANTIZE}")
                b = self.const(bp.input[0], i, node, "bias")
            out, ys, yz = self.out_q(node, i)
        if w.dtype != np.int8:
            raise self.fail(i, node, f"weights are {w.dtype}, expected int8; {REQUANTIZE}")
        if wz is not None and np.any(wz != 0):
            raise self.fail(i, node, f"weights are not symmetric (zero point != 0); {REQUANTIZE}")
        if any(int(d) != 1 for d in a.get("dilations", [1])):
            raise self.fail(i, node, f"dilations {a['dilations']} are not supported; use 1")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.fail(i, node, "auto_pad is not supported; export with explicit pads")
        c, h, wd = self.tensors[x].shape
        group = int(a.get("group", 1))
        if w.ndim == 3:  # Conv1d: [Co, Ci/g, k]
            w = w[:, :, None, :]
            k = list(a.get("kernel_shape", [w.shape[3]]))
            pads = list(a.get("pads", [0, 0]))
            strides = list(a.get("strides", [1]))
            kh, kw, sh, sw = 1, int(k[0]), 1, int(strides[0])
            pt, pl, pb, pr = 0, int(pads[0]), 0, int(pads[1])
        else:
            kh, kw = (int(v) for v in a.get("kernel_shape", w.shape[2:]))
            pt, pl, pb, pr = (int(v) for v in a.get("pads", [0, 0, 0, 0]))
            sh, sw = (int(v) for v in a.get("strides", [1, 1]))
        co = w.shape[0]
        depthwise = group == c and group > 1
        if group not in (1, c) or (group == 1 and w.shape[1] != c):
            raise self.fail(
                i, node, f"group {group} with {c} input channels: only regular and depthwise convs"
            )
        if min(kh, kw, sh, sw) < 1 or min(pt, pl, pb, pr) < 0 or (kh, kw) != tuple(w.shape[2:]):
            raise self.fail(
                i, node, f"kernel {kh}x{kw} (weights {list(w.shape)}), strides {sh},{sw}, pads "
                f"{pt},{pl},{pb},{pr}: kernel and strides must be >= 1 and match the weights, pads >= 0",
            )  # fmt: skip
        ho, wo = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
        scales = np.broadcast_to(np.asarray(ws, np.float32).reshape(-1), (co,)).astype(np.float32)
        b = self._check_weights(i, node, w, ws, b, co, xs, ys)
        layer = self.layer(node, "conv")
        y = self.define(out, f"{layer}.out", (co, ho, wo), ys, yz)
        attrs: dict[str, Any] = {
            "kernel_h": kh,
            "kernel_w": kw,
            "stride_h": sh,
            "stride_w": sw,
            "pad_top": pt,
            "pad_bottom": pb,
            "pad_left": pl,
            "pad_right": pr,
            "depthwise": depthwise,
            "x_scale": xs,
            "x_zero": xz,
            "act_min": -128,
            "act_max": 127,
            "activation": "NONE",
            "requant": "float",
            "source_op": node.op_type,
            "source_index": i,
        }
        if depthwise and co != c:
            attrs["depth_multiplier"] = co // c
        bias = np.zeros(co, np.int32) if b is None else b
        self.ops.append(
            Op(
                layer,
                "qconv",
                [x],
                y,
                attrs,
                {
                    "weight": np.ascontiguousarray(w, np.int8),
                    "bias": bias,
                    "w_scales": scales,
                    "scale": ort_scales(xs, scales, ys),
                },
            )
        )

    def _check_weights(
        self,
        i: int,
        node: Any,
        w: np.ndarray,
        ws: np.ndarray,
        b: np.ndarray | None,
        co: int,
        xs: float,
        ys: float,
    ) -> np.ndarray | None:
        """int8 weights, finite positive float scales (one or one per output channel), int32 biases (one per
        output channel) by meaning: else one line naming the node. Returns the bias as int32."""
        if w.dtype != np.int8:
            raise self.fail(i, node, f"weights are {w.dtype}, expected int8; {REQUANTIZE}")
        s = np.asarray(ws).reshape(-1)
        if not np.issubdtype(s.dtype, np.floating) or s.size not in (1, co):
            raise self.fail(i, node, f"weight scales are {s.dtype}[{s.size}], expected float32[{co}] or one")
        with np.errstate(all="ignore"):
            req = np.asarray(ort_scales(xs, np.broadcast_to(s.astype(np.float32), (co,)), ys))
        if not (np.all(np.isfinite(s)) and np.all(s > 0) and np.all(req > 0) and np.all(req < 2**16)):
            bad = int(np.argmax(~np.isfinite(s) | (s <= 0))) if s.size > 1 else 0
            raise self.fail(
                i, node, f"weight scale {s[bad]} (channel {bad}): scales must be finite and positive, and "
                "the requantization scale x_scale * w_scale / y_scale in (0, 65536); re-quantize the model",
            )  # fmt: skip
        if b is None:
            return None
        if not np.issubdtype(b.dtype, np.integer) or b.reshape(-1).size != co:
            raise self.fail(i, node, f"bias is {b.dtype}{list(b.shape)}, expected int32[{co}]; {REQUANTIZE}")
        if b.size and (int(b.min()) < -(2**31) or int(b.max()) >= 2**31):
            raise self.fail(i, node, f"bias values {int(b.min())}..{int(b.max())} exceed int32")
        return np.asarray(b, np.int32).reshape(-1)

    def gemm(self, i: int, node: Any) -> None:
        a = self.attrs(node)
        if float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0 or int(a.get("transA", 0)):
            raise self.fail(i, node, "alpha/beta != 1 or transA is not supported")
        src = node.input[0]
        x = self.src(src, i, node)
        if node.op_type == "QGemm":
            xs, xz = self.scalar_q(node.input[1], node.input[2], i, node)
            w = self.const(node.input[3], i, node, "weight")
            ws = self.const(node.input[4], i, node, "weight scale")
            wz = self.init.get(node.input[5])
            b = self.const(node.input[6], i, node, "bias") if len(node.input) > 6 and node.input[6] else None
            if len(node.input) < 9:
                raise self.fail(i, node, "QGemm without an output scale (float output) is not supported")
            ys, yz = self.scalar_q(node.input[7], node.input[8], i, node)
            out = node.output[0]
        else:
            xs, xz = self.tensors[x].scale, self.tensors[x].zero
            w, ws, wz = self.weight_of(node.input[1], i, node)
            b = None
            if len(node.input) > 2 and node.input[2]:
                bp = self.producer.get(node.input[2])
                b = self.const(bp.input[0], i, node, "bias") if bp is not None else None
            out, ys, yz = self.out_q(node, i)
        if wz is not None and np.any(wz != 0):
            raise self.fail(i, node, f"weights are not symmetric (zero point != 0); {REQUANTIZE}")
        if not int(a.get("transB", 0)):
            w = w.T
        c, h, wd = self.tensors[x].shape
        k, n = w.shape
        if n != c * h * wd:
            raise self.fail(i, node, f"weights take {n} inputs, the input has {c * h * wd}")
        b = self._check_weights(i, node, w, ws, b, k, xs, ys)
        w4 = np.ascontiguousarray(w.reshape(k, c, h, wd), np.int8)  # NCHW flatten order = OIHW
        scales = np.broadcast_to(np.asarray(ws, np.float32).reshape(-1), (k,)).astype(np.float32)
        layer = self.layer(node, "gemm")
        y = self.define(out, f"{layer}.out", (k, 1, 1), ys, yz)
        attrs = {
            "kernel_h": h,
            "kernel_w": wd,
            "stride_h": 1,
            "stride_w": 1,
            "pad_top": 0,
            "pad_bottom": 0,
            "pad_left": 0,
            "pad_right": 0,
            "depthwise": False,
            "x_scale": xs,
            "x_zero": xz,
            "act_min": -128,
            "act_max": 127,
            "activation": "NONE",
            "requant": "float",
            "source_op": node.op_type,
            "source_index": i,
        }
        bias = np.zeros(k, np.int32) if b is None else b
        self.ops.append(
            Op(
                layer,
                "qconv",
                [x],
                y,
                attrs,
                {"weight": w4, "bias": bias, "w_scales": scales, "scale": ort_scales(xs, scales, ys)},
            )
        )

    def add(self, i: int, node: Any) -> None:
        if node.op_type == "QLinearAdd":
            a, b = self.src(node.input[0], i, node), self.src(node.input[3], i, node)
            ys, yz = self.scalar_q(node.input[6], node.input[7], i, node)
            out = node.output[0]
        else:
            a, b = self.src(node.input[0], i, node), self.src(node.input[1], i, node)
            out, ys, yz = self.out_q(node, i)
        ta, tb = self.tensors[a], self.tensors[b]
        if ta.shape != tb.shape:
            raise self.fail(i, node, f"broadcasting {ta.shape} + {tb.shape} is not supported")
        layer = self.layer(node, "add")
        y = self.define(out, f"{layer}.out", ta.shape, ys, yz)
        try:
            p = ort_params(ta.scale, tb.scale, ys, ta.zero, tb.zero)
        except TinytrainError as exc:
            raise self.fail(i, node, str(exc)) from None
        self.ops.append(
            Op(
                layer,
                "qadd",
                [a, b],
                y,
                {
                    "mode": "ort",
                    **p,
                    "y_zero": yz,
                    "act_min": -128,
                    "act_max": 127,
                    "source_op": node.op_type,
                    "source_index": i,
                },
            )
        )

    def maxpool(self, i: int, node: Any) -> None:
        a = self.attrs(node)
        x = self.src(node.input[0], i, node)
        xt = self.tensors[x]
        if int(a.get("ceil_mode", 0)) or any(int(d) != 1 for d in a.get("dilations", [1])):
            raise self.fail(i, node, "ceil_mode / dilations are not supported")
        k = [int(v) for v in a["kernel_shape"]]
        if len(k) == 1:
            kh, kw = 1, k[0]
            pads = [int(v) for v in a.get("pads", [0, 0])]
            pt, pl, pb, pr = 0, pads[0], 0, pads[1]
            sh, sw = 1, int(a.get("strides", [1])[0])
        else:
            kh, kw = k
            pt, pl, pb, pr = (int(v) for v in a.get("pads", [0, 0, 0, 0]))
            sh, sw = (int(v) for v in a.get("strides", [1, 1]))
        c, h, wd = xt.shape
        ho, wo = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
        out = node.output[0]
        if self._is_qdq_float(node):
            out, ys, yz = self.out_q(node, i)
            if (ys, yz) != (xt.scale, xt.zero):
                raise self.fail(i, node, "MaxPool re-quantized to another scale is not supported")
        layer = self.layer(node, "maxpool")
        y = self.define(out, f"{layer}.out", (c, ho, wo), xt.scale, xt.zero)
        self.ops.append(
            Op(
                layer,
                "qpool",
                [x],
                y,
                {
                    "mode": "max",
                    "kernel_h": kh,
                    "kernel_w": kw,
                    "stride_h": sh,
                    "stride_w": sw,
                    "pad_top": pt,
                    "pad_left": pl,
                    "act_min": -128,
                    "act_max": 127,
                    "activation": "NONE",
                    "source_op": node.op_type,
                    "source_index": i,
                },
            )
        )

    def _pool_geometry(self, i: int, node: Any) -> tuple[int, ...]:
        a = self.attrs(node)
        if int(a.get("ceil_mode", 0)) or any(int(d) != 1 for d in a.get("dilations", [1])):
            raise self.fail(i, node, "ceil_mode / dilations are not supported")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.fail(i, node, "auto_pad is not supported; export with explicit pads")
        k = [int(v) for v in a["kernel_shape"]]
        if len(k) == 1:
            pads = [int(v) for v in a.get("pads", [0, 0])]
            return 1, k[0], 1, int(a.get("strides", [1])[0]), 0, pads[0], 0, pads[1]
        pt, pl, pb, pr = (int(v) for v in a.get("pads", [0, 0, 0, 0]))
        sh, sw = (int(v) for v in a.get("strides", [1, 1]))
        return k[0], k[1], sh, sw, pt, pl, pb, pr

    def avgpool(self, i: int, node: Any) -> None:
        x = self.src(node.input[0], i, node)
        xt = self.tensors[x]
        kh, kw, sh, sw, pt, pl, pb, pr = self._pool_geometry(i, node)
        if node.op_type == "QLinearAveragePool":
            if int(self.attrs(node).get("channels_last", 0)):
                raise self.fail(i, node, "channels_last is not supported")
            ys, yz = self.scalar_q(node.input[3], node.input[4], i, node)
            out = node.output[0]
        else:
            out, ys, yz = self.out_q(node, i)
        c, h, wd = xt.shape
        ho, wo = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
        layer = self.layer(node, "avgpool")
        y = self.define(out, f"{layer}.out", (c, ho, wo), ys, yz)
        self.ops.append(
            Op(
                layer,
                "qpool",
                [x],
                y,
                {
                    "mode": "avg",
                    "requant": "float",
                    "kernel_h": kh,
                    "kernel_w": kw,
                    "stride_h": sh,
                    "stride_w": sw,
                    "pad_top": pt,
                    "pad_left": pl,
                    "act_min": -128,
                    "act_max": 127,
                    "activation": "NONE",
                    "count_include_pad": int(self.attrs(node).get("count_include_pad", 0)),
                    "source_op": node.op_type,
                    "source_index": i,
                },
            )
        )

    def concat(self, i: int, node: Any) -> None:
        a = self.attrs(node)
        if node.op_type == "QLinearConcat":
            ys, yz = self.scalar_q(node.input[0], node.input[1], i, node)
            srcs = []
            for j in range(2, len(node.input), 3):
                xs, xz = self.scalar_q(node.input[j + 1], node.input[j + 2], i, node)
                srcs.append((self.src(node.input[j], i, node), xs, xz))
            out = node.output[0]
        else:
            out, ys, yz = self.out_q(node, i)
            srcs = [
                (
                    self.src(t, i, node),
                    self.tensors[self.src(t, i, node)].scale,
                    self.tensors[self.src(t, i, node)].zero,
                )
                for t in node.input
            ]
        if len(srcs) != 2:
            raise self.fail(i, node, f"concatenation of {len(srcs)} inputs: 2 are supported")
        rank = len(self.in_dims)
        axis = int(a.get("axis", 1)) % rank
        ir_axis = {4: {1: 0, 2: 1, 3: 2}, 3: {1: 0, 2: 2}, 2: {1: 0}}[rank].get(axis)
        if ir_axis is None:
            raise self.fail(i, node, f"concatenation along axis {axis} (the batch) is not supported")
        layer = self.layer(node, "concat")
        parts = []
        for k, (x, xs, xz) in enumerate(srcs):
            if (np.float32(xs), xz) != (np.float32(ys), yz):  # re-quantize this input (onnxruntime does)
                rq = f"{layer}.requant{k}"
                self.names.add(rq)
                t = self.tensors[x]
                self.tensors[f"{rq}.out"] = Tensor(f"{rq}.out", t.shape, ys, yz)
                self.ops.append(
                    Op(
                        rq,
                        "qrequant",
                        [x],
                        f"{rq}.out",
                        {
                            "x_scale": xs,
                            "x_zero": xz,
                            "y_scale": ys,
                            "y_zero": yz,
                            "source_op": node.op_type,
                            "source_index": i,
                        },
                    )
                )
                x = f"{rq}.out"
            parts.append(x)
        shapes = [self.tensors[p].shape for p in parts]
        shape = list(shapes[0])
        shape[ir_axis] += shapes[1][ir_axis]
        y = self.define(out, f"{layer}.out", (shape[0], shape[1], shape[2]), ys, yz)
        self.ops.append(
            Op(layer, "qconcat", parts, y, {"axis": ir_axis, "source_op": node.op_type, "source_index": i})
        )

    def pad(self, i: int, node: Any) -> None:
        a = self.attrs(node)
        if a.get("mode", b"constant") not in (b"constant", "constant"):
            raise self.fail(i, node, f"Pad mode {a.get('mode')!r} is not supported (constant only)")
        x = self.src(node.input[0], i, node)
        xt = self.tensors[x]
        pads = [int(v) for v in self.const(node.input[1], i, node, "pads").reshape(-1)]
        rank = len(pads) // 2
        begin, end = pads[:rank], pads[rank:]
        if begin[:2] != [0, 0] or end[:2] != [0, 0] or any(v < 0 for v in pads):
            raise self.fail(i, node, "padding the batch or channel axis (or negative pads) is not supported")
        pt, pb, pl, pr = (begin[2], end[2], begin[3], end[3]) if rank == 4 else (0, 0, begin[2], end[2])
        out = node.output[0]
        value = xt.zero
        if len(node.input) > 2 and node.input[2]:
            cp = self.producer.get(node.input[2])
            if node.input[2] in self.init:  # QOperator: the int8 constant itself
                value = int(self.init[node.input[2]].reshape(-1)[0])
            elif cp is not None and cp.op_type == "DequantizeLinear":  # QDQ: a dequantized constant
                q = self.const(cp.input[0], i, node, "pad value")
                cs = float(self.const(cp.input[1], i, node, "pad value scale").reshape(-1)[0])
                cz = int(self.init[cp.input[2]].reshape(-1)[0]) if len(cp.input) > 2 else 0
                real = np.float32((int(q.reshape(-1)[0]) - cz) * np.float32(cs))
                value = int(np.clip(np.rint(real / np.float32(xt.scale)) + xt.zero, -128, 127))
        if self._is_qdq_float(node):
            out, ys, yz = self.out_q(node, i)
            if (np.float32(ys), yz) != (np.float32(xt.scale), xt.zero):
                raise self.fail(i, node, "Pad re-quantized to another scale is not supported")
        c, h, wd = xt.shape
        layer = self.layer(node, "pad")
        y = self.define(out, f"{layer}.out", (c, h + pt + pb, wd + pl + pr), xt.scale, xt.zero)
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
                    "source_op": node.op_type,
                    "source_index": i,
                },
            )
        )

    def _only(self, tensor: str, op_types: tuple[str, ...], i: int, node: Any, what: str) -> Any:
        cons = self.consumers.get(tensor, [])
        if len(cons) != 1 or cons[0].op_type not in op_types:
            found = [c.op_type for c in cons]
            raise self.fail(
                i, node, f"{what}: expected one {' or '.join(op_types)} reading {tensor!r}, found {found}"
            )
        return cons[0]

    def hardswish(self, i: int, node: Any) -> None:
        """HardSwish as torch.onnx inlines it: `x · HardSigmoid(x)` (alpha 1/6, beta 1/2), the HardSigmoid in
        float between a DequantizeLinear and a QuantizeLinear; the Mul as QLinearMul (QOperator) or as a
        float Mul between DequantizeLinear / QuantizeLinear (QDQ). One `qhardswish` op, mode "ort"."""
        from tinytrain.ops.hardswish import ORT_ATTRS, ort_table

        x = self.src(node.input[0], i, node)
        xt = self.tensors[x]
        a = self.attrs(node)
        alpha, beta = np.float32(a.get("alpha", 0.2)), np.float32(a.get("beta", 0.5))
        if alpha != np.float32(1.0 / 6.0) or beta != np.float32(0.5):
            raise self.fail(
                i, node, f"a HardSigmoid (alpha {alpha}, beta {beta}) that is not part of a HardSwish "
                "(alpha 1/6, beta 1/2, times its input) is not supported",
            )  # fmt: skip
        what = "not a HardSwish (x * HardSigmoid(x))"
        q = self._only(node.output[0], ("QuantizeLinear",), i, node, what)
        hs, hz = self.scalar_q(q.input[1], q.input[2] if len(q.input) > 2 else "", i, q)
        mul = self._only(q.output[0], ("QLinearMul", "DequantizeLinear"), i, node, what)
        used = [q, mul]
        if mul.op_type == "QLinearMul":
            ins = list(mul.input)
            k = 0 if ins[3] == q.output[0] else 3  # the other operand: x
            if ins[3 - k] != q.output[0] or self.ir.get(ins[k]) != x:
                raise self.fail(
                    i, node, f"{what}: the QLinearMul does not multiply the HardSigmoid by its input"
                )
            scales = [
                self.scalar_q(ins[k + 1], ins[k + 2], i, mul),
                self.scalar_q(ins[4 - k], ins[5 - k], i, mul),
            ]
            ys, yz = self.scalar_q(ins[6], ins[7], i, mul)
            out, form = mul.output[0], "qop"
        else:
            dq = mul
            mul = self._only(dq.output[0], ("Mul",), i, node, what)
            other = [t for t in mul.input if t != dq.output[0]]
            if len(other) != 1 or self.ir.get(other[0]) != x:
                raise self.fail(i, node, f"{what}: the Mul does not multiply the HardSigmoid by its input")
            scales = [
                (xt.scale, xt.zero),
                self.scalar_q(dq.input[1], dq.input[2] if len(dq.input) > 2 else "", i, dq),
            ]
            out, ys, yz = self.out_q(mul, i)
            used.append(mul)
            form = "qdq"
        if scales != [(xt.scale, xt.zero), (hs, hz)]:
            raise self.fail(i, node, f"{what}: the Mul reads its operands with other scales than they have")
        for n in used:
            self.done.add(id(n))
        self.source_ops[mul.op_type] += 1
        layer = self.layer(node, "hardswish")
        y = self.define(out, f"{layer}.out", xt.shape, ys, yz)
        attrs = {
            "mode": "ort",
            "form": form,
            "x_scale": xt.scale,
            "x_zero": xt.zero,
            "h_scale": hs,
            "h_zero": hz,
            "y_scale": ys,
            "y_zero": yz,
            "alpha": float(alpha),
            "beta": float(beta),
        }
        ort_table(*(attrs[k] for k in ORT_ATTRS))  # the table builds (finite scales)
        self.ops.append(
            Op(layer, "qhardswish", [x], y, {**attrs, "source_op": "HardSwish", "source_index": i})
        )

    def gap(self, i: int, node: Any) -> None:
        x = self.src(node.input[0], i, node)
        xt = self.tensors[x]
        if node.op_type == "QLinearGlobalAveragePool":
            if int(self.attrs(node).get("channels_last", 0)):
                raise self.fail(i, node, "channels_last is not supported")
            ys, yz = self.scalar_q(node.input[3], node.input[4], i, node)
            out = node.output[0]
        else:
            out, ys, yz = self.out_q(node, i)
        c, h, wd = xt.shape
        n = h * wd
        scale = float(np.float32(xt.scale) / np.float32(np.float32(ys) * np.float32(n)))
        layer = self.layer(node, "pool")
        y = self.define(out, f"{layer}.out", (c, 1, 1), ys, yz)
        self.ops.append(
            Op(
                layer,
                "qmean",
                [x],
                y,
                {
                    "mode": "ort",
                    "x_zero": xt.zero,
                    "y_zero": yz,
                    "scale": scale,
                    "source_op": node.op_type,
                    "source_index": i,
                },
            )
        )


def import_onnx(path: str | Path) -> Graph:
    """Parse an int8 .onnx file (QDQ or QOperator form) into a tinytrain IR graph (numerics "ort")."""
    p = Path(path)
    imp = _Onnx(p)
    try:
        return imp.run()
    except TinytrainError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise TinytrainError(
            f"{p}: malformed ONNX model ({type(exc).__name__}: {exc}); re-export it"
        ) from None
