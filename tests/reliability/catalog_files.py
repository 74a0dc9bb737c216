"""Catalogue rows for the files of the import and own-data features: bad `.tflite` / `.onnx` files given to
`tinytrain import`, and bad image folders, CSV series and `.npz` arrays given to `emulate --dataset` (each
refused while the data load, before anything is compiled or run). Registered into catalog.CASES on import."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .catalog import Case, _cli, case

ROOT = Path(__file__).resolve().parent
MODELS = ROOT.parents[0] / "models" / "data"
CORPUS = ROOT / "corpus"


def _import(f: Path, tmp: Path) -> tuple[int, str]:
    return _cli(["import", str(f), "--out", str(tmp / "imported")])


# ---- tinytrain import ------------------------------------------------------------------------------------


@case("import", ".tflite whose input zero point is 2**63-1 (fuzz finding)", expect_in="-128..127")
def _tflite_zero(tmp: Path) -> tuple[int, str]:
    return _import(CORPUS / "tflite_zero_point_out_of_range.tflite", tmp)


@case("import", ".tflite whose input has a dimension -2**31 (fuzz finding)", expect_in="at least 1")
def _tflite_dim(tmp: Path) -> tuple[int, str]:
    return _import(CORPUS / "tflite_negative_dimension.tflite", tmp)


@case("import", ".tflite CONV_2D with stride -8388608 (fuzz finding)", expect_in="at least 1")
def _tflite_stride(tmp: Path) -> tuple[int, str]:
    return _import(CORPUS / "tflite_negative_stride.tflite", tmp)


@case("import", ".tflite truncated to half", expect_in="tflite")
def _tflite_trunc(tmp: Path) -> tuple[int, str]:
    raw = (MODELS / "conv2d_3x3_same_s2.tflite").read_bytes()
    f = tmp / "half.tflite"
    f.write_bytes(raw[: len(raw) // 2])
    return _import(f, tmp)


def _onnx_case(src: str, edit: Callable[[object], None]) -> Case:
    def run(tmp: Path) -> tuple[int, str]:
        import onnx

        m = onnx.load(MODELS / f"{src}.onnx")
        edit(m)
        f = tmp / f"{src}.onnx"
        onnx.save(m, f)
        return _import(f, tmp)

    return run


def _qlinearconv(m: object) -> object:
    return next(n for n in m.graph.node if n.op_type == "QLinearConv")  # type: ignore[attr-defined]


def _set(m: object, name: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
    from onnx import numpy_helper

    t = next(i for i in m.graph.initializer if i.name == name)  # type: ignore[attr-defined]
    t.CopyFrom(numpy_helper.from_array(fn(numpy_helper.to_array(t).copy()), name))


def _nan_first(a: np.ndarray) -> np.ndarray:
    a.reshape(-1)[0] = np.nan
    return a


def _bare_hardsigmoid(m: object) -> None:
    n = next(n for n in m.graph.node if n.op_type == "HardSigmoid")  # type: ignore[attr-defined]
    next(a for a in n.attribute if a.name == "alpha").f = 0.2


for _what, _src, _edit, _words in [
    ("per-channel weight scale NaN (fuzz finding)", "conv2d_3x3_s2_qop",
     lambda m: _set(m, _qlinearconv(m).input[4], _nan_first), "finite and positive"),
    ("Conv pads -1 (fuzz finding)", "conv2d_3x3_s2_qop",
     lambda m: _qlinearconv(m).attribute[-2].ints.__setitem__(1, -1), "pads >= 0"),
    ("initializer whose dims exceed its data (fuzz finding)", "add_qop",
     lambda m: m.graph.initializer[0].dims.append(1000), "is corrupt"),
    ("float32 conv bias (fuzz finding)", "conv2d_3x3_s2_qop",
     lambda m: _set(m, _qlinearconv(m).input[8], lambda a: a.astype(np.float32)), "expected int32"),
    ("input scale 0", "add_qop", lambda m: _set(m, "input_scale", np.zeros_like), "finite and positive"),
    ("a HardSigmoid (alpha 0.2) that is not a HardSwish", "hardswish_qop", _bare_hardsigmoid,
     "not part of a HardSwish"),
]:  # fmt: skip
    case("import", f".onnx: {_what}", expect_in=_words)(_onnx_case(_src, _edit))


# ---- emulate --dataset ----------------------------------------------------------------------------------

NO_RUN = ["--board", "m7", "--no-eval", "--no-baseline", "--no-save", "--no-profile", "--no-reference"]


def _emulate_image_model(data: Path) -> tuple[int, str]:
    return _cli(["emulate", "--model", "mcunet-5fps", "--scheme", "last", "--dataset", str(data),
                 "--resolution", "32", *NO_RUN, "--steps", "1"])  # fmt: skip


def _emulate_sensor_model(data: Path, tmp: Path) -> tuple[int, str]:
    """The sensor task's 1-D model (sensor-conv1d, input (6, 1, 100)) on the user's recordings."""
    return _cli(
        ["emulate", "--task", "sensor", "--dataset", str(data), *NO_RUN, "--no-report", "--steps", "1"]
    )


def _sensor_csv(
    tmp: Path, cell: Callable[[int, int, int], str], extra: str = "", encoding: str = "utf-8"
) -> Path:
    rows = ["sample,label,ax,ay,az,gx,gy,gz"]
    for s in range(8):
        for t in range(100):
            rows.append(f"s{s},{'walk' if s % 2 else 'run'}," + ",".join(cell(s, t, c) for c in range(6)))
    if extra:
        rows[1] += extra
    f = tmp / "rec.csv"
    f.write_bytes(("\n".join(rows) + "\n").encode(encoding))
    return f


def _csv_case(cell: Callable[[int, int, int], str], extra: str = "", encoding: str = "utf-8") -> Case:
    def run(tmp: Path) -> tuple[int, str]:
        return _emulate_sensor_model(_sensor_csv(tmp, cell, extra, encoding), tmp)

    return run


def _num(s: int, t: int, c: int) -> str:
    return f"{np.sin(s + t * 0.3 + c):.4f}"


for _what, _args, _words in [
    ("CSV whose first data row has an extra field (fuzz finding)", (_num, ",NaN"), "more fields than"),
    ("CSV with values of 1e308 (normalization overflow, fuzz finding)", (lambda s, t, c: "1e308",),
     "overflow"),
    ("CSV with a non-numeric cell", (lambda s, t, c: "abc" if (s, t, c) == (3, 5, 1) else _num(s, t, c),),
     "not a finite number"),
    ("CSV with an inf cell", (lambda s, t, c: "inf" if (s, t, c) == (2, 0, 0) else _num(s, t, c),),
     "not a finite number"),
    ("CSV saved as UTF-16", (_num, "", "utf-16"), "not a readable CSV"),
]:  # fmt: skip
    case("dataset", _what, expect_in=_words)(_csv_case(*_args))  # type: ignore[arg-type]


@case("dataset", "CSV: a sample changes label midway", expect_in="changes label")
def _csv_label(tmp: Path) -> tuple[int, str]:
    f = _sensor_csv(tmp, _num)
    lines = f.read_text().splitlines()
    lines[5] = lines[5].replace(",run,", ",walk,")
    f.write_text("\n".join(lines) + "\n")
    return _emulate_sensor_model(f, tmp)


def _npz_case(make: Callable[[Path], None]) -> Case:
    def run(tmp: Path) -> tuple[int, str]:
        f = tmp / "data.npz"
        make(f)
        return _emulate_image_model(f)

    return run


def _unsupported_zip(f: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((4, 3, 32, 32), np.int8), y=np.arange(4) % 2)
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        first = z.infolist()[0]
    data[first.header_offset + 4 : first.header_offset + 6] = (91).to_bytes(2, "little")
    cd = data.find(b"PK\x01\x02")
    data[cd + 6 : cd + 8] = (91).to_bytes(2, "little")
    f.write_bytes(bytes(data))


for _what, _make, _words in [
    (".npz whose x is a single value (fuzz finding)", lambda f: np.savez(f, x=np.int8(3), y=np.arange(3)),
     "single value"),
    (".npz holding a pickled object array", lambda f: np.savez(
        f, x=np.array([{"a": 1}], dtype=object), y=np.arange(1)), "without pickled objects"),
    (".npz whose zip member needs zip version 9.1 (fuzz finding)", _unsupported_zip, "not a readable .npz"),
    (".npz with float x holding NaN", lambda f: np.savez(
        f, x=np.full((6, 3, 32, 32), np.nan, np.float32), y=np.arange(6) % 2), "NaN or inf"),
    (".npz with labels 0.5, 1.5, ...", lambda f: np.savez(
        f, x=np.zeros((6, 3, 32, 32), np.int8), y=np.arange(6) + 0.5), "is not a class label"),
]:  # fmt: skip
    case("dataset", _what, expect_in=_words)(_npz_case(_make))


def _png(size: tuple[int, int] = (8, 8), mode: str = "RGB") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, "PNG")
    return buf.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def _folder_case(edit: Callable[[Path], None]) -> Case:
    def run(tmp: Path) -> tuple[int, str]:
        root = tmp / "images"
        for cls in ("cat", "dog"):
            (root / cls).mkdir(parents=True)
            for j in range(3):
                (root / cls / f"{j}.png").write_bytes(_png())
        edit(root)
        return _emulate_image_model(root)

    return run


for _what, _edit, _words in [
    ("image folder: a PNG truncated to half", lambda r: (r / "cat" / "1.png").write_bytes(_png()[:40]),
     "unreadable or corrupt image"),
    ("image folder: a PNG declaring 100000 x 100000 pixels", lambda r: (r / "dog" / "0.png").write_bytes(
        _png_declaring(100_000, 100_000)), "unreadable or corrupt image"),
    ("image folder: an empty class folder", lambda r: (r / "bird").mkdir(), "empty class folder"),
    ("image folder: a text file named .jpg", lambda r: (r / "cat" / "x.jpg").write_text("hello"),
     "unreadable or corrupt image"),
    ("image folder: a GIF among the images", lambda r: (r / "cat" / "x.gif").write_bytes(b"GIF89a"),
     "not a PNG, JPEG or BMP"),
    ("image folder: one class only", lambda r: [p.unlink() for p in (r / "dog").iterdir()]
     and (r / "dog").rmdir(), "only one class"),
]:  # fmt: skip
    case("dataset", _what, expect_in=_words)(_folder_case(_edit))
