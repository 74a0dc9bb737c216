"""Loader for the `mcu-int8-mbnet/1` format (see tinytrain/zoo/README.md): model.json + weights.npz."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.ir import Graph, Op, Tensor

FORMAT = "mcu-int8-mbnet/1"


INT8 = (-128, 127)
INT32 = (-(2**31), 2**31 - 1)
#: Input resolutions a model file may declare (the CLI's range).
RESOLUTIONS = (8, 1024)


def _int_field(
    spec: dict[str, Any], key: str, where: str, name: str, lo: int, hi: int, default: Any = None
) -> int:
    v = spec.get(key, default) if default is not None else spec[key]
    ok = isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v == int(v))
    if isinstance(v, bool) or not ok or not lo <= int(v) <= hi:
        raise TinytrainError(f"{where}: layer {name!r}: {key} = {v!r}, expected an integer in [{lo}, {hi}]")
    return int(v)


def _scale_field(spec: dict[str, Any], key: str, where: str, name: str) -> float:
    v = spec[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and v > 0):
        raise TinytrainError(f"{where}: layer {name!r}: {key} = {v!r}, expected a finite number > 0")
    return float(v)


def _array(npz: Any, key: Any, where: str, name: str, role: str) -> np.ndarray:
    if not isinstance(key, str):
        raise TinytrainError(f"{where}/model.json: layer {name!r}: {role} key {key!r} is not a string")
    if key not in npz.files:
        raise TinytrainError(f"{where}/weights.npz: layer {name!r}: no array {key!r} (its {role})")
    return np.asarray(npz[key])


def _integers(a: np.ndarray, lo: int, hi: int, what: str, dtype: type) -> np.ndarray:
    """`a` as `dtype` if it is an integer array within [lo, hi]; else a TinytrainError naming `what`."""
    if a.dtype.kind not in "iu":
        raise TinytrainError(f"{what}: dtype {a.dtype}, expected integers ({np.dtype(dtype).name})")
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise TinytrainError(
            f"{what}: values {int(a.min())}..{int(a.max())} outside the {np.dtype(dtype).name} range "
            f"[{lo}, {hi}]"
        )
    return a.astype(dtype)


def _check_tensors(
    w: np.ndarray,
    b: np.ndarray,
    s: np.ndarray,
    shape: tuple[int, ...],
    spec: dict[str, Any],
    where: str,
    name: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a layer's tensors by meaning: int8 weights, int32 biases, finite non-zero scales, shapes."""
    f = f"{where}/weights.npz: layer {name!r}"
    cout = shape[0]
    if w.size != int(np.prod(shape)):
        raise TinytrainError(
            f"{f}: weight {spec['weight']!r} has {w.size} values {tuple(w.shape)}, expected {shape}"
        )
    w = _integers(w, *INT8, f"{f}: weight {spec['weight']!r}", np.int8).reshape(shape)
    if b.shape != (cout,):
        raise TinytrainError(f"{f}: bias {spec['bias']!r} has shape {tuple(b.shape)}, expected ({cout},)")
    b = _integers(b, *INT32, f"{f}: bias {spec['bias']!r}", np.int32)
    if s.shape != (cout,):
        raise TinytrainError(
            f"{f}: w_scales {spec['w_scales']!r} has shape {tuple(s.shape)}, expected ({cout},)"
        )
    if s.dtype.kind != "f":
        raise TinytrainError(f"{f}: w_scales {spec['w_scales']!r}: dtype {s.dtype}, expected float32")
    s32 = s.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(s32) | (s32 <= 0))
    if bad.size:
        i = int(bad[0])
        raise TinytrainError(
            f"{f}: w_scales {spec['w_scales']!r}: {bad.size} of {cout} entries are not finite and > 0 "
            f"(channel {i}: {float(s[i])})"
        )
    return w, b, s32


