"""The wider PyTorch importer: 1-D sensor nets, non-square kernels / strides / paddings, max and windowed
average pools, torch.cat, residual adds, Flatten + Linear on a map, Hardswish, Sigmoid, SiLU, squeeze-excite
Mul.

Tolerance (stated in docs/models.md), on held-out inputs quantized with the model's input parameters, the
int8 model (`tinytrain infer`'s reference: `run_forward`) against the float PyTorch model on the same inputs:

- top-1 agreement >= 97 %;
- every logit the int8 model does not saturate (-128 / 127: the calibrated range clamps it) within 8
  quantization steps of the float logit (`|(q - zero)·scale - float| <= 8·scale`, 3 % of the int8 range),
  10 steps for a net with Sigmoid gates (squeeze-excite, SiLU: TFLite's int8 Sigmoid output is fixed at
  1/256); mean error <= 1 step;
- at most 2 % of the logits saturated.

The nets are trained first (seeded, a few seconds on one thread) so their logits mean something.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinytrain import TinytrainError
from tinytrain.compiler import compile_training
from tinytrain.data import load_dataset
from tinytrain.data.sensor import basic_motions
from tinytrain.ir import Graph
from tinytrain.models import import_torch
from tinytrain.models.torch_import import input_quantization_from, quantize_input
from tinytrain.reference.inference import run_forward
from tinytrain.reference.training import Trainer

from .nets import Branchy2D, PlainCNN, SensorNet1D, SqueezeExcite, calibrate_bn

SENSOR_SCALE = 8.0  # BasicMotions' raw values reach +-35: the float model takes x / 8


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    d = load_dataset("digits", 16, seed=0)
    tr = torch.from_numpy(d.train_x.transpose(0, 3, 1, 2).astype(np.float32) / 127.5)
    te = (d.test_x.transpose(0, 3, 1, 2).astype(np.float32) / 127.5)[:300]
    return tr, torch.from_numpy(d.train_y), te, d.test_y[:300]


@pytest.fixture(scope="module")
def sensor() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    xtr, ytr, xte, yte = basic_motions()
    tr = torch.from_numpy((xtr.transpose(0, 2, 1) / SENSOR_SCALE).astype(np.float32))
    te = (xte.transpose(0, 2, 1) / SENSOR_SCALE).astype(np.float32)
    return tr, torch.from_numpy(ytr), te, yte


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float = 3e-3) -> nn.Module:
    torch.manual_seed(0)
    calibrate_bn(model, x[:256])
    opt = torch.optim.Adam(model.parameters(), lr)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 16):
            idx = perm[i : i + 16]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return calibrate_bn(model, x[:512])


def _hwc(x: np.ndarray) -> np.ndarray:
    """NCHW / NCW samples -> the device's HWC (H = 1 for NCW)."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x.transpose(0, 2, 1)[:, None]


