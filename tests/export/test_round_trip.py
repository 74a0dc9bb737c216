"""The round trip: the adapted model of an imported `.tflite` goes back out as `OUT/model.tflite`, the
original flatbuffer with the trained weights and biases; TFLite Micro (the oracle) gives on it exactly the
int8 outputs `tinytrain infer --model OUT` gives (tests/models/data: 32 inputs each). An imported `.onnx`
likewise as `OUT/model.onnx`, with onnxruntime as the oracle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.export.standalone import needs_tools
from tests.ops.tflite_builder import tflm_run
from tinytrain import REPO_ROOT
from tinytrain.cli import main as cli_main
from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.data import load_dataset, model_input
from tinytrain.export import save_model
from tinytrain.export.onnx_out import rewrite_onnx
from tinytrain.export.tflite_out import TfliteRewriteError, rewrite_tflite
from tinytrain.models import import_model, load_model, replace_head
from tinytrain.reference.training import Trainer

DATA = REPO_ROOT / "tests" / "models" / "data"
#: every committed good .tflite with a weighted layer (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED)
WEIGHTED = sorted(
    p.stem
    for p in DATA.glob("*.tflite")
    if not p.stem.startswith("bad_") and "pool" not in p.stem and p.stem not in ("pad", "global_avg_pool")
)
# a depthwise layer, a pointwise layer on half its input channels, the last biases, the FULLY_CONNECTED head
MBNET_SCHEME = {
    "bias_last_n": 3,
    "weights": [
        {"layer": "depthwise_conv2d_2_1", "input_channel_ratio": 1},
        {"layer": "conv2d_7_1", "input_channel_ratio": 0.5},
    ],
}


def _import(name: str, root: Path) -> Path:
    out = root / name
    assert cli_main(["import", str(DATA / f"{name}.tflite"), "--out", str(out)]) == 0
    assert (out / "source.tflite").read_bytes() == (DATA / f"{name}.tflite").read_bytes()
    return out


def _infer(model: Path, x: np.ndarray, tmp: Path) -> np.ndarray:
    np.save(tmp / "x.npy", x)
    assert (
        cli_main(
            ["infer", "--model", str(model), "--input", str(tmp / "x.npy"), "--logits", str(tmp / "y.npy")]
        )
        == 0
    )
    return np.load(tmp / "y.npy")


@pytest.mark.parametrize("name", WEIGHTED)
def test_rewriting_the_imported_weights_gives_back_the_file(name: str) -> None:
    """The layout inverses are right (conv 2-D and 1-D, depthwise with a multiplier, dense on a flattened
    map): the unchanged model's weights and biases written back give the original file byte for byte."""
    src = (DATA / f"{name}.tflite").read_bytes()
    assert rewrite_tflite(src, import_model(DATA / f"{name}.tflite")) == src


def test_host_trained_mobilenet_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = _import("mobilenet_tiny", tmp_path)
    graph = load_model(model_dir)
    program = compile_training(graph, MBNET_SCHEME, CompileOptions(update_rule="nearest"))
    ds = load_dataset("digits", seed=0, **model_input(graph))  # 10 classes: the model's own head
    trainer = Trainer(program, seed=3)
    for x, y in zip(ds.train_x[:4], ds.train_y[:4], strict=True):
        trainer.train_step(x, int(y), 0.2)
    out = save_model(tmp_path / "adapted", graph, trainer.parameters(), model_dir=model_dir)
    adapted = load_model(out)
    assert {"depthwise_conv2d_2_1", "conv2d_7_1", "dense_1"} <= set(adapted.meta["adapted"]["layers_changed"])
    tfl = (out / "model.tflite").read_bytes()
    io = np.load(DATA / "mobilenet_tiny.io.npz")
    ours = _infer(out, io["x"], tmp_path)
    theirs = tflm_run(tfl, io["x"])
    assert np.array_equal(ours, theirs)
    assert np.any(theirs != io["y"].reshape(theirs.shape))  # the training changed the outputs
    # only the weights and biases changed: same size, same quantization (rewritten in place)
    assert len(tfl) == (DATA / "mobilenet_tiny.tflite").stat().st_size
    # a second round trip starts from the adapted file
    again = save_model(tmp_path / "again", adapted, trainer.parameters(), model_dir=out)
    assert (again / "model.tflite").read_bytes() == tfl


