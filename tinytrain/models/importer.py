"""`import_model(path)`: a model file in a deployment format -> tinytrain IR; `write_model_dir` saves it as
a `tinytrain-ir/1` directory atomically; `summary` is what `tinytrain import` prints."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph

FORMATS = {
    ".tflite": "TFLite flatbuffer (full-integer int8)",
    ".onnx": "ONNX (int8 QDQ or QOperator, as onnxruntime's quantize_static writes it)",
}


NUMERICS = {"tflm": "TFLite Micro's integer kernels", "ort": "onnxruntime's CPU kernels"}
#: the most elements one tensor may have (a microcontroller model's tensors are far smaller)
MAX_ELEMENTS = 1 << 24


def check_dims(dims: Any, where: str) -> None:
    """Every dimension a positive integer and the tensor at most MAX_ELEMENTS: else TinytrainError."""
    vals = [int(d) for d in dims]
    if any(d < 1 for d in vals):
        raise TinytrainError(f"{where} has shape {vals}: every dimension must be at least 1")
    if int(np.prod(vals, dtype=object)) > MAX_ELEMENTS:
        raise TinytrainError(
            f"{where} has shape {vals}: more than {MAX_ELEMENTS:,} elements, beyond a microcontroller model"
        )


def check_quant(scale: float, zero: int, where: str) -> None:
    """An int8 activation's quantization: a finite positive scale, a zero point in -128..127."""
    if not (np.isfinite(scale) and 0 < scale < 1e30) or np.float32(scale) == 0:
        raise TinytrainError(f"{where} has scale {scale}: a quantization scale must be finite and positive")
    if not -128 <= zero <= 127:
        raise TinytrainError(f"{where} has zero point {zero}: an int8 zero point lies in -128..127")


def import_model(
    path: str | Path,
    *,
    input_scale: float | None = None,
    input_zero: int = 0,
    numerics: str = "auto",
    name: str | None = None,
) -> Graph:
    """Parse a `.tflite` file (full-integer int8; numerics "tflm": TFLite Micro's integer kernels, bit for
    bit) or an int8 `.onnx` file (QDQ or QOperator; numerics "ort": onnxruntime's CPU kernels) into the IR;
    or a PyTorch `module:function` / `path/to/file.py:function` returning `(model, calibration_batch)`
    (`import_torch_source`: the keyword arguments apply to it only). Raises TinytrainError with one line
    naming the file, op and what to do."""
    from tinytrain.models.torch_source import is_torch_spec

    if is_torch_spec(str(path)):
        return import_torch_source(
            str(path), input_scale=input_scale, input_zero=input_zero, numerics=numerics, name=name
        )
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".tflite":
        from tinytrain.models.tflite_import import import_tflite

        return import_tflite(p)
    if suffix == ".onnx":
        from tinytrain.models.onnx_import import import_onnx

        return import_onnx(p)
    raise TinytrainError(
        f"{p}: unknown model format {suffix or '(no suffix)'!r}; tinytrain imports "
        + ", ".join(f"{k} ({v})" for k, v in FORMATS.items())
        + ", or a PyTorch module:function"
    )


def import_torch_source(
    spec: str,
    *,
    input_scale: float | None = None,
    input_zero: int = 0,
    numerics: str = "auto",
    name: str | None = None,
) -> Graph:
    """`module:function` (importable from the current directory) or `file.py:function`: the function
    returns `(model, calibration_batch)`; traced with torch.fx and quantized post-training on the batch (no
    pickle is loaded). `input_scale` None: from a float batch's min/max (an int8 batch: the zoo's 1/127.5,
    zero 0)."""
    from tinytrain.models.torch_import import DEFAULT_INPUT_SCALE, import_torch, input_quantization_from
    from tinytrain.models.torch_source import load_torch_source

    model, calib, func = load_torch_source(spec)
    if input_scale is None:
        arr = calib.detach().cpu().numpy() if hasattr(calib, "detach") else np.asarray(calib)
        is_float = np.issubdtype(arr.dtype, np.floating)
        input_scale, input_zero = input_quantization_from(arr) if is_float else (DEFAULT_INPUT_SCALE, 0)
    return import_torch(
        model,
        calib,
        name=name or func,
        input_scale=input_scale,
        input_zero=input_zero,
        source=spec,
        numerics=numerics,
    )


