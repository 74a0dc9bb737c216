"""The adapted model back out: trained parameters (the device's dump or the host reference's) written into a
model directory (tinytrain IR: graph.json + params.npz) that `tinytrain infer --model OUT` and
`load_model(OUT)` read, giving the same int8 outputs as the trained device.

    from tinytrain.export import save_model
    save_model("adapted/", graph, trainer.parameters())      # or GeneratedModel.read_params(params.bin)

`params` maps buffer names to arrays in the device layout: `w:<layer>` int8 (regular conv OHWI, only the
first k input channels when the scheme trains a fraction of them with split weights; depthwise [kh, kw, C]),
`b:<layer>` int32. Other SRAM buffers (`shadow:`, optimizer state) do not change the int8 model and are
ignored. Layers without a trained buffer keep the graph's weights.

The round trip: when the model was imported from a `.tflite` and its directory (`model_dir`) holds the
file (`source.tflite`, kept by `tinytrain import`; or the `model.tflite` of an earlier round trip),
`OUT/model.tflite` is that flatbuffer with the adapted weights and biases (`tinytrain.export.tflite_out`);
TFLite Micro runs it to the int8 outputs `tinytrain infer --model OUT` gives. Likewise `OUT/model.onnx`
for a model imported from an `.onnx` (`source.onnx`, `tinytrain.export.onnx_out`; onnxruntime is its
oracle). It is written inside the temporary directory, so with the rest or not at all. When it cannot be
written (a replaced head, no source file) the model directory is still written and `save_model` says why
on stderr.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError


def _weight_back(op: Any, w_dev: np.ndarray) -> np.ndarray:
    """A trained device-layout weight as the IR's [Co, Ci/groups, kh, kw], untrained channels kept."""
    orig = np.asarray(op.weight)
    w_dev = np.asarray(w_dev)
    if op.kind == "embedding":  # the table [V, D]: its device layout is the IR's
        if w_dev.shape != orig.shape:
            raise TinytrainError(
                f"layer {op.name!r}: trained table {list(w_dev.shape)}, expected {list(orig.shape)}"
            )
        return w_dev.astype(orig.dtype)
    if op.depthwise:  # [kh, kw, C] (the first k channels when partly trained) -> [C, 1, kh, kw]
        k = w_dev.shape[-1]
        out = orig.copy()
        out[:k, 0] = w_dev.transpose(2, 0, 1)
        return out.astype(orig.dtype)
    # OHWI [Co, kh, kw, k] -> OIHW, into the first k input channels
    if w_dev.ndim != 4 or w_dev.shape[0] != orig.shape[0] or w_dev.shape[1:3] != orig.shape[2:4]:
        raise TinytrainError(
            f"layer {op.name!r}: trained weight shape {list(w_dev.shape)} does not match the model's "
            f"{list(orig.shape)} (OHWI expected)"
        )
    out = orig.copy()
    out[:, : w_dev.shape[-1]] = w_dev.transpose(0, 3, 1, 2)
    return out.astype(orig.dtype)


def adapted_graph(graph: Any, params: dict[str, np.ndarray]) -> Any:
    """A copy of `graph` with the trained weights and biases of `params` (see the module doc)."""
    convs = {op.name: op for op in graph.convs()}
    unknown = sorted(
        k.split(":", 1)[1]
        for k in params
        if k.split(":", 1)[0] in ("w", "b") and k.split(":", 1)[1] not in convs
    )
    if unknown:
        raise TinytrainError(
            f"trained parameters name layers the model does not have: {', '.join(unknown[:5])}"
        )
    ops = []
    changed = []
    for op in graph.ops:
        new_params = dict(op.params)
        if f"w:{op.name}" in params:
            new_params["weight"] = _weight_back(op, params[f"w:{op.name}"])
        if f"b:{op.name}" in params:
            b = np.asarray(params[f"b:{op.name}"]).reshape(-1)
            if b.shape != np.asarray(op.bias).shape:
                raise TinytrainError(
                    f"layer {op.name!r}: trained bias has {b.size} values, expected {op.bias.size}"
                )
            new_params["bias"] = b.astype(np.asarray(op.bias).dtype)
        if new_params is not op.params and any(
            not np.array_equal(new_params[k], op.params[k]) for k in ("weight", "bias") if k in op.params
        ):
            changed.append(op.name)
        ops.append(replace(op, params=new_params))
    meta = {**graph.meta, "adapted": {"layers_changed": changed, "from": graph.name}}
    return replace(graph, ops=ops, meta=meta)


def adapted_source(graph: Any, model_dir: str | Path | None) -> tuple[str, bytes | None, str]:
    """The adapted graph in its source format: (file name, bytes, "") — `model.tflite` for a model imported
    from a .tflite, `model.onnx` from an .onnx — or (name, None, why) when it cannot be written (the source
    file missing from `model_dir`, a layer the original file has no place for). ("", None, "") for a model
    that was not imported."""
    from tinytrain.export import onnx_out, tflite_out

    fmt = graph.meta.get("format")
    kinds = {"tflite": (tflite_out, tflite_out.rewrite_tflite), "onnx": (onnx_out, onnx_out.rewrite_onnx)}
    if fmt not in kinds:
        return "", None, ""
    mod, rewrite = kinds[fmt]
    name = mod.ADAPTED_NAME
    src = None
    for candidate in (mod.ADAPTED_NAME, mod.SOURCE_NAME):
        if model_dir is not None and (Path(model_dir) / candidate).is_file():
            src = Path(model_dir) / candidate
            break
    if src is None:
        return (
            name,
            None,
            (
                f"the model directory has no {mod.SOURCE_NAME} (re-import the {fmt} file with this "
                "version of `tinytrain import`, which keeps it)"
            ),
        )
    try:
        return name, rewrite(src.read_bytes(), graph), ""
    except tflite_out.TfliteRewriteError as exc:
        return name, None, f"{src}: {exc}"


def save_model(
    out: str | Path,
    graph: Any,
    params: dict[str, np.ndarray],
    *,
    force: bool = False,
    model_dir: str | Path | None = None,
) -> Path:
    """Write the adapted model to directory `out` (written beside it, then renamed); refuses an existing
    `out` unless `force`. `model_dir`: the directory the model was loaded from; when it holds the .tflite the
    model was imported from, `out/model.tflite` is written too (the module doc)."""
    out = Path(out)
    if out.exists() and not force:
        raise TinytrainError(f"{out}: exists; choose another directory or replace it (force)")
    g = adapted_graph(graph, params)
    g.validate()
    source_name, source_bytes, why = adapted_source(g, model_dir)
    if why:
        print(f"note: {out}/{source_name} not written: {why}", file=sys.stderr)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        g.save(tmp)
        if source_bytes is not None:
            (tmp / source_name).write_bytes(source_bytes)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