def _conv(
    spec: dict[str, Any], npz: Any, src: str, in_shape: tuple[int, int, int], where: str
) -> tuple[Op, Tensor]:
    if not isinstance(spec, dict):
        raise TinytrainError(f"{where}/model.json: a layer is {type(spec).__name__}, expected an object")
    try:
        name = spec["name"]
        if not isinstance(name, str) or not name:
            raise TinytrainError(f"{where}/model.json: layer name {name!r} is not a non-empty string")
        ks = spec["kernel_size"]
        if not isinstance(ks, list) or not ks:
            raise TinytrainError(f"{where}: layer {name!r}: kernel_size {ks!r}, expected [k, k]")
        k = _int_field({"kernel_size": ks[0]}, "kernel_size", where, name, 1, 15)
        if k % 2 == 0:
            raise TinytrainError(f"{where}: layer {name!r}: kernel_size {k} is even (odd sizes only)")
        stride = _int_field(spec, "stride", where, name, 1, 4, default=1)
        cin = _int_field(spec, "in_channel", where, name, 1, 65536)
        cout = _int_field(spec, "out_channel", where, name, 1, 65536)
        groups = _int_field(spec, "groups", where, name, 1, 65536, default=1)
        w = _array(npz, spec["weight"], where, name, "weight")
        b = _array(npz, spec["bias"], where, name, "bias")
        s = _array(npz, spec["w_scales"], where, name, "w_scales")
        x_scale = _scale_field(spec, "x_scale", where, name)
        y_scale = _scale_field(spec, "y_scale", where, name)
        x_zero = _int_field(spec, "x_zero", where, name, *INT8)
        y_zero = _int_field(spec, "y_zero", where, name, *INT8)
    except KeyError as exc:
        raise TinytrainError(f"{where}: layer {spec.get('name', '?')!r} lacks {exc}") from exc
    depthwise = groups == cin and groups > 1
    if groups not in (1, cin):
        raise TinytrainError(f"{where}: layer {name!r}: grouped conv with groups={groups} is not supported")
    if in_shape[0] != cin:
        raise TinytrainError(f"{where}: layer {name!r} expects {cin} input channels, gets {in_shape[0]}")
    w, b, s = _check_tensors(w, b, s, (cout, cin // groups, k, k), spec, where, name)
    pad = (k - 1) // 2
    h = (in_shape[1] + 2 * pad - k) // stride + 1
    if h < 1:
        raise TinytrainError(f"{where}: layer {name!r}: a {in_shape[1]}x{in_shape[1]} input leaves no output")
    out = Tensor(f"{name}.out", (cout, h, h), y_scale, y_zero)
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
            "x_scale": x_scale,
            "x_zero": x_zero,
        },
        {"weight": w, "bias": b, "w_scales": s},
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
    except Exception as exc:  # JSON/UTF-8 errors, a damaged zip (BadZipFile, EOFError, NotImplementedError)
        raise TinytrainError(f"{where}: malformed model directory ({exc})") from None
    try:
        return _build(doc, npz, d, resolution)
    except TinytrainError:
        raise
    except Exception as exc:  # a damaged member of weights.npz (zip, CRC, npy header) or an odd model.json
        raise TinytrainError(f"{where}: malformed model directory ({type(exc).__name__}: {exc})") from None


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
    if not isinstance(first, dict) or not isinstance(blocks, list) or not isinstance(cls, dict):
        raise TinytrainError(
            f"{where}/model.json: first_conv and classifier must be objects and blocks a list"
        )
    fname = str(first.get("name", "first_conv"))
    res = _int_field(first, "in_shape", where, fname, *RESOLUTIONS, default=128)
    x = Tensor(
        "input",
        (_int_field(first, "in_channel", where, fname, 1, 64), res, res),
        _scale_field(first, "x_scale", where, fname),
        _int_field(first, "x_zero", where, fname, *INT8),
    )
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
        if not isinstance(blk, dict):
            raise TinytrainError(f"{where}/model.json: a block is {type(blk).__name__}, expected an object")
        block_in = cur
        for part in ("pointwise1", "depthwise", "pointwise2"):
            if blk.get(part):
                cur = add_conv(blk[part], cur)
        res_spec = blk.get("residual")
        if res_spec:
            if not isinstance(res_spec, dict):
                raise TinytrainError(
                    f"{where}/model.json: block {blk.get('name')!r}: residual is not an object"
                )
            if tensors[cur].shape != tensors[block_in].shape:
                raise TinytrainError(
                    f"{where}: block {blk.get('name')!r}: residual adds {tensors[cur].shape} to "
                    f"{tensors[block_in].shape}"
                )
            bname = str(blk["name"])
            out = Tensor(
                f"{bname}.add",
                tensors[cur].shape,
                _scale_field(res_spec, "y_scale", where, f"{bname}.residual"),
                _int_field(res_spec, "y_zero", where, f"{bname}.residual", *INT8),
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
