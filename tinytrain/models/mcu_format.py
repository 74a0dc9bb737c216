"""Loader for the `mcu-int8-mbnet/1` format (see tinytrain/zoo/README.md): model.json + weights.npz."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op, Tensor

FORMAT = "mcu-int8-mbnet/1"


def _conv(
    spec: dict[str, Any], npz: Any, src: str, in_shape: tuple[int, int, int], where: str
) -> tuple[Op, Tensor]:
    try:
        name = spec["name"]
        k = int(spec["kernel_size"][0])
        stride = int(spec.get("stride", 1))
        groups = int(spec.get("groups", 1))
        cin, cout = int(spec["in_channel"]), int(spec["out_channel"])
        w = np.asarray(npz[spec["weight"]])
        b = np.asarray(npz[spec["bias"]])
        s = np.asarray(npz[spec["w_scales"]])
    except KeyError as exc:
        raise TinytrainError(f"{where}: layer {spec.get('name', '?')!r} lacks {exc}") from exc
    depthwise = groups == cin and groups > 1
    if groups not in (1, cin):
        raise TinytrainError(f"{where}: layer {name!r}: grouped conv with groups={groups} is not supported")
    if in_shape[0] != cin:
        raise TinytrainError(f"{where}: layer {name!r} expects {cin} input channels, gets {in_shape[0]}")
    w = w.reshape(cout, cin // groups, k, k).astype(np.int8)
    pad = (k - 1) // 2
    h = (in_shape[1] + 2 * pad - k) // stride + 1
    out = Tensor(f"{name}.out", (cout, h, h), float(spec["y_scale"]), int(spec["y_zero"]))
    op = Op(
        name,
        "conv2d",
        [src],
        out.name,
        {
            "kernel": k,
            "stride": stride,
            "padding": pad,
            "depthwise": depthwise,
            "x_scale": float(spec["x_scale"]),
            "x_zero": int(spec["x_zero"]),
        },
        {"weight": w, "bias": b.astype(np.int32), "w_scales": s.astype(np.float32)},
    )
    return op, out


def load_mcu_model(directory: str | Path, resolution: int | None = None) -> Graph:
    d = Path(directory)
    where = str(d)
    try:
        doc = json.loads((d / "model.json").read_text())
        npz = np.load(d / "weights.npz", allow_pickle=False)
    except FileNotFoundError as exc:
        raise TinytrainError(f"{where}: not a model directory (missing {Path(exc.filename).name})") from exc
    except (json.JSONDecodeError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise TinytrainError(f"{where}: malformed model directory ({exc})") from exc
    try:
        return _build(doc, npz, d, resolution)
    except TinytrainError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OSError, zipfile.BadZipFile) as exc:
        raise TinytrainError(f"{where}: malformed model directory ({type(exc).__name__}: {exc})") from exc


def _build(doc: Any, npz: Any, d: Path, resolution: int | None) -> Graph:
    where = str(d)
    if not isinstance(doc, dict):
        raise TinytrainError(f"{where}/model.json: not a JSON object")
    if doc.get("format") != FORMAT:
        raise TinytrainError(f"{where}/model.json: format {doc.get('format')!r}, expected {FORMAT!r}")
    try:
        first = doc["first_conv"]
        blocks = doc["blocks"]
        cls = doc["classifier"]
    except KeyError as exc:
        raise TinytrainError(f"{where}/model.json: missing {exc}") from exc
    res = int(first.get("in_shape", 128))
    x = Tensor("input", (int(first["in_channel"]), res, res), float(first["x_scale"]), int(first["x_zero"]))
    tensors = {x.name: x}
    ops: list[Op] = []

    def add_conv(spec: dict[str, Any], src: str) -> str:
        op, out = _conv(spec, npz, src, tensors[src].shape, where)
        prod = tensors[src]
        if abs(prod.scale - op.attrs["x_scale"]) > 1e-6 * prod.scale or prod.zero != op.attrs["x_zero"]:
            raise TinytrainError(
                f"{where}: layer {op.name!r} input quantization ({op.attrs['x_scale']}, "
                f"{op.attrs['x_zero']}) differs from its producer's "
                f"({prod.scale}, {prod.zero})"
            )
        ops.append(op)
        tensors[out.name] = out
        return out.name

    cur = add_conv(first, "input")
    for blk in blocks:
        block_in = cur
        for part in ("pointwise1", "depthwise", "pointwise2"):
            if blk.get(part):
                cur = add_conv(blk[part], cur)
        res_spec = blk.get("residual")
        if res_spec:
            out = Tensor(
                f"{blk['name']}.add", tensors[cur].shape, float(res_spec["y_scale"]), int(res_spec["y_zero"])
            )
            tensors[out.name] = out
            ops.append(Op(f"{blk['name']}.residual", "add", [cur, block_in], out.name))
            cur = out.name
    pooled = Tensor("pool.out", (tensors[cur].shape[0], 1, 1), tensors[cur].scale, tensors[cur].zero)
    tensors[pooled.name] = pooled
    ops.append(Op("pool", "avgpool", [cur], pooled.name))
    cls = dict(cls)
    cls.setdefault("name", "classifier")
    op, out = _conv(cls, npz, pooled.name, pooled.shape, where)
    out = Tensor("logits", out.shape, out.scale, out.zero)
    op.output = out.name
    ops.append(op)
    tensors[out.name] = out
    meta = {k: doc.get(k) for k in ("source", "license", "pretrained")}
    meta["format"] = FORMAT
    g = Graph(str(doc.get("name", d.name)), tensors, ops, "input", "logits", meta)
    g.validate()
    if resolution is not None and resolution != res:
        g = g.with_resolution(resolution)
    return g
