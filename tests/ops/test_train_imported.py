"""Training an imported .tflite model: the generated C (TFLM forward kernels of firmware/runtime/ops + the
existing backward kernels) matches the host reference bit for bit, host-native and in QEMU on m4 and m7."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.ops.nets import Net
from tinytrain import TinytrainError
from tinytrain.compiler import compile_training
from tinytrain.emulate import EmulateConfig, emulate
from tinytrain.models import import_model, load_model
from tinytrain.models.importer import write_model_dir
from tinytrain.reference.inference import run_forward
from tinytrain.reference.training import Trainer

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")
needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="QEMU / arm toolchain missing",
)


def small_vision(res: int = 8) -> bytes:
    """A MobileNet-style 2-class net at the faces dataset's shape: conv s2, depthwise, 1x1, residual add,
    MEAN, dense (the classifier), SOFTMAX (dropped)."""
    n = Net([1, res, res, 3], seed=11)
    n.conv(8, 3, 3, (2, 2), "SAME", "RELU6")
    skip, shape = n.x, list(n.shape)
    n.conv(8, 3, 3, (1, 1), "SAME", "RELU6", depthwise=True).conv(8, 1, 1, act="NONE").add_from(skip, shape)
    return n.conv(12, 1, 1, act="RELU").mean().fc(2).softmax().build()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    src = tmp_path / "vision.tflite"
    src.write_bytes(small_vision())
    return write_model_dir(import_model(src), tmp_path / "vision")


@pytest.mark.parametrize(
    "scheme",
    ["last", "bias", {"bias_last_n": 2, "weights": [{"layer": "conv2d_5", "input_channel_ratio": 0.5}]}],
)
def test_host_reference_trains_imported(model_dir: Path, scheme: object) -> None:
    g = load_model(model_dir)
    prog = compile_training(g, scheme)  # type: ignore[arg-type]
    t = Trainer(prog, seed=3)
    x = np.random.default_rng(0).integers(-128, 128, (8, 8, 3)).astype(np.int8)
    assert np.array_equal(t.infer(x), run_forward(g, x)[g.output].reshape(-1))  # the tflm forward
    losses = [t.train_step(x, 1, 0.05) for _ in range(6)]
    assert losses[-1] < losses[0]


def test_paper_scheme_refused_for_imported(model_dir: Path) -> None:
    with pytest.raises(TinytrainError, match="they name zoo layers: use last, bias, full or a JSON"):
        compile_training(load_model(model_dir), "paper:99kb")


def _config(model_dir: Path, tmp_path: Path, scheme: str, board: str, backend: str) -> EmulateConfig:
    return EmulateConfig(
        model=str(model_dir),
        scheme=scheme,
        dataset="faces",
        classes=2,
        resolution=8,
        board=board,
        steps=6,
        lr=0.01,
        backend=backend,
        max_test=8,
        build_dir=str(tmp_path / f"build-{board}-{backend}-{scheme}"),
        save_record=False,
    )


def _assert_matched(rec: dict) -> None:
    assert rec["matched_reference"], {k: v for k, v in rec["match"].items() if k != "reference_losses"}
    assert rec["losses"] == rec["match"]["reference_losses"] and len(rec["losses"]) == 6


@needs_gcc
@pytest.mark.parametrize("scheme", ["last", "bias"])
def test_host_native_matches_reference(model_dir: Path, tmp_path: Path, scheme: str) -> None:
    _assert_matched(emulate(_config(model_dir, tmp_path, scheme, "m7", "host")).record)


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("board", ["m4", "m7"])
def test_qemu_matches_reference(model_dir: Path, tmp_path: Path, board: str) -> None:
    _assert_matched(emulate(_config(model_dir, tmp_path, "bias", board, "qemu")).record)


def test_new_head_on_imported_fully_connected(model_dir: Path) -> None:
    from tinytrain.models import replace_head

    g = replace_head(load_model(model_dir), 5, seed=2)
    head = g.producer(g.output)
    assert head is not None and head.kind == "qconv" and g.num_classes == 5
    t = Trainer(compile_training(g, "bias"), seed=1)
    x = np.random.default_rng(1).integers(-128, 128, (8, 8, 3)).astype(np.int8)
    losses = [t.train_step(x, 3, 0.05) for _ in range(6)]
    assert losses[-1] < losses[0] and t.infer(x).shape == (5,)


@needs_gcc
def test_host_native_new_head_classes(model_dir: Path, tmp_path: Path) -> None:
    """emulate with classes=10 (digits) on the 2-class imported model replaces its FULLY_CONNECTED head; the
    host-native build matches the host reference."""
    cfg = _config(model_dir, tmp_path, "last", "m7", "host")
    cfg = EmulateConfig(**{**cfg.__dict__, "dataset": "digits", "classes": 10})
    _assert_matched(emulate(cfg).record)


def every_op_net() -> bytes:
    """Every imported op kind on a training path: PAD, VALID conv with a rectangular kernel and stride, max
    pool, depthwise 3x3 stride 2 SAME (asymmetric), CONCATENATION, windowed average pool, Flatten (RESHAPE)
    and FULLY_CONNECTED on [H, W, C]."""
    n = Net([1, 8, 8, 3], seed=21)
    n.pad((1, 0, 1, 2)).conv(6, 2, 3, (1, 2), "VALID", "RELU")  # -> [1, 8, 5, 6]
    n.pool("max", (2, 2), (1, 1), "SAME")
    a, ash = n.x, list(n.shape)
    n.conv(6, 3, 3, (1, 1), "SAME", "RELU6", depthwise=True)
    t = n.b.tensors[a]
    n.b.tensors[n.x].scale, n.b.tensors[n.x].zero = t.scale, t.zero  # TFLM concatenates equal quantizations
    n.concat_with(a, ash)  # -> [1, 8, 5, 12]
    n.conv(12, 3, 3, (2, 2), "SAME", "RELU", depthwise=True)  # -> [1, 4, 3, 12]
    n.pool("avg", (2, 2), (2, 2), "SAME")  # -> [1, 2, 2, 12]
    return n.reshape([1, 48]).fc(3).build()


def test_every_op_net_exact_and_trains(tmp_path: Path) -> None:
    from tests.ops.oracle import assert_exact

    g = assert_exact(every_op_net(), tmp_path)
    kinds = {op.kind for op in g.ops}
    assert kinds == {"qpad", "qconv", "qpool", "qconcat"}
    t = Trainer(compile_training(g, "full"), seed=2)
    x = np.random.default_rng(3).integers(-128, 128, (8, 8, 3)).astype(np.int8)
    losses = [t.train_step(x, 2, 0.05) for _ in range(6)]
    assert losses[-1] < losses[0]


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("board", ["m4", "m7"])
def test_every_op_net_trains_in_qemu(board: str, tmp_path: Path) -> None:
    """Scheme `full`: every forward and backward kernel of firmware/runtime/ops runs in QEMU, bit-exact."""
    src = tmp_path / "every_op.tflite"
    src.write_bytes(every_op_net())
    d = write_model_dir(import_model(src), tmp_path / "every_op")
    cfg = EmulateConfig(
        **{**_config(d, tmp_path, "full", board, "qemu").__dict__, "classes": 3, "dataset": "digits"}
    )
    _assert_matched(emulate(cfg).record)


def test_depth_multiplier_net_exact_and_trains_host_native(tmp_path: Path) -> None:
    from tests.ops.oracle import assert_exact

    n = Net([1, 8, 8, 3], seed=5).conv(4, 3, 3, (1, 1), "SAME", "RELU")
    n.conv(0, 3, 3, (2, 2), "SAME", "RELU6", depthwise=True, multiplier=2)  # 4 -> 8 channels
    model = n.mean().fc(2).build()
    g = assert_exact(model, tmp_path)
    assert g.ops[1].attrs["depth_multiplier"] == 2
    d = write_model_dir(g, tmp_path / "dm2")
    _assert_matched(emulate(_config(d, tmp_path, "full", "m7", "host")).record)