def compare(model: nn.Module, g: Graph, x_float: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The tolerance's figures (module doc) on the inputs `x_float` (quantized first)."""
    q_in = g.meta["input_quantization"]
    xq = quantize_input(x_float, q_in["scale"], q_in["zero"])
    with torch.no_grad():
        fl = model(torch.from_numpy((xq.astype(np.float32) - q_in["zero"]) * np.float32(q_in["scale"])))
    fl = fl.double().numpy()
    out = g.tensors[g.output]
    q = np.stack([run_forward(g, xi)[g.output].reshape(-1) for xi in _hwc(xq)])
    dq = (q.astype(np.float64) - out.zero) * out.scale
    err = np.abs(dq - fl) / out.scale
    sat = (q == -128) | (q == 127)
    return {
        "agree": float((dq.argmax(1) == fl.argmax(1)).mean()),
        "max_err_lsb": float(err[~sat].max()),
        "mean_err_lsb": float(err.mean()),
        "saturated": float(sat.mean()),
        "acc_float": float((fl.argmax(1) == y).mean()),
        "acc_int8": float((dq.argmax(1) == y).mean()),
    }


def _assert_tolerance(m: dict[str, float], max_steps: float = 8.0) -> None:
    assert m["agree"] >= 0.97, m
    assert m["max_err_lsb"] <= max_steps and m["mean_err_lsb"] <= 1.0, m
    assert m["saturated"] <= 0.02, m


def test_sensor_net_1d(sensor: tuple[torch.Tensor, ...]) -> None:
    tr, ytr, te, yte = sensor
    torch.manual_seed(0)
    model = _train(SensorNet1D(4), tr, ytr, 30)
    s, z = input_quantization_from(tr)
    g = import_torch(model, tr, input_scale=s, input_zero=z, name="sensor")
    assert g.numerics == "tflm" and g.meta["source_layout"] == "NCW"
    assert g.meta["source_input_shape"] == [1, 6, 100] and g.tensors["input"].shape == (6, 1, 100)
    assert [op.kind for op in g.ops] == [
        "qconv",
        "qpool",
        "qconv",
        "qpool",
        "qconv",
        "qhardswish",
        "qmean",
        "qconv",
    ]
    c0 = g.ops[0]
    assert (c0.attrs["kernel_h"], c0.attrs["kernel_w"], c0.attrs["pad_left"], c0.attrs["pad_top"]) == (
        1,
        5,
        2,
        0,
    )
    dw = g.ops[4]
    assert dw.attrs["depthwise"] and (dw.attrs["pad_left"], dw.attrs["pad_right"]) == (2, 2)
    for pool in (g.ops[1], g.ops[3]):  # pools keep their input's quantization (TFLite Micro requires it)
        a, b = g.tensors[pool.inputs[0]], g.tensors[pool.output]
        assert (a.scale, a.zero) == (b.scale, b.zero)
    assert g.ops[1].attrs["mode"] == "max" and g.ops[3].attrs["mode"] == "avg"
    assert any("Dropout" in d for d in g.meta["dropped"])
    m = compare(model, g, te, yte)
    print("sensor", m)
    assert m["acc_float"] >= 0.8, m
    _assert_tolerance(m)


def test_branchy_2d(digits: tuple[torch.Tensor, ...]) -> None:
    tr, ytr, te, yte = digits
    torch.manual_seed(0)
    model = _train(Branchy2D(10), tr[:640], ytr[:640], 2)
    g = import_torch(model, tr[:512], name="branchy")
    kinds = [op.kind for op in g.ops]
    assert kinds == ["qconv", "qpool", "qconv", "qconv", "qconcat", "qconv", "qadd", "qpool", "qconv"], kinds
    stem = g.op("stem.0")
    a = stem.attrs
    assert (a["kernel_h"], a["kernel_w"], a["stride_h"], a["stride_w"], a["pad_top"], a["pad_left"]) == (
        3,
        5,
        1,
        2,
        1,
        2,
    )
    assert g.tensors[stem.output].shape == (12, 16, 8) and a["act_min"] == g.tensors[stem.output].zero
    cat = next(op for op in g.ops if op.kind == "qconcat")
    qs = {(g.tensors[t].scale, g.tensors[t].zero) for t in [*cat.inputs, cat.output]}
    assert len(qs) == 1 and cat.attrs["axis"] == 0  # one quantization: the concatenation is a copy
    fc = g.ops[-1]
    assert (fc.attrs["kernel_h"], fc.attrs["kernel_w"]) == (4, 2) and g.tensors[fc.inputs[0]].shape == (
        16,
        4,
        2,
    )
    m = compare(model, g, te, yte)
    print("branchy", m)
    assert m["acc_float"] >= 0.8, m
    _assert_tolerance(m)


def test_squeeze_excite_hardswish_silu(digits: tuple[torch.Tensor, ...]) -> None:
    tr, ytr, te, yte = digits
    torch.manual_seed(0)
    model = _train(SqueezeExcite(10), tr[:640], ytr[:640], 6, lr=1e-2)
    g = import_torch(model, tr[:256], name="se")
    kinds = [op.kind for op in g.ops]
    assert kinds.count("qlogistic") == 2 and kinds.count("qmul") == 2 and "qhardswish" in kinds, kinds
    gate = next(op for op in g.ops if op.kind == "qmul")
    assert g.tensors[gate.inputs[1]].shape == (16, 1, 1)  # the per-channel gate second
    assert all(
        (g.tensors[op.output].scale, g.tensors[op.output].zero) == (1 / 256, -128)
        for op in g.ops
        if op.kind == "qlogistic"
    )
    m = compare(model, g, te, yte)
    print("squeeze-excite", m)
    assert m["acc_float"] >= 0.6, m
    _assert_tolerance(m, max_steps=10.0)


def test_numerics_choice(digits: tuple[torch.Tensor, ...]) -> None:
    tr = digits[0]
    plain = calibrate_bn(PlainCNN(3), tr[:64])
    assert import_torch(plain, tr[:32]).numerics == "float-m"  # the zoo's ops: fast kernels, any resolution
    g = import_torch(plain, tr[:32], numerics="tflm")
    assert g.numerics == "tflm" and {op.kind for op in g.ops} == {"qconv", "qmean"}
    branchy = calibrate_bn(Branchy2D(3), tr[:64])
    auto = import_torch(branchy, tr[:32])
    assert auto.numerics == "tflm" and "non-square" in auto.meta["numerics_reason"]
    with pytest.raises(TinytrainError, match="numerics float-m .* cannot express it: layer 'stem.0'"):
        import_torch(branchy, tr[:32], numerics="float-m")
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 16), nn.ReLU(), nn.Linear(16, 10))
    g = import_torch(mlp, tr[:32])
    assert g.numerics == "tflm" and "Linear on a flattened 16x16 map" in g.meta["numerics_reason"]
    assert g.ops[0].params["weight"].shape == (16, 3, 16, 16) and g.ops[0].attrs["act_min"] == -128


