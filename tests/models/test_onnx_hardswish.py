"""ONNX HardSwish (HardSigmoid + Mul / QLinearMul, as torch.onnx and quantize_static write it): the int8 table
of `qhardswish` mode "ort" equals onnxruntime on every int8 input, over random scales, in both forms; the
committed models import and infer bit-exactly (tests/models/test_imported_onnx.py); a gradient flows
through it and the generated C (host-native) matches the host reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.ir import Op, Tensor
from tinytrain.models import import_model
from tinytrain.ops.hardswish import ort_table

DATA = Path(__file__).parent / "data"
f32 = np.float32


def _model(form: str, xs: float, xz: int, hs: float, hz: int, ys: float, yz: int) -> bytes:
    """X (float, on the input grid) -> Q -> DQ -> HardSigmoid -> Q -> (QLinearMul | DQ, Mul, Q) -> DQ."""
    from onnx import TensorProto, helper, numpy_helper

    consts = [("xs", xs, f32), ("xz", xz, np.int8), ("hs", hs, f32), ("hz", hz, np.int8)]
    consts += [("ys", ys, f32), ("yz", yz, np.int8)]
    inits = [numpy_helper.from_array(np.array(v, dt), n) for n, v, dt in consts]
    nodes = [
        helper.make_node("QuantizeLinear", ["X", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"]),
        helper.make_node("HardSigmoid", ["xf"], ["hf"], alpha=1.0 / 6.0, beta=0.5),
        helper.make_node("QuantizeLinear", ["hf", "hs", "hz"], ["hq"]),
    ]
    if form == "qop":
        ins = ["xq", "xs", "xz", "hq", "hs", "hz", "ys", "yz"]
        nodes.append(helper.make_node("QLinearMul", ins, ["yq"], domain="com.microsoft"))
    else:
        nodes += [
            helper.make_node("DequantizeLinear", ["hq", "hs", "hz"], ["hf2"]),
            helper.make_node("Mul", ["xf", "hf2"], ["yf"]),
            helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["yq"]),
        ]
    nodes.append(helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["Y"]))
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 256, 1, 1]) for n in ("X", "Y")]
    g = helper.make_graph(nodes, "hardswish", io[:1], io[1:], inits)
    m = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    m.ir_version = 8
    return m.SerializeToString()


def _ort_outputs(form: str, xs: float, xz: int, hs: float, hz: int, ys: float, yz: int) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(_model(form, xs, xz, hs, hz, ys, yz), so, providers=["CPUExecutionProvider"])
    x = ((np.arange(-128, 128).astype(f32) - f32(xz)) * f32(xs)).astype(f32).reshape(1, 256, 1, 1)
    y = sess.run(None, {"X": x})[0].reshape(-1)
    q = np.rint(y / f32(ys)).astype(np.int64) + yz
    assert np.array_equal((q - yz).astype(f32) * f32(ys), y)  # the output is on the DequantizeLinear's grid
    return q


#: the committed models' scales, and one where the two forms differ (QLinearMul's SSE2 kernel rounds
#: f32(p * ratio) + y_zero; the float Mul divides by y_scale): -47 gives 106 (qop) and 105 (qdq)
CASES = [
    (0.022858622, -1, 0.0038768572, -128, 0.012835948, -99),
    (0.05215010792016983, -63, 0.003115687984973192, -77, 0.02466726116836071, 84),
]


@pytest.mark.parametrize("form", ["qop", "qdq"])
def test_table_equals_onnxruntime_on_every_int8_input(form: str) -> None:
    rng = np.random.default_rng(5)
    cases = list(CASES)
    for _ in range(40):
        cases.append(
            (
                float(f32(rng.uniform(0.002, 0.08))),
                int(rng.integers(-128, 128)),
                float(f32(rng.uniform(0.5, 1.5) / 255)),
                int(rng.integers(-128, 128)),
                float(f32(rng.uniform(0.0005, 0.06))),
                int(rng.integers(-128, 128)),
            )
        )
    for c in cases:
        ours = ort_table(*c, 1.0 / 6.0, 0.5, form).astype(np.int64)
        assert np.array_equal(ours, _ort_outputs(form, *c)), (form, c)
    # the distinguishing case really distinguishes the forms
    a, b = (ort_table(*CASES[1], 1.0 / 6.0, 0.5, f) for f in ("qop", "qdq"))
    assert a[-47 + 128] == 106 and b[-47 + 128] == 105


@pytest.mark.parametrize("form", ["qop", "qdq"])
def test_import_maps_to_one_qhardswish(form: str) -> None:
    g = import_model(DATA / f"hardswish_{form}.onnx")
    assert [op.kind for op in g.ops] == ["qconv", "qhardswish"]
    hs = g.ops[1]
    assert hs.attrs["mode"] == "ort" and hs.attrs["form"] == form
    assert g.meta["source_ops"]["HardSigmoid"] == 1


def test_a_bare_hardsigmoid_is_refused_by_name(tmp_path: Path) -> None:
    import onnx

    m = onnx.load(DATA / "hardswish_qop.onnx")
    for n in m.graph.node:
        if n.op_type == "HardSigmoid":
            for a in n.attribute:
                if a.name == "alpha":
                    a.f = 0.2
    onnx.save(m, tmp_path / "hsig.onnx")
    with pytest.raises(TinytrainError, match=r"HardSigmoid.*not part of a HardSwish") as exc:
        import_model(tmp_path / "hsig.onnx")
    assert "hsig.onnx" in str(exc.value) and "\n" not in str(exc.value)


def _classifier(form: str):  # noqa: ANN202
    """The committed model + a fully connected classifier (qconv 8x8, mode ort): conv -> hardswish -> 3
    logits."""
    from tinytrain.ops.conv import ort_scales

    g = import_model(DATA / f"hardswish_{form}.onnx")
    t = g.tensors.pop("logits")
    g.tensors["hs.out"] = Tensor("hs.out", t.shape, t.scale, t.zero)
    g.ops[-1].output = "hs.out"
    c, h, w = t.shape
    rng = np.random.default_rng(3)
    w_scales = np.full(3, 0.004, np.float32)
    ys = 0.05
    g.tensors["logits"] = Tensor("logits", (3, 1, 1), ys, 0)
    attrs = {
        "kernel_h": h, "kernel_w": w, "stride_h": 1, "stride_w": 1, "pad_top": 0, "pad_bottom": 0,
        "pad_left": 0, "pad_right": 0, "depthwise": False, "x_scale": t.scale, "x_zero": t.zero,
        "act_min": -128, "act_max": 127, "activation": "NONE", "requant": "float",
    }  # fmt: skip
    params = {
        "weight": rng.integers(-60, 61, (3, c, h, w)).astype(np.int8),
        "bias": rng.integers(-500, 500, 3).astype(np.int32),
        "w_scales": w_scales,
        "scale": ort_scales(t.scale, w_scales, ys),
    }
    g.ops.append(Op("fc", "qconv", ["hs.out"], "logits", attrs, params))
    g.validate()
    return g


@pytest.mark.parametrize("form", ["qop", "qdq"])
def test_trains_through_hardswish_on_host(form: str) -> None:
    from tinytrain.compiler import compile_training
    from tinytrain.reference.training import Trainer

    g = _classifier(form)
    t = Trainer(compile_training(g, "full"), seed=1)
    xs = list(np.load(DATA / f"hardswish_{form}.io.npz")["x_q"][:4].transpose(0, 2, 3, 1))
    first = [t.train_step(x, i % 3, 0.05) for i, x in enumerate(xs)]
    for _ in range(4):
        last = [t.train_step(x, i % 3, 0.05) for i, x in enumerate(xs)]
    assert sum(last) < sum(first)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")
def test_hardswish_ort_host_native_matches_reference(tmp_path: Path) -> None:
    from tinytrain.emulate import EmulateConfig, emulate
    from tinytrain.models.importer import write_model_dir

    d = write_model_dir(_classifier("qop"), tmp_path / "m")
    x = np.load(DATA / "hardswish_qop.io.npz")["x_q"]
    np.savez(tmp_path / "data.npz", x=x, y=np.arange(len(x)) % 3)
    cfg = EmulateConfig(
        model=str(d), scheme="full", dataset=str(tmp_path / "data.npz"), layout="chw", resolution=8,
        board="m7", steps=4, lr=0.01, backend="host", max_test=4, build_dir=str(tmp_path / "b"),
        save_record=False,
    )  # fmt: skip
    rec = emulate(cfg).record
    assert rec["matched_reference"], {k: v for k, v in rec["match"].items() if k != "reference_losses"}
    assert rec["losses"] == rec["match"]["reference_losses"] and len(rec["losses"]) == 4


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="QEMU missing")
@pytest.mark.parametrize("board", ["m4", "m7"])
def test_hardswish_ort_trains_in_qemu(board: str, tmp_path: Path) -> None:
    """The QDQ form (float Mul rounding) through the table in flash and the hard-swish gradient, in QEMU."""
    from tinytrain.emulate import EmulateConfig, emulate
    from tinytrain.models.importer import write_model_dir

    d = write_model_dir(_classifier("qdq"), tmp_path / "m")
    x = np.load(DATA / "hardswish_qdq.io.npz")["x_q"]
    np.savez(tmp_path / "data.npz", x=x, y=np.arange(len(x)) % 3)
    cfg = EmulateConfig(
        model=str(d), scheme="full", dataset=str(tmp_path / "data.npz"), layout="chw", resolution=8,
        board=board, steps=3, lr=0.01, backend="qemu", max_test=4, build_dir=str(tmp_path / "b"),
        save_record=False,
    )  # fmt: skip
    rec = emulate(cfg).record
    assert rec["matched_reference"], {k: v for k, v in rec["match"].items() if k != "reference_losses"}
    assert rec["losses"] == rec["match"]["reference_losses"] and len(rec["losses"]) == 3
