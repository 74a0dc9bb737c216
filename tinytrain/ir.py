"""The int8 graph IR: ops over named tensors, with shapes, dtypes and quantization parameters.

Activations are per-tensor quantized (`scale`, `zero`); conv weights are symmetric per-output-channel
(`w_scales`), int8 OIHW as in the source model; biases int32 in units of `x_scale * w_scales[o]`.
Shapes are logical NCHW without the batch (`(C, H, W)`); the device layout (HWC) is chosen at lowering.

A graph serializes to a directory: `graph.json` (structure and scalars) + `params.npz` (arrays), no pickle.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError

IR_FORMAT = "tinytrain-ir/1"

#: Op kinds of the IR. conv2d covers regular, depthwise (groups == channels), pointwise and classifier.
#: The zoo's op kinds; imported models (numerics "tflm") use more: qconv, qadd, qpool, ... Every kind has its
#: home in tinytrain/ops (registry.py): shape rule, reference, lowering, kernels, emitters.
OP_KINDS = ("conv2d", "add", "avgpool")


def _ops_registry():  # noqa: ANN202  (lazy: tinytrain.ops imports this module)
    from tinytrain.ops import registry

    return registry


@dataclass
class Tensor:
    name: str
    shape: tuple[int, int, int]  # (C, H, W)
    scale: float
    zero: int
    dtype: str = "s8"


@dataclass
class Op:
    name: str  # the source layer's name, e.g. "blocks.3.depthwise"
    kind: str  # one of OP_KINDS
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # conv2d helpers -----------------------------------------------------------------------
    @property
    def weight(self) -> np.ndarray:
        return self.params["weight"]

    @property
    def bias(self) -> np.ndarray:
        return self.params["bias"]

    @property
    def w_scales(self) -> np.ndarray:
        return self.params["w_scales"]

    @property
    def depthwise(self) -> bool:
        return bool(self.attrs.get("depthwise", False))

    @property
    def kernel(self) -> int:
        return int(self.attrs["kernel"])

    @property
    def stride(self) -> int:
        return int(self.attrs.get("stride", 1))

    @property
    def padding(self) -> int:
        return int(self.attrs.get("padding", (self.kernel - 1) // 2))


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    ops: list[Op]  # in execution (topological) order
    input: str
    output: str
    meta: dict[str, Any] = field(default_factory=dict)

    # queries ------------------------------------------------------------------------------
    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise TinytrainError(f"no layer named {name!r} in model {self.name!r}")

    def producer(self, tensor: str) -> Op | None:
        for op in self.ops:
            if op.output == tensor:
                return op
        return None

    def consumers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    def convs(self) -> list[Op]:
        """The layers with weights (the ones a scheme names): conv2d, and qconv of imported models."""
        weighted = ("conv2d", *_ops_registry().WEIGHTED)
        return [op for op in self.ops if op.kind in weighted]

    @property
    def resolution(self) -> int:
        return self.tensors[self.input].shape[1]

    @property
    def num_classes(self) -> int:
        return self.tensors[self.output].shape[0]

    def num_params(self) -> int:
        return int(sum(op.weight.size + op.bias.size for op in self.convs()))

    def macs(self) -> int:
        total = 0
        for op in self.convs():
            c, h, w = self.tensors[op.output].shape
            total += c * h * w * int(np.prod(op.weight.shape[1:]))
        return total

    @property
    def numerics(self) -> str:
        """ "float-m" (the zoo's float32 requantization multiplier) or "tflm" (TFLite Micro's fixed point)."""
        return str(self.meta.get("numerics", "float-m"))

    # serialization ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        ops = []
        for op in self.ops:
            keys = {}
            for pname, arr in op.params.items():
                key = f"{op.name}/{pname}"
                arrays[key] = arr
                keys[pname] = key
            ops.append(
                {
                    "name": op.name,
                    "kind": op.kind,
                    "inputs": op.inputs,
                    "output": op.output,
                    "attrs": op.attrs,
                    "params": keys,
                }
            )
        doc = {
            "format": IR_FORMAT,
            "name": self.name,
            "input": self.input,
            "output": self.output,
            "meta": self.meta,
            "tensors": [asdict(t) for t in self.tensors.values()],
            "ops": ops,
        }
        (d / "graph.json").write_text(json.dumps(doc, indent=1))
        np.savez(d / "params.npz", **arrays)
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Graph:
        d = Path(directory)
        try:
            doc = json.loads((d / "graph.json").read_text())
            npz = np.load(d / "params.npz", allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:  # JSONDecodeError is a ValueError
            raise TinytrainError(f"{d}: not a tinytrain IR directory ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("format") != IR_FORMAT:
            fmt = doc.get("format") if isinstance(doc, dict) else None
            raise TinytrainError(f"{d}/graph.json: format {fmt!r}, expected {IR_FORMAT!r}")
        try:
            tensors = {
                t["name"]: Tensor(
                    t["name"],
                    tuple(int(v) for v in t["shape"]),
                    float(t["scale"]),
                    int(t["zero"]),
                    t.get("dtype", "s8"),
                )
                for t in doc["tensors"]
            }
            ops = [
                Op(
                    o["name"],
                    o["kind"],
                    list(o["inputs"]),
                    o["output"],
                    dict(o["attrs"]),
                    {k: npz[v] for k, v in o["params"].items()},
                )
                for o in doc["ops"]
            ]
            g = cls(doc["name"], tensors, ops, doc["input"], doc["output"], doc.get("meta", {}))
        except (KeyError, TypeError, ValueError, AttributeError, OSError, zipfile.BadZipFile) as exc:
            raise TinytrainError(f"{d}: malformed tinytrain IR ({type(exc).__name__}: {exc})") from exc
        g.validate()
        return g

    def validate(self) -> None:
        """Check shapes and references; raise TinytrainError naming the offending layer."""
        known = {self.input}
        ops = _ops_registry().OPS  # every op kind, zoo and imported (tinytrain/ops/registry.py)
        for op in self.ops:
            if op.kind not in ops:
                kinds = (*OP_KINDS, *(k for k in ops if k not in OP_KINDS))
                raise TinytrainError(f"layer {op.name!r}: unsupported op {op.kind!r} (supported: {kinds})")
            for t in op.inputs:
                if t not in self.tensors or t not in known:
                    raise TinytrainError(f"layer {op.name!r}: input tensor {t!r} is not defined before use")
            if op.output not in self.tensors:
                raise TinytrainError(f"layer {op.name!r}: output tensor {op.output!r} has no description")
            known.add(op.output)
            out = self.tensors[op.output].shape
            exp = ops[op.kind].out_shape(self, op)  # the op's shape rule (tinytrain/ops/<op>)
            if tuple(out) != tuple(exp):
                raise TinytrainError(f"layer {op.name!r}: output shape {out}, the op gives {exp}")
        if self.output not in known:
            raise TinytrainError(f"graph output {self.output!r} is never produced")

    def with_resolution(self, resolution: int) -> Graph:
        """The same network at another input resolution (fully convolutional up to the pool)."""
        if any(op.kind not in OP_KINDS for op in self.ops):
            c, h, w = self.tensors[self.input].shape
            raise TinytrainError(
                f"model {self.name!r} (imported, input {(c, h, w)} (C, H, W)) runs at its own input size "
                f"only; resolution {resolution} differs (pass --resolution {h})"
            )
        tensors = dict(self.tensors)
        c, _, _ = tensors[self.input].shape
        tensors[self.input] = Tensor(
            self.input, (c, resolution, resolution), tensors[self.input].scale, tensors[self.input].zero
        )
        for op in self.ops:
            inp = tensors[op.inputs[0]].shape
            old = tensors[op.output]
            if op.kind == "conv2d":
                h = (inp[1] + 2 * op.padding - op.kernel) // op.stride + 1
                if h < 1:
                    raise TinytrainError(
                        f"resolution {resolution} too small: layer {op.name!r} has no output"
                    )
                shape = (old.shape[0], h, h)
            elif op.kind == "add":
                shape = inp
            else:
                shape = (inp[0], 1, 1)
            tensors[op.output] = Tensor(old.name, shape, old.scale, old.zero, old.dtype)
        g = Graph(self.name, tensors, self.ops, self.input, self.output, dict(self.meta))
        g.validate()
        return g