class _Net(nn.Module):
    def __init__(self, body: nn.Module, c: int = 4, one_d: bool = False) -> None:
        super().__init__()
        self.body = body
        self.pool = nn.AdaptiveAvgPool1d(1) if one_d else nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.body(x)), 1))


class _CatBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.c(x), self.c(x)], 0)
        return y.mean((2, 3))


@pytest.mark.parametrize(
    "net, match",
    [
        (_Net(nn.Conv2d(3, 4, 3, dilation=2)), r"module Conv2d at fx node 'body' .*dilation \(2, 2\)"),
        (_Net(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3, groups=2))), r"grouped conv \(groups=2"),
        (_Net(nn.Sequential(nn.Conv2d(3, 4, 1), nn.MaxPool2d(3, ceil_mode=True))), r"ceil_mode=True"),
        (
            _Net(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.BatchNorm2d(4))),
            r"BatchNorm2d after the activation of 'body.0'; put it between",
        ),
        (_Net(nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 1))), r"its input is the model input"),
        (_Net(nn.Sequential(nn.Conv2d(3, 4, 1), nn.LeakyReLU())), r"module LeakyReLU at fx node 'body_1'"),
        (
            _Net(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(3))),
            r"output 3x3 does not divide the input 8x8",
        ),
        (_CatBatch(), r"concatenation along dim 0"),
    ],
)
def test_unmappable_layers_are_named(net: nn.Module, match: str | None) -> None:
    x = np.zeros((2, 3, 10, 10), np.int8)
    if match is None:
        assert import_torch(net, x).num_classes == 2
        return
    with pytest.raises(TinytrainError, match=match) as e:
        import_torch(net, x)
    assert "\n" not in str(e.value)


def test_imported_1d_net_trains_on_host(sensor: tuple[torch.Tensor, ...]) -> None:
    tr, ytr, _, _ = sensor
    torch.manual_seed(0)
    model = calibrate_bn(SensorNet1D(4), tr)
    s, z = input_quantization_from(tr)
    g = import_torch(model, tr, input_scale=s, input_zero=z)
    t = Trainer(compile_training(g, "full"), seed=1)
    xs = list(_hwc(quantize_input(tr[:8].numpy(), s, z)))
    ys = [int(v) for v in ytr[:8]]
    first = [t.train_step(x, y, 0.02) for x, y in zip(xs, ys, strict=True)]
    for _ in range(4):
        last = [t.train_step(x, y, 0.02) for x, y in zip(xs, ys, strict=True)]
    assert sum(last) < sum(first)


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="QEMU missing")
@pytest.mark.parametrize(("net", "board"), [(Branchy2D, "m4"), (SqueezeExcite, "m7")])
def test_imported_torch_model_trains_in_qemu(
    net: type[nn.Module], board: str, digits: tuple[torch.Tensor, ...], tmp_path: Path
) -> None:
    """PyTorch nets with non-square kernels, max pool, cat and a residual add (m4), and with Hardswish, a
    squeeze-excite gate and SiLU (m7), train in QEMU, host match."""
    from tinytrain.emulate import EmulateConfig, emulate
    from tinytrain.models.importer import write_model_dir

    tr, ytr = digits[0], digits[1]
    torch.manual_seed(0)
    model = _train(net(10), tr[:320], ytr[:320], 1)
    g = import_torch(model, tr[:128], name=net.__name__)
    d = write_model_dir(g, tmp_path / "net")
    cfg = EmulateConfig(
        model=str(d),
        scheme="full",
        dataset="digits",
        resolution=16,
        board=board,
        steps=3,
        lr=0.01,
        backend="qemu",
        max_test=4,
        build_dir=str(tmp_path / "build"),
        save_record=False,
    )
    rec = emulate(cfg).record
    assert rec["matched_reference"], {k: v for k, v in rec["match"].items() if k != "reference_losses"}
    assert rec["losses"] == rec["match"]["reference_losses"]


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="QEMU missing")
def test_imported_1d_torch_model_trains_in_qemu(sensor: tuple[torch.Tensor, ...], tmp_path: Path) -> None:
    """The 1-D sensor net (Conv1d, BatchNorm1d, MaxPool1d, AvgPool1d, depthwise, Hardswish) trains on m7 on
    its own samples (an .npz in the source layout NCW: `layout="chw"`), host match."""
    from tinytrain.emulate import EmulateConfig, emulate
    from tinytrain.models.importer import write_model_dir

    tr, ytr = sensor[0], sensor[1]
    torch.manual_seed(0)
    model = _train(SensorNet1D(4), tr, ytr, 5)
    s, z = input_quantization_from(tr)
    g = import_torch(model, tr, input_scale=s, input_zero=z, name="sensor")
    d = write_model_dir(g, tmp_path / "sensor")
    np.savez(tmp_path / "data.npz", x=quantize_input(tr.numpy(), s, z), y=ytr.numpy())
    cfg = EmulateConfig(
        model=str(d),
        scheme="full",
        dataset=str(tmp_path / "data.npz"),
        layout="chw",
        resolution=g.resolution,
        board="m7",
        steps=3,
        lr=0.01,
        backend="qemu",
        max_test=4,
        build_dir=str(tmp_path / "build"),
        save_record=False,
    )
    rec = emulate(cfg).record
    assert rec["matched_reference"], {k: v for k, v in rec["match"].items() if k != "reference_losses"}
    assert rec["losses"] == rec["match"]["reference_losses"]


