"""The committed .tflite test models (tests/models/data, generated with TensorFlow's converter): each int8
model infers bit-exactly against the TFLite Micro outputs stored beside it (32 inputs); the bad ones are
refused with one line and exit 2; the realistic nets train."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.ops.tflite_builder import tflm_run
from tinytrain.cli import main
from tinytrain.compiler import compile_training
from tinytrain.models import import_model
from tinytrain.reference.inference import run_forward
from tinytrain.reference.training import Trainer

DATA = Path(__file__).parent / "data"
GOOD = sorted(p.stem for p in DATA.glob("*.tflite") if not p.stem.startswith("bad_"))
#: files the generator marks bad that tinytrain imports exactly: TFLite Micro supports the fused RELU_N1_TO_1
#: (a clamp to the quantized [-1, 1]) and so does tinytrain (test_relu_n1_to_1_is_supported)
IMPORTABLE = {"bad_fused_relu_n1_to_1"}
BAD = sorted(p.stem for p in DATA.glob("bad_*.tflite") if p.stem not in IMPORTABLE)


def _ours(g, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    c, h, w = g.tensors[g.input].shape
    return np.stack([run_forward(g, xi.reshape(h, w, c))[g.output].reshape(-1) for xi in x])


@pytest.mark.parametrize("name", GOOD)
def test_bit_exact_against_tflite_micro(name: str) -> None:
    path = DATA / f"{name}.tflite"
    g = import_model(path)
    io = np.load(DATA / f"{name}.io.npz")
    x = io["x"]
    if x.dtype != np.int8 or "SOFTMAX" in " ".join(g.meta["dropped"]):
        # float I/O or a trailing SOFTMAX: compare the int8 logits the import keeps with TFLite Micro's tensor
        from tinytrain.models.tflite_import import _Reader

        r = _Reader(path)
        ops = r.ops()
        logits = [o for o in ops if o[1] not in ("SOFTMAX", "DEQUANTIZE")][-1][3][0]
        src = g.meta["source_input_shape"]
        xq = np.random.default_rng(5).integers(-128, 128, (32, *src[1:])).astype(np.int8)
        if x.dtype != np.int8:  # the interpreter takes float: feed the dequantized int8 grid
            q = g.tensors[g.input]
            xf = ((xq.astype(np.float32) - q.zero) * np.float32(q.scale)).astype(np.float32)
            ref = tflm_run(path.read_bytes(), xf, logits)
        else:
            ref = tflm_run(path.read_bytes(), xq, logits)
        assert np.array_equal(_ours(g, xq), ref.reshape(32, -1))
        return
    y = io["y"].reshape(len(x), -1)
    assert len(x) >= 32 and np.array_equal(_ours(g, x), y)


@pytest.mark.parametrize("name", BAD)
def test_bad_files_one_line_exit_2(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["import", str(DATA / f"{name}.tflite"), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and f"{name}.tflite" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["mobilenet_tiny", "sensor_conv1d"])
@pytest.mark.parametrize("scheme", ["last", "bias", "full"])
def test_realistic_nets_train_on_host(name: str, scheme: str) -> None:
    g = import_model(DATA / f"{name}.tflite")
    t = Trainer(compile_training(g, scheme), seed=1)
    io = np.load(DATA / f"{name}.io.npz")
    c, h, w = g.tensors[g.input].shape
    xs = [xi.reshape(h, w, c) for xi in io["x"][:4]]
    first = [t.train_step(x, i % g.num_classes, 0.05) for i, x in enumerate(xs)]
    for _ in range(4):
        last = [t.train_step(x, i % g.num_classes, 0.05) for i, x in enumerate(xs)]
    assert sum(last) < sum(first)


def _dataset_npz(name: str, g, path: Path) -> Path:  # noqa: ANN001
    """The model's own 32 oracle inputs (int8, source layout NHWC / NWC) as an .npz dataset (x, y)."""
    x = np.load(DATA / f"{name}.io.npz")["x"]
    np.savez(path, x=x, y=np.arange(len(x)) % g.num_classes)
    return path


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="QEMU missing")
@pytest.mark.parametrize("board", ["m4", "m7"])
@pytest.mark.parametrize(("name", "scheme"), [("mobilenet_tiny", "bias"), ("sensor_conv1d", "full")])
def test_realistic_nets_train_in_qemu(name: str, scheme: str, board: str, tmp_path: Path) -> None:
    """A few training steps in QEMU equal the host reference bit for bit (losses, parameters, predictions);
    the data: the model's oracle inputs as an .npz in its source layout (--dataset FILE.npz --layout hwc)."""
    from tinytrain.emulate import EmulateConfig, emulate
    from tinytrain.models.importer import write_model_dir

    g = import_model(DATA / f"{name}.tflite")
    d = write_model_dir(g, tmp_path / name)
    cfg = EmulateConfig(
        model=str(d),
        scheme=scheme,
        dataset=str(_dataset_npz(name, g, tmp_path / "data.npz")),
        layout="hwc",
        resolution=g.resolution,
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
    assert rec["losses"] == rec["match"]["reference_losses"] and len(rec["losses"]) == 3


def test_relu_n1_to_1_is_supported() -> None:
    path = DATA / "bad_fused_relu_n1_to_1.tflite"
    g = import_model(path)
    assert g.ops[0].attrs["activation"] == "RELU_N1_TO_1"
    xs = np.random.default_rng(0).integers(-128, 128, (32, *g.meta["source_input_shape"][1:])).astype(np.int8)
    ref = tflm_run(path.read_bytes(), xs).reshape(32, -1)
    assert np.array_equal(_ours(g, xs), ref) and len(np.unique(ref)) > 10
