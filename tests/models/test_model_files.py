"""The committed test models (tests/models/data, made by scripts/make_test_models.py) are what the
README says: each loads in its reference runtime (TFLite Micro's host interpreter, onnxruntime),
has the documented ops, shapes, dtypes and quantization, and reproduces its oracle file NAME.io.npz
exactly. Each bad file has exactly the defect the importer's error tests rely on."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
MANIFEST: dict[str, Any] = json.loads((DATA / "manifest.json").read_text())["models"]


def _names(fmt: str, bad: bool) -> list[str]:
    return [n for n, e in MANIFEST.items() if e["format"] == fmt and bool(e.get("bad")) == bad]


def _tflm() -> Any:
    return pytest.importorskip("tflite_micro", reason="tflite-micro is the oracle for .tflite models").runtime


@cache
def _model_t(file: str) -> Any:
    """The flatbuffer object tree of a .tflite (tflite_micro ships the schema)."""
    return _tflm().convert_bytearray_to_object(bytearray((DATA / file).read_bytes()))


def _op_names(model: Any) -> list[str]:
    rt = _tflm()
    by_code = {v: k for k, v in vars(rt.schema_fb.BuiltinOperator).items() if not k.startswith("_")}
    codes = [by_code[rt.get_builtin_code_from_operator_code(c)] for c in model.operatorCodes]
    return [codes[op.opcodeIndex] for op in model.subgraphs[0].operators]


def test_every_file_is_documented() -> None:
    files = {p.name for p in DATA.iterdir() if p.is_file()} - {"manifest.json", "README.md"}
    listed = {e["file"] for e in MANIFEST.values()} | {
        e["oracle"] for e in MANIFEST.values() if "oracle" in e
    }
    assert files == listed
    readme = (DATA / "README.md").read_text()
    for name in sorted(files):
        if not name.endswith(".npz"):
            assert f"`{name}`" in readme, name
    assert sum((DATA / f).stat().st_size for f in files) < 2 * 1024 * 1024


def test_every_good_model_has_an_oracle() -> None:
    for name, e in MANIFEST.items():
        if not e.get("bad"):
            assert e.get("oracle") == f"{name}.io.npz", name


def test_the_realistic_nets_are_there() -> None:
    ops = set(MANIFEST["mobilenet_tiny"]["ops"])
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"} <= ops
    assert MANIFEST["mobilenet_tiny"]["inputs"][0]["shape"] == [1, 32, 32, 3]
    ops1 = MANIFEST["sensor_conv1d"]["ops"]
    assert ops1[:3] == ["EXPAND_DIMS", "CONV_2D", "RESHAPE"]  # how the converter writes a Conv1D
    assert MANIFEST["sensor_conv1d"]["inputs"][0]["shape"] == [1, 100, 6]


@pytest.mark.parametrize("name", _names("tflite", bad=False))
def test_tflite_model_reproduces_its_oracle_in_tflm(name: str) -> None:
    rt = _tflm()
    entry = MANIFEST[name]
    path = DATA / entry["file"]
    model = _model_t(entry["file"])
    assert _op_names(model) == entry["ops"]
    interp = rt.Interpreter.from_file(str(path), arena_size=1 << 20)
    for details, doc in (
        (interp.get_input_details(0), entry["inputs"][0]),
        (interp.get_output_details(0), entry["outputs"][0]),
    ):
        assert list(details["shape"]) == doc["shape"]
        assert np.dtype(details["dtype"]).name == doc["dtype"]
        q = details["quantization_parameters"]
        np.testing.assert_array_equal(q["scales"], np.float32(doc["scale"]))
        np.testing.assert_array_equal(q["zero_points"], doc["zero_point"])
    if entry["inputs"][0]["dtype"] == "int8":
        # full-integer: every tensor int8 but the biases (int32) and shape operands (int32)
        types = {t.type for t in model.subgraphs[0].tensors}
        assert types <= {rt.schema_fb.TensorType.INT8, rt.schema_fb.TensorType.INT32}, types
    oracle = np.load(DATA / entry["oracle"])
    xs, ys = oracle["x"], oracle["y"]
    assert len(xs) == len(ys) >= 32
    assert xs.shape[1:] == tuple(entry["inputs"][0]["shape"][1:])
    assert xs.dtype == np.dtype(entry["inputs"][0]["dtype"])
    assert ys.shape[1:] == tuple(entry["outputs"][0]["shape"][1:])
    assert ys.dtype == np.dtype(entry["outputs"][0]["dtype"])
    got = []
    for x in xs:
        interp.set_input(x[None], 0)
        interp.invoke()
        got.append(np.array(interp.get_output(0))[0])
    np.testing.assert_array_equal(np.stack(got), ys)
    assert len(np.unique(ys.reshape(len(ys), -1), axis=0)) > 1, "the outputs do not depend on the input"


def _tensor_types(name: str) -> set[int]:
    return {t.type for t in _model_t(MANIFEST[name]["file"]).subgraphs[0].tensors}


def test_bad_tflite_files_have_their_defect() -> None:
    rt = _tflm()
    tt = rt.schema_fb.TensorType
    assert _names("tflite", bad=True) == [
        "bad_float",
        "bad_dynamic_range",
        "bad_int16x8",
        "bad_unsupported_op",
        "bad_fused_relu_n1_to_1",
        "bad_dilated",
        "bad_dynamic_shape",
        "bad_two_inputs",
        "bad_two_outputs",
        "bad_truncated",
        "bad_not_a_model",
    ]
    assert _tensor_types("bad_float") == {tt.FLOAT32}
    assert {tt.FLOAT32, tt.INT8} <= _tensor_types("bad_dynamic_range")
    assert tt.INT16 in _tensor_types("bad_int16x8")
    assert _op_names(_model_t("bad_unsupported_op.tflite")) == ["CONV_2D", "TANH"]
    fused = _model_t("bad_fused_relu_n1_to_1.tflite").subgraphs[0].operators[0].builtinOptions
    assert fused.fusedActivationFunction == rt.schema_fb.ActivationFunctionType.RELU_N1_TO_1
    conv = _model_t("bad_dilated.tflite").subgraphs[0].operators[0]
    assert _op_names(_model_t("bad_dilated.tflite")) == ["CONV_2D"]
    assert (conv.builtinOptions.dilationHFactor, conv.builtinOptions.dilationWFactor) == (2, 2)
    sig = _model_t("bad_dynamic_shape.tflite").subgraphs[0]
    assert list(sig.tensors[sig.inputs[0]].shapeSignature) == [-1, -1, -1, 3]
    assert len(_model_t("bad_two_inputs.tflite").subgraphs[0].inputs) == 2
    assert len(_model_t("bad_two_outputs.tflite").subgraphs[0].outputs) == 2
    whole = (DATA / "conv2d_3x3_same_s1_relu.tflite").read_bytes()
    cut = (DATA / "bad_truncated.tflite").read_bytes()
    assert whole.startswith(cut) and len(cut) == len(whole) // 2
    assert whole[4:8] == b"TFL3" and (DATA / "bad_not_a_model.tflite").read_bytes()[4:8] != b"TFL3"


def _ort() -> Any:
    return pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle for .onnx models")


def _onnx() -> Any:
    return pytest.importorskip("onnx", reason="onnx reads the graph of the .onnx test models")


def _onnx_ops(graph: Any) -> list[str]:
    return [n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}" for n in graph.node]


@pytest.mark.parametrize("name", _names("onnx", bad=False))
def test_onnx_model_reproduces_its_oracle_in_onnxruntime(name: str) -> None:
    ort, onnx = _ort(), _onnx()
    entry = MANIFEST[name]
    path = DATA / entry["file"]
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert _onnx_ops(model.graph) == entry["ops"]
    if name.endswith("_qop"):
        assert any(op.startswith("QLinear") or op.startswith("com.microsoft.Q") for op in entry["ops"])
    else:
        assert {"QuantizeLinear", "DequantizeLinear"} <= set(entry["ops"])
    weights = [t for t in model.graph.initializer if len(t.dims) >= 2]
    assert weights and all(t.data_type == onnx.TensorProto.INT8 for t in weights)  # int8 weights only
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert inp.shape == entry["inputs"][0]["shape"] and inp.type == "tensor(float)"
    assert out.shape == entry["outputs"][0]["shape"] and out.type == "tensor(float)"
    oracle = np.load(DATA / entry["oracle"])
    x_q, y_q = oracle["x_q"], oracle["y_q"]
    assert x_q.dtype == y_q.dtype == np.int8 and len(x_q) == len(y_q) >= 32
    assert x_q.shape[1:] == tuple(entry["inputs"][0]["shape"][1:])
    assert y_q.shape[1:] == tuple(entry["outputs"][0]["shape"][1:])
    x = ((x_q.astype(np.float32) - oracle["x_zero_point"]) * oracle["x_scale"]).astype(np.float32)
    y = np.stack([sess.run(None, {inp.name: xi[None]})[0][0] for xi in x])
    expect = ((y_q.astype(np.float32) - oracle["y_zero_point"]) * oracle["y_scale"]).astype(np.float32)
    np.testing.assert_array_equal(y, expect)
    assert len(np.unique(y_q.reshape(len(y_q), -1), axis=0)) > 1, "the outputs do not depend on the input"


def test_bad_onnx_files_have_their_defect() -> None:
    onnx = _onnx()
    assert _names("onnx", bad=True) == ["bad_float_onnx", "bad_truncated_onnx", "bad_not_a_model_onnx"]
    ops = _onnx_ops(onnx.load(str(DATA / "bad_float.onnx")).graph)
    assert ops == MANIFEST["bad_float_onnx"]["ops"] and not any(
        "Quant" in op or "QLinear" in op for op in ops
    )
    whole = (DATA / "conv2d_3x3_s2_qop.onnx").read_bytes()
    cut = (DATA / "bad_truncated.onnx").read_bytes()
    assert whole.startswith(cut) and len(cut) == len(whole) // 2
    with pytest.raises(Exception):  # noqa: B017 (protobuf raises its own DecodeError)
        onnx.load(str(DATA / "bad_not_a_model.onnx"))