class _Layer(nn.Module):
    """`layer` between the input and a Linear on its flattened output: the layer's int8 output is compared
    element by element with the float one (the geometry: kernel, stride, padding splits)."""

    def __init__(self, layer: nn.Module, features: int) -> None:
        super().__init__()
        self.layer = layer
        self.fc = nn.Linear(features, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.layer(x), 1))


GEOMETRIES = [
    ("conv2d 3x5 s(1,2) p(1,2)", nn.Conv2d(4, 6, (3, 5), (1, 2), (1, 2)), (4, 9, 11)),
    ("conv2d 4x4 same", nn.Conv2d(4, 6, 4, padding="same"), (4, 9, 11)),
    ("conv2d 2x3 s(2,1) valid", nn.Conv2d(4, 6, (2, 3), (2, 1)), (4, 9, 11)),
    ("depthwise x2 3x3 s2 p1", nn.Conv2d(4, 8, 3, 2, 1, groups=4), (4, 9, 11)),
    ("conv1d k4 same", nn.Conv1d(4, 6, 4, padding="same"), (4, 23)),
    ("conv1d k5 s3 p1", nn.Conv1d(4, 6, 5, 3, 1), (4, 23)),
    ("maxpool2d 3 s2 p1", nn.MaxPool2d(3, 2, 1), (4, 9, 11)),
    ("avgpool2d (2,3) s(2,1)", nn.AvgPool2d((2, 3), (2, 1)), (4, 9, 11)),
    ("avgpool2d 3 s2 p1 count_include_pad", nn.AvgPool2d(3, 2, 1), (4, 9, 11)),
    ("avgpool2d 3 s2 p1 no count_include_pad", nn.AvgPool2d(3, 2, 1, count_include_pad=False), (4, 9, 11)),
    ("maxpool1d 3 s2 p1", nn.MaxPool1d(3, 2, 1), (4, 23)),
    ("avgpool1d 4 s2", nn.AvgPool1d(4, 2), (4, 23)),
    ("adaptive max 2d (3, 1)", nn.AdaptiveMaxPool2d((3, 1)), (4, 9, 11)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # torch's own note
@pytest.mark.parametrize("label, layer, shape", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_layer_geometry_elementwise(label: str, layer: nn.Module, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        feats = layer(torch.zeros(1, *shape)).numel()
    model = _Layer(layer, feats).eval()
    x = torch.rand(64, *shape) * 2 - 1
    g = import_torch(model, x)
    op = g.ops[0]
    out = g.tensors[op.output]
    xq = quantize_input(x[:16].numpy())
    with torch.no_grad():
        fl = layer(torch.from_numpy(xq.astype(np.float32) / np.float32(127.5))).numpy()
    fl_chw = fl if fl.ndim == 4 else fl[:, :, None, :]
    got = np.stack([run_forward(g, xi)[op.output] for xi in _hwc(xq)]).transpose(0, 3, 1, 2)  # HWC -> CHW
    assert got.shape == fl_chw.shape, (got.shape, fl_chw.shape)
    err = np.abs((got.astype(np.float64) - out.zero) * out.scale - fl_chw) / out.scale
    print(label, op.kind, float(err.max()), float(err.mean()))
    assert err.max() <= 1.5 and err.mean() <= 0.3, (label, float(err.max()), float(err.mean()))