def test_replaced_head_writes_the_model_without_tflite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = _import("mobilenet_tiny", tmp_path)
    graph = replace_head(load_model(model_dir), 2, seed=0)
    trainer = Trainer(compile_training(graph, "last"), seed=3)
    capsys.readouterr()
    out = save_model(tmp_path / "two", graph, trainer.parameters(), model_dir=model_dir)
    assert (out / "graph.json").exists() and not (out / "model.tflite").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.tflite not written" in err[0] and "replaced" in err[0]


def test_another_models_file_is_refused() -> None:
    with pytest.raises(TfliteRewriteError, match="op #"):
        rewrite_tflite(
            (DATA / "sensor_conv1d.tflite").read_bytes(), import_model(DATA / "mobilenet_tiny.tflite")
        )
    with pytest.raises(TfliteRewriteError, match="TFL3"):
        rewrite_tflite(b"not a flatbuffer", import_model(DATA / "mobilenet_tiny.tflite"))


@needs_tools
@pytest.mark.qemu
def test_emulate_save_model_writes_the_adapted_tflite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tinytrain emulate --save-model OUT` on QEMU (m4) with the device's parameters: OUT/model.tflite in
    TFLite Micro = `tinytrain infer --model OUT`, bit for bit, on the 32 stored inputs."""
    model_dir = _import("sensor_conv1d", tmp_path)
    out = tmp_path / "adapted"
    args = [
        "emulate",
        "--task",
        "sensor",
        "--model",
        str(model_dir),
        "--scheme",
        "full",
        "--dataset",
        "sensor",
    ]
    args += [
        "--board",
        "m4",
        "--steps",
        "8",
        "--lr",
        "0.05",
        "--max-test",
        "4",
        "--no-baseline",
        "--no-report",
    ]
    args += ["--no-save", "--json", "--save-model", str(out)]
    capsys.readouterr()
    assert cli_main(args) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["matched_reference"] is True
    io = np.load(DATA / "sensor_conv1d.io.npz")
    theirs = tflm_run((out / "model.tflite").read_bytes(), io["x"])
    assert np.array_equal(_infer(out, io["x"], tmp_path), theirs)
    assert np.any(theirs != io["y"].reshape(theirs.shape))


# ---- ONNX: the same round trip into the initializers, onnxruntime as the oracle ----------------------------
ONNX_GOOD = sorted(
    p.stem
    for p in DATA.glob("*.onnx")
    if not p.stem.startswith("bad_") and not p.stem.startswith("hardswish")
)


def _ort_int8(model: bytes, io: Any) -> np.ndarray:
    """onnxruntime's outputs on the stored int8 inputs, back on the int8 grid of the output quantizer."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    xf = ((io["x_q"].astype(np.float32) - io["x_zero_point"]) * io["x_scale"]).astype(np.float32)
    name = s.get_inputs()[0].name
    y = np.stack([s.run(None, {name: x[None]})[0].reshape(-1) for x in xf])
    q = np.rint(y / np.float32(io["y_scale"])) + int(io["y_zero_point"])
    assert np.allclose((q - int(io["y_zero_point"])) * np.float32(io["y_scale"]), y, rtol=0, atol=1e-6)
    return q.astype(np.int8)


@pytest.mark.parametrize("name", ONNX_GOOD)
def test_rewriting_the_imported_onnx_weights_gives_back_the_file(name: str) -> None:
    src = (DATA / f"{name}.onnx").read_bytes()
    assert rewrite_onnx(src, import_model(DATA / f"{name}.onnx")) == src


@pytest.mark.parametrize(
    ("name", "dataset"), [("mobilenet_tiny_qdq", "digits"), ("sensor_conv1d_qop", "sensor")]
)
def test_host_trained_onnx_round_trip(name: str, dataset: str, tmp_path: Path) -> None:
    model_dir = tmp_path / name
    assert cli_main(["import", str(DATA / f"{name}.onnx"), "--out", str(model_dir)]) == 0
    graph = load_model(model_dir)
    program = compile_training(graph, "full", CompileOptions(update_rule="nearest"))
    ds = load_dataset(dataset, seed=0, **model_input(graph))  # the model's own class count
    trainer = Trainer(program, seed=3)
    for x, y in zip(ds.train_x[:2], ds.train_y[:2], strict=True):
        trainer.train_step(x, int(y), 0.2)
    out = save_model(tmp_path / "adapted", graph, trainer.parameters(), model_dir=model_dir)
    io = np.load(DATA / f"{name}.io.npz")
    theirs = _ort_int8((out / "model.onnx").read_bytes(), io)
    assert np.array_equal(_infer(out, io["x_q"], tmp_path), theirs)
    assert np.any(theirs != io["y_q"].reshape(theirs.shape))