def write_model_dir(
    graph: Graph, out: str | Path, force: bool = False, source: str | Path | None = None
) -> Path:
    """Save `graph` to directory `out` via a temporary sibling renamed at the end: never half a model.
    `source`: the imported file, kept beside the graph as `source.<suffix>` (the adapted model's round trip,
    `tinytrain.export.tflite_out`, rewrites its weights)."""
    dst = Path(out)
    if dst.exists() and not force:
        raise TinytrainError(f"--out {dst}: already exists; choose another directory or pass --force")
    if dst.exists() and not (dst / "graph.json").exists():
        raise TinytrainError(f"--out {dst}: exists and is not a tinytrain model directory; not replacing it")
    parent = dst.parent if str(dst.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=parent))
    except OSError as exc:
        raise TinytrainError(f"--out {dst}: cannot create it ({exc.strerror})") from None
    try:
        graph.save(tmp)
        Graph.load(tmp)  # what was written reads back
        if source is not None:
            shutil.copyfile(source, tmp / f"source{Path(source).suffix.lower()}")
        if dst.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old.", dir=parent))
            dst.rename(old / dst.name)
            tmp.rename(dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def activation_peak(graph: Graph) -> tuple[int, str]:
    """Peak bytes of int8 activations live at once over one inference in graph order (an op's inputs and
    its output together; no in-place reuse), and the op where it peaks."""
    last: dict[str, int] = {}
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            last[t] = i
    last[graph.output] = len(graph.ops)

    def size(t: str) -> int:
        return int(np.prod(graph.tensors[t].shape))

    live = {graph.input}
    peak, where = size(graph.input), "input"
    for i, op in enumerate(graph.ops):
        live.add(op.output)
        cur = sum(size(t) for t in live)
        if cur > peak:
            peak, where = cur, op.name
        live = {t for t in live if last.get(t, -1) > i}
    return peak, where


def summary(graph: Graph) -> dict[str, Any]:
    from tinytrain.ops.registry import OPS

    meta = graph.meta
    macs = 0
    for op in graph.ops:
        mod = OPS.get(op.kind)
        if mod is not None and hasattr(mod, "macs"):
            macs += mod.macs(graph, op)
    peak, where = activation_peak(graph)
    x = graph.tensors[graph.input]
    layers = [
        {
            "layer": op.name,
            "op": str(op.attrs.get("source_op", op.kind))
            + (
                " dw"
                if op.attrs.get("depthwise") and "DEPTHWISE" not in str(op.attrs.get("source_op"))
                else ""
            ),
            "kernel": f"{op.attrs.get('kernel_h', '?')}x{op.attrs.get('kernel_w', '?')}",
            "out": list(graph.tensors[op.output].shape),
            "params": int(op.weight.size + op.bias.size),
        }
        for op in graph.convs()
    ]
    return {
        "model": graph.name,
        "source": meta.get("source"),
        "numerics": graph.numerics,
        "input": {
            "shape": meta.get("source_input_shape"),
            "layout": meta.get("source_layout"),
            "type": meta.get("source_input_type"),
            "int8_scale": x.scale,
            "int8_zero": x.zero,
        },
        "classes": graph.num_classes,
        "source_ops": meta.get("source_ops", {}),
        "ir_ops": dict(sorted(Counter(op.kind for op in graph.ops).items())),
        "params": graph.num_params(),
        "macs": int(macs),
        "inference_peak_bytes": peak,
        "inference_peak_at": where,
        "dropped": meta.get("dropped", []),
        "folded": meta.get("folded", []),
        "layers": layers,
        "classifier": layers[-1]["layer"] if layers else None,
    }


#: a .tflite shape op the import folded: "RESHAPE op #2 [1, 1, 100, 12] -> [1, 100, 12]"
_SHAPE_FOLD = re.compile(r"^([A-Z_]+) op #\d+ \[[\d, ]*\] -> \[[\d, ]*\]$")


def folded_text(folded: list[str]) -> str:
    """The folded ops for the summary line: each one when few; more than 3 shape-only ops (a .tflite's
    Conv1D arrives as EXPAND_DIMS -> CONV_2D -> RESHAPE, twice per layer) are counted by op instead, the
    others kept as they are (`--json` lists every one)."""
    shape = [f for f in folded if _SHAPE_FOLD.match(f)]
    if len(shape) <= 3:
        return "; ".join(folded)
    kinds = Counter(str(_SHAPE_FOLD.match(f).group(1)) for f in shape)  # type: ignore[union-attr]
    counted = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    rest = [f for f in folded if not _SHAPE_FOLD.match(f)]
    return "; ".join([f"{counted} (shape only: in the device's HWC layout they move no byte)", *rest])


def format_summary(s: dict[str, Any], out_dir: str) -> str:
    inp = s["input"]
    lines = [
        f"imported {s['source']} -> {out_dir} (tinytrain-ir/1, numerics {s['numerics']}: "
        f"{NUMERICS.get(s['numerics'], s['numerics'])}, bit for bit)",
        f"input   {inp['shape']} {inp['layout']} {inp['type']}; int8 scale {inp['int8_scale']:.6g} "
        f"zero point {inp['int8_zero']} (infer takes int8 [N, ...] in this layout)",
        f"output  {s['classes']} int8 logits",
        "ops     " + ", ".join(f"{k} {v}" for k, v in s["source_ops"].items()),
        f"params  {s['params']:,} (weights int8, biases int32)",
        f"MACs    {s['macs']:,}",
        f"memory  inference peak {s['inference_peak_bytes']:,} B of int8 activations live at once "
        f"(at {s['inference_peak_at']}, no in-place reuse)",
    ]
    for d in s["dropped"]:
        lines.append(f"dropped {d}")
    if s["folded"]:
        lines.append(f"folded  {len(s['folded'])} op(s): " + folded_text(s["folded"]))
    lines.append('layers a scheme can name (JSON {"weights": [{"layer": NAME, "input_channel_ratio": r}]}):')
    for la in s["layers"]:
        tag = "  (classifier)" if la["layer"] == s["classifier"] else ""
        lines.append(
            f"  {la['layer']:<24} {la['op']:<18} {la['kernel']:>5}  out {tuple(la['out'])}  "
            f"{la['params']:,} params{tag}"
        )
    return "\n".join(lines)
