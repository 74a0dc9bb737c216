"""Regression tests of what the fuzz campaign found (tests/reliability/fuzz_models.py, fuzz_data.py), one per
finding: each input was accepted with garbage or ended in a traceback; each is now one line naming the file
(or node) and what is wrong, and `tinytrain import` / the data loader exit 2. The two .tflite inputs are the
fuzzer's own (tests/reliability/corpus); the others are built here the way the mutation built them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.cli import main
from tinytrain.data import DataError, load_dataset

CORPUS = Path(__file__).parent / "corpus"
MODELS = Path(__file__).parents[1] / "models" / "data"


def _one_line_exit_2(args: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> str:
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("tflite_zero_point_out_of_range", ["zero point 9223372036854775807", "-128..127"]),  # was accepted
        ("tflite_negative_dimension", ["-2147483648", "at least 1"]),  # was a ValueError at inference
        ("tflite_negative_stride", ["strides 1x-8388608", "at least 1"]),  # was a ValueError at inference
    ],
)
def test_tflite_findings(
    name: str, words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = CORPUS / f"{name}.tflite"
    _one_line_exit_2(["import", str(f), "--out", str(tmp_path / "o")], capsys, f.name, *words)
    assert not (tmp_path / "o").exists()


def _onnx_edit(tmp_path: Path, src: str, edit: object) -> Path:
    import onnx

    m = onnx.load(MODELS / f"{src}.onnx")
    edit(m)  # type: ignore[operator]
    out = tmp_path / f"{src}_edited.onnx"
    onnx.save(m, out)
    return out


def _init(m: object, name: str) -> object:
    return next(i for i in m.graph.initializer if i.name == name)  # type: ignore[attr-defined]


def _set_array(m: object, name: str, fn: object) -> None:
    from onnx import numpy_helper

    t = _init(m, name)
    a = numpy_helper.to_array(t).copy()
    t.CopyFrom(numpy_helper.from_array(fn(a), name))  # type: ignore[attr-defined,operator]


def _weight_scale_name(m: object) -> str:
    conv = next(n for n in m.graph.node if n.op_type == "QLinearConv")  # type: ignore[attr-defined]
    return str(conv.input[4])


def _nan_scale(m: object) -> None:
    def f(a: np.ndarray) -> np.ndarray:
        a.reshape(-1)[0] = np.nan
        return a

    _set_array(m, _weight_scale_name(m), f)


def _huge_scale(m: object) -> None:
    def f(a: np.ndarray) -> np.ndarray:
        a.reshape(-1)[0] = 3.4e38
        return a

    _set_array(m, _weight_scale_name(m), f)


def _negative_pad(m: object) -> None:
    conv = next(n for n in m.graph.node if n.op_type == "QLinearConv")  # type: ignore[attr-defined]
    pads = next(a for a in conv.attribute if a.name == "pads")
    pads.ints[1] = -1


def _corrupt_initializer(m: object) -> None:
    t = m.graph.initializer[0]  # type: ignore[attr-defined]
    t.dims.append(1000)  # raw_data no longer fills the declared shape


def _undefined_type(m: object) -> None:
    m.graph.initializer[0].data_type = 0  # type: ignore[attr-defined]


def _bias_float(m: object) -> None:
    conv = next(n for n in m.graph.node if n.op_type == "QLinearConv")  # type: ignore[attr-defined]
    _set_array(m, conv.input[8], lambda a: a.astype(np.float32) + 0.5)


@pytest.mark.parametrize(
    ("src", "edit", "words"),
    [
        ("conv2d_3x3_s2_qop", _nan_scale, ["QLinearConv", "weight scale nan", "finite and positive"]),
        ("conv2d_3x3_s2_qop", _huge_scale, ["QLinearConv", "in (0, 65536)"]),
        ("conv2d_3x3_s2_qop", _negative_pad, ["QLinearConv", "pads >= 0"]),
        ("conv2d_3x3_s2_qop", _bias_float, ["QLinearConv", "bias is float32", "int32"]),
        ("add_qop", _corrupt_initializer, ["initializer", "is corrupt"]),
        ("add_qop", _undefined_type, ["initializer", "is corrupt"]),
    ],
)
def test_onnx_findings(
    src: str, edit: object, words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _onnx_edit(tmp_path, src, edit)
    _one_line_exit_2(["import", str(f), "--out", str(tmp_path / "o")], capsys, f.name, *words)


def test_onnx_zero_point_and_scale_of_activations(tmp_path: Path) -> None:
    def zero_scale(m: object) -> None:
        _set_array(m, "input_scale", lambda a: np.zeros_like(a))

    with pytest.raises(TinytrainError, match="finite and positive"):
        from tinytrain.models import import_model

        import_model(_onnx_edit(tmp_path, "add_qop", zero_scale))


# ---- data ---------------------------------------------------------------------------------------------


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    f = tmp_path / "d.csv"
    f.write_text("\n".join(rows) + "\n")
    return f


def test_csv_row_with_an_extra_field(tmp_path: Path) -> None:
    """pandas took the first cells as an index (a TypeError while naming the bad line)."""
    rows = ["sample,label,ax", "s0,a,1,NaN"] + [
        f"s{s},{'ab'[s % 2]},{s}" for s in range(1, 6) for _ in range(4)
    ]
    with pytest.raises(DataError, match=r"d.csv: line 2 has more fields than the header's 3 columns"):
        load_dataset(_csv(tmp_path, rows), input_shape=(1, 1, 4), input_scale=0.05)


def test_values_that_overflow_the_normalization(tmp_path: Path) -> None:
    """Values near the float64 limit made the mean / std infinite and the samples NaN, cast to int8
    silently."""
    rows = ["sample,label,ax"] + [f"s{s},{s % 2},1e308" for s in range(4) for _ in range(4)]
    with pytest.raises(DataError, match=r"d.csv: channel 0 has values up to 1e\+308: its mean / standard"):
        load_dataset(_csv(tmp_path, rows), input_shape=(1, 1, 4), input_scale=0.05, test_fraction=0.5)
    f = tmp_path / "f.npz"
    np.savez(f, x=np.full((6, 1, 1, 4), 1.7e308), y=np.arange(6) % 2)
    with pytest.raises(DataError, match="f.npz: channel 0 has values up to"):
        load_dataset(f, input_shape=(1, 1, 4), input_scale=0.05, test_fraction=0.5)


def test_npz_with_a_single_value_x(tmp_path: Path) -> None:
    f = tmp_path / "s.npz"
    np.savez(f, x=np.int8(3), y=np.arange(3))
    with pytest.raises(DataError, match=r"s.npz: x is a single value"):
        load_dataset(f, input_shape=(3, 4, 4))


def test_npz_with_an_unsupported_zip_member(tmp_path: Path) -> None:
    """A member needing a newer zip version raised NotImplementedError out of zipfile."""
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((4, 3, 4, 4), np.int8), y=np.arange(4) % 2)
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        first = z.infolist()[0]
    # "version needed to extract" of the first local header -> 9.1 (zipfile refuses versions above 6.3)
    off = first.header_offset + 4
    data[off : off + 2] = (91).to_bytes(2, "little")
    cd = data.rfind(b"PK\x01\x02")
    while cd > 0 and data[cd + 46 : cd + 46 + len(first.filename)] != first.filename.encode():
        cd = data.rfind(b"PK\x01\x02", 0, cd)
    data[cd + 6 : cd + 8] = (91).to_bytes(2, "little")
    f = tmp_path / "z.npz"
    f.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"z.npz: not a readable .npz"):
        load_dataset(f, input_shape=(3, 4, 4))
