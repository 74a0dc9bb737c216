"""PyTorch float model -> int8 IR.

Metric (stated in docs/models.md): the imported graph runs in the integer reference on the digits test
split (its first 300 images, 16x16); its int8 logits, dequantized `(z - zero)·scale`, are compared with
the float model's logits on the same (int8-representable) inputs:

- cosine similarity of the logit vectors: mean >= 0.99 and 5th percentile >= 0.97;
- top-1 agreement >= 95 %;
- int8 top-1 accuracy within 3 points of the float model's.

The nets are trained for a few epochs first (seeded; > 60 % float accuracy), so their logits mean something.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinytrain import TinytrainError
from tinytrain.data import load_dataset
from tinytrain.ir import Graph
from tinytrain.models import import_torch, load_model, quantize_input
from tinytrain.reference import infer

from .nets import PlainCNN, PoolCNN, TinyMobileNetV2, WithGelu, WithTanh, calibrate_bn

RES = 16


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # tiny nets: one thread is faster, and much faster when other jobs share the CPU
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_dataset("digits", RES, seed=0)
    tr = np.ascontiguousarray(d.train_x.transpose(0, 3, 1, 2))
    te = np.ascontiguousarray(d.test_x.transpose(0, 3, 1, 2))
    return tr, d.train_y, te, d.test_y


def _real(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32) / 127.5)


def _train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 2) -> nn.Module:
    torch.manual_seed(0)
    xs, ys = _real(x), torch.from_numpy(y)
    calibrate_bn(model, xs[:256])
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xs), generator=gen)
        for i in range(0, len(xs), 32):
            idx = perm[i : i + 32]
            loss = F.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return calibrate_bn(model, xs[:512])  # running statistics of the final weights


def _compare(model: nn.Module, g: Graph, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    with torch.no_grad():
        fl = model(_real(x)).double().numpy()
    out = g.tensors[g.output]
    q = np.stack([infer(g, xi) for xi in x]).astype(np.float64)
    dq = (q - out.zero) * out.scale
    cos = (dq * fl).sum(1) / (np.linalg.norm(dq, axis=1) * np.linalg.norm(fl, axis=1) + 1e-12)
    return {
        "cos_mean": float(cos.mean()),
        "cos_p5": float(np.percentile(cos, 5)),
        "agree": float((dq.argmax(1) == fl.argmax(1)).mean()),
        "acc_float": float((fl.argmax(1) == y).mean()),
        "acc_int8": float((dq.argmax(1) == y).mean()),
    }


@pytest.mark.parametrize("net, n_train, epochs", [(TinyMobileNetV2, 640, 2), (PlainCNN, 1257, 3)])
def test_imported_int8_agrees_with_float(
    net: type[nn.Module], n_train: int, epochs: int, digits: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    tr, ytr, te, yte = digits
    torch.manual_seed(0)  # the init too: results must not depend on which tests ran before
    model = _train(net(10), tr[:n_train], ytr[:n_train], epochs)
    g = import_torch(model, tr[:128], name=net.__name__)
    m = _compare(model, g, te[:300], yte[:300])
    print(net.__name__, m)
    assert m["acc_float"] > 0.6, m  # the net learned something, so agreement means something
    assert m["cos_mean"] >= 0.99 and m["cos_p5"] >= 0.97, m
    assert m["agree"] >= 0.95, m
    assert m["acc_int8"] >= m["acc_float"] - 0.03, m
    # the imported graph saves and loads like any IR, and runs at another resolution
    g.save(tmp_path / "imported")
    h = load_model(tmp_path / "imported", 48)
    assert h.resolution == 48 and infer(h, np.zeros((3, 48, 48), np.int8)).shape == (10,)


def test_mobilenet_structure(digits: tuple[np.ndarray, ...]) -> None:
    tr = digits[0]
    model = calibrate_bn(TinyMobileNetV2(10), _real(tr[:128]))
    g = import_torch(model, tr[:64])
    kinds = [op.kind for op in g.ops]
    assert kinds.count("add") == 3 and kinds.count("avgpool") == 1 and kinds[-1] == "conv2d"
    assert sum(op.depthwise for op in g.convs()) == 5
    assert g.ops[-1].name == "classifier.1" and g.output == "logits" and g.num_classes == 10
    stem = g.op("features.0.0")
    assert g.tensors[stem.output].zero == -128 and abs(g.tensors[stem.output].scale - 6 / 255) < 1e-12
    for op in g.convs():  # per-channel symmetric int8 weights using the full range
        assert op.weight.dtype == np.int8 and op.bias.dtype == np.int32
        assert np.abs(op.weight).reshape(len(op.w_scales), -1).max(axis=1).max() == 127
    res = g.op("features.3.add")  # x + self.conv(x): the block input, then the branch
    assert res.inputs == ["features.2.conv.2.0.out", "features.3.conv.2.0.out"]
    assert g.tensors[g.op("features.2.conv.2.0").output].zero != -128  # linear bottleneck: asymmetric range


def test_relu_range_and_pool_variants(digits: tuple[np.ndarray, ...]) -> None:
    tr = digits[0]
    model = calibrate_bn(PoolCNN(4, 16), _real(tr[:64]))
    g = import_torch(model, tr[:64])
    assert [op.kind for op in g.ops] == ["conv2d", "conv2d", "avgpool", "conv2d"]
    first = g.tensors[g.ops[0].output]
    assert first.zero == -128 and first.scale != 6 / 255  # ReLU: calibrated range, zero point -128
    model.eval()
    with torch.no_grad():
        fl = model(_real(tr[:32])).numpy()
    out = g.tensors[g.output]
    dq = (np.stack([infer(g, x) for x in tr[:32]]).astype(np.float64) - out.zero) * out.scale
    assert np.abs(dq - fl).max() <= 0.05 * np.abs(fl).max()


def test_float_calibration_data_and_quantize_input() -> None:
    model = calibrate_bn(PlainCNN(3), torch.rand(32, 3, 16, 16) * 2 - 1)
    xf = torch.rand(16, 3, 16, 16) * 2 - 1
    g1 = import_torch(model, xf)
    g2 = import_torch(model, quantize_input(xf))
    assert all(np.array_equal(a.weight, b.weight) for a, b in zip(g1.convs(), g2.convs(), strict=True))
    assert g1.tensors == g2.tensors
    assert model.training is False


@pytest.mark.parametrize(
    "net, match",
    [
        (
            WithGelu,
            r"unsupported module GELU at fx node 'features_1' \(module path 'features.1'\); replace it",
        ),
        (WithTanh, r"unsupported function torch.tanh at fx node 'tanh' \(module path 'head'\); replace it"),
    ],
)
def test_unsupported_ops_are_named(net: type[nn.Module], match: str) -> None:
    with pytest.raises(TinytrainError, match=match):
        import_torch(net(), np.zeros((2, 3, 8, 8), np.int8))


class _Mul(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((self.c(x) * 2).mean((2, 3)))


class _FlatMapConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv1d(1, 2, 3)
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.c2(torch.flatten(self.c(x), 1).unsqueeze(1)).mean(2))


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(x)
        return self.fc((F.relu(y) + y).mean((2, 3)))


class _Dynamic(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


@pytest.mark.parametrize(
    "net, match",
    [
        (_Mul, r"operator.mul at fx node 'mul'"),
        (_FlatMapConv, r"a conv of a reshaped tensor \[2, 1, 256\]"),
        (_Branchy, r"relu at fx node 'relu'.*cannot fold ReLU into 'c'.*also used by \['add'\]"),
        (_Dynamic, r"cannot trace _Dynamic with torch.fx"),
    ],
)
def test_unsupported_patterns(net: type[nn.Module], match: str) -> None:
    with pytest.raises(TinytrainError, match=match):
        import_torch(net(), np.zeros((2, 3, 8, 8), np.int8))


def test_bad_calibration_data() -> None:
    with pytest.raises(TinytrainError, match=r"\[N, C, H, W\]"):
        import_torch(PlainCNN(2), np.zeros((8,), np.float32))
    with pytest.raises(TinytrainError, match=r"fx node 'c1'.*calibration batch failed: Expected 3D") as e:
        import_torch(PlainCNN(2), np.zeros((3, 8), np.float32))  # a valid [N, F] batch, the wrong model
    assert "\n" not in str(e.value)
    with pytest.raises(TinytrainError, match="NaN"):
        import_torch(PlainCNN(2), np.full((1, 3, 8, 6), np.nan, np.float32))
