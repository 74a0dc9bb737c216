"""`tinytrain import` of .tflite files and `tinytrain infer` on the imported model, in process; bad input
gives one line on stderr, exit 2 and no output directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.ops import nets
from tests.ops.nets import Net
from tests.ops.tflite_builder import TFLiteBuilder, tflm_run
from tinytrain.cli import main
from tinytrain.models import import_model, load_model


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _file(tmp_path: Path, model: bytes, name: str = "m") -> Path:
    p = tmp_path / f"{name}.tflite"
    p.write_bytes(model)
    return p


def test_import_summary_and_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = _file(tmp_path, nets.mobilenet_like(), "mobilenet")
    out = tmp_path / "imported"
    code, text, err = run(capsys, "import", str(src), "--out", str(out))
    assert code == 0, err
    for want in (
        "CONV_2D 3",
        "DEPTHWISE_CONV_2D 1",
        "ADD 1",
        "MEAN 1",
        "FULLY_CONNECTED 1",
        "NHWC",
        "MACs",
        "inference peak",
        "dropped SOFTMAX",
        "(classifier)",
        "zero point -5",
    ):
        assert want in text, want
    g = load_model(out)
    assert g.numerics == "tflm" and g.num_classes == 4
    # the source is kept: the round trip rewrites its weights (tests/export/test_round_trip.py)
    assert sorted(p.name for p in out.iterdir()) == ["graph.json", "params.npz", "source.tflite"]
    assert (out / "source.tflite").read_bytes() == src.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".imported")]  # no temp dir left
    code, text, err = run(capsys, "import", str(src), "--out", str(out), "--json")
    assert code == 2 and "already exists" in err
    code, text, _ = run(capsys, "import", str(src), "--out", str(out), "--json", "--force")
    s = json.loads(text)
    assert s["params"] == g.num_params() and s["macs"] > 0 and s["classifier"] == g.convs()[-1].name


def test_infer_batch_source_layout_matches_tflm(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = nets.conv1d_like()
    out = tmp_path / "sensor"
    assert run(capsys, "import", str(_file(tmp_path, model)), "--out", str(out))[0] == 0
    xs = np.random.default_rng(3).integers(-128, 128, (32, 32, 3)).astype(np.int8)  # [N, W, C] (NWC)
    np.save(tmp_path / "x.npy", xs)
    code, text, err = run(
        capsys,
        "infer",
        "--model",
        str(out),
        "--input",
        str(tmp_path / "x.npy"),
        "--logits",
        str(tmp_path / "z.npy"),
        "--top",
        "1",
    )
    assert code == 0, err
    z = np.load(tmp_path / "z.npy")
    assert z.dtype == np.int8 and z.shape == (32, 3)
    assert np.array_equal(z, tflm_run(model, xs))
    np.save(tmp_path / "bad.npy", xs.transpose(0, 2, 1).copy())  # NCW: wrong layout
    code, _, err = run(capsys, "infer", "--model", str(out), "--input", str(tmp_path / "bad.npy"))
    assert code == 2 and "expected ['N', 32, 3] (NWC" in err


# bad input ---------------------------------------------------------------------------------------------
def _float_model() -> bytes:
    b = TFLiteBuilder()
    x = b.tensor("x", [1, 4, 4, 2], "float32")
    w = b.tensor("w", [3, 1, 1, 2], "float32", data=np.ones((3, 1, 1, 2)))
    y = b.tensor("y", [1, 4, 4, 3], "float32")
    b.op("CONV_2D", [x, w], [y], "Conv2DOptions", Padding=0, StrideW=1, StrideH=1)
    return b.finish([x], [y])


def _int16_model() -> bytes:
    b = TFLiteBuilder()
    x = b.tensor("x16", [1, 4, 4, 2], "int16", scale=0.01, zero=0)
    w = b.tensor("w", [3, 1, 1, 2], data=np.ones((3, 1, 1, 2)), scale=[0.1] * 3, zero=[0] * 3)
    y = b.tensor("y16", [1, 4, 4, 3], "int16", scale=0.02, zero=0)
    b.op("CONV_2D", [x, w], [y], "Conv2DOptions", Padding=0, StrideW=1, StrideH=1)
    return b.finish([x], [y])


def _unsupported_op() -> bytes:
    n = Net([1, 4, 4, 2]).conv(3, 1, 1)
    y = n.b.tensor("model/tanh/Tanh", [1, 4, 4, 3], scale=1 / 128, zero=0)
    n.b.op("TANH", [n.x], [y])
    n.x = y
    return n.build()


def _two_inputs() -> bytes:
    b = TFLiteBuilder()
    x1 = b.tensor("in_a", [1, 4, 4, 2], scale=0.1, zero=0)
    x2 = b.tensor("in_b", [1, 4, 4, 2], scale=0.1, zero=0)
    y = b.tensor("sum", [1, 4, 4, 2], scale=0.2, zero=0)
    b.op("ADD", [x1, x2], [y], "AddOptions", FusedActivationFunction=0)
    return b.finish([x1, x2], [y])


def _dynamic() -> bytes:
    b = TFLiteBuilder()
    x = b.tensor("x", [1, 4, 4, 2], scale=0.1, zero=0, signature=[-1, -1, -1, 2])
    w = b.tensor("w", [3, 1, 1, 2], data=np.ones((3, 1, 1, 2)), scale=[0.1] * 3, zero=[0] * 3)
    y = b.tensor("y", [1, 4, 4, 3], scale=0.2, zero=0)
    b.op("CONV_2D", [x, w], [y], "Conv2DOptions", Padding=0, StrideW=1, StrideH=1)
    return b.finish([x], [y])


BAD = {
    "float": (_float_model, ["float model", "representative_dataset", "'x'"]),
    "int16": (_int16_model, ["int16", "'x16'"]),
    "unsupported_op": (_unsupported_op, ["op #1 TANH", "model/tanh/Tanh", "not supported"]),
    "dilation": (
        lambda: Net([1, 6, 6, 2]).conv(3, 3, 3, dilation=2, padding="VALID").build(),
        ["op #0 CONV_2D", "dilation 2x2"],
    ),
    "fused_tanh": (lambda: Net([1, 4, 4, 2]).conv(3, 1, 1, act="TANH").build(), ["op #0 CONV_2D", "TANH"]),
    "dynamic": (_dynamic, ["dynamic shape", "'x'"]),
    "two_inputs": (_two_inputs, ["2 inputs", "in_a", "in_b"]),
    "truncated": (lambda: nets.mobilenet_like()[:900], ["corrupt or truncated"]),
    "not_a_model": (lambda: b"this is a text file, not a model\n" * 4, ["not a TFLite model"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_exit_2_no_output(
    case: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    make, wants = BAD[case]
    src = _file(tmp_path, make(), case)
    out = tmp_path / "out"
    code, text, err = run(capsys, "import", str(src), "--out", str(out))
    assert code == 2 and text == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinytrain import: error: ") and str(src) in lines[0], err
    for w in wants:
        assert w in lines[0], (w, lines[0])
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_corrupted_bytes_never_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = bytearray(nets.mobilenet_like())
    rng = np.random.default_rng(0)
    for trial in range(40):
        bad = bytearray(good)
        for i in rng.integers(8, len(bad), 12):
            bad[i] = int(rng.integers(0, 256))
        src = _file(tmp_path, bytes(bad), f"c{trial}")
        out = tmp_path / f"o{trial}"
        code, _, err = run(capsys, "import", str(src), "--out", str(out))
        assert code in (0, 2)
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_import_model_api_unknown_suffix(tmp_path: Path) -> None:
    from tinytrain import TinytrainError

    with pytest.raises(TinytrainError, match="unknown model format"):
        import_model(tmp_path / "m.pb")
