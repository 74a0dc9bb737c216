"""The committed int8 .onnx test models (QDQ and QOperator, from onnxruntime's quantize_static): each infers
bit-exactly against onnxruntime's outputs stored beside it (32 inputs); the bad ones are refused with one
line and exit 2; the realistic nets train (host reference, and in QEMU on m4 and m7)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tinytrain.cli import main
from tinytrain.compiler import compile_training
from tinytrain.models import import_model
from tinytrain.reference.inference import run_forward
from tinytrain.reference.training import Trainer

DATA = Path(__file__).parent / "data"
GOOD = sorted(p.stem for p in DATA.glob("*.onnx") if not p.stem.startswith("bad_"))
BAD = sorted(p.stem for p in DATA.glob("bad_*.onnx"))


def _hwc(x: np.ndarray) -> np.ndarray:
    """NCHW / NCW samples -> the device's HWC (H = 1 for NCW)."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x.transpose(0, 2, 1)[:, None]


@pytest.mark.parametrize("name", GOOD)
def test_bit_exact_against_onnxruntime(name: str) -> None:
    g = import_model(DATA / f"{name}.onnx")
    io = np.load(DATA / f"{name}.io.npz")
    x = io["x_q"]
    assert g.meta["numerics"] == "ort" and len(x) >= 32
    oc, oh, ow = g.tensors[g.output].shape
    ours = np.stack(
        [run_forward(g, xi)[g.output].reshape(oh, ow, oc).transpose(2, 0, 1).reshape(-1) for xi in _hwc(x)]
    )
    assert np.array_equal(ours, io["y_q"].reshape(len(x), -1))


@pytest.mark.parametrize("name", BAD)
def test_bad_onnx_one_line_exit_2(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["import", str(DATA / f"{name}.onnx"), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and f"{name}.onnx" in err
    assert not (tmp_path / "out").exists()


def test_infer_cli_takes_nchw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(DATA / "mobilenet_tiny_qop.onnx"), "--out", str(tmp_path / "m")]) == 0
    io = np.load(DATA / "mobilenet_tiny_qop.io.npz")
    np.save(tmp_path / "x.npy", io["x_q"])  # [32, 3, 32, 32] NCHW int8
    capsys.readouterr()
    code = main(
        [
            "infer",
            "--model",
            str(tmp_path / "m"),
            "--input",
            str(tmp_path / "x.npy"),
            "--logits",
            str(tmp_path / "z.npy"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert np.array_equal(np.load(tmp_path / "z.npy"), io["y_q"])


@pytest.mark.parametrize(
    "name", ["mobilenet_tiny_qdq", "mobilenet_tiny_qop", "sensor_conv1d_qdq", "sensor_conv1d_qop"]
)
def test_trains_on_host(name: str) -> None:
    g = import_model(DATA / f"{name}.onnx")
    t = Trainer(compile_training(g, "full"), seed=1)
    xs = list(_hwc(np.load(DATA / f"{name}.io.npz")["x_q"][:4]))
    first = [t.train_step(x, i % g.num_classes, 0.05) for i, x in enumerate(xs)]
    for _ in range(4):
        last = [t.train_step(x, i % g.num_classes, 0.05) for i, x in enumerate(xs)]
    assert sum(last) < sum(first)


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="QEMU missing")
@pytest.mark.parametrize("board", ["m4", "m7"])
@pytest.mark.parametrize(("name", "scheme"), [("mobilenet_tiny_qdq", "bias"), ("sensor_conv1d_qop", "full")])
def test_trains_in_qemu(name: str, scheme: str, board: str, tmp_path: Path) -> None:
    """The data: the oracle inputs as an .npz in the source layout (NCHW / NCW: `--layout chw`)."""
    from tinytrain.emulate import EmulateConfig, emulate
    from tinytrain.models.importer import write_model_dir

    g = import_model(DATA / f"{name}.onnx")
    d = write_model_dir(g, tmp_path / name)
    x = np.load(DATA / f"{name}.io.npz")["x_q"]
    np.savez(tmp_path / "data.npz", x=x, y=np.arange(len(x)) % g.num_classes)
    cfg = EmulateConfig(
        model=str(d),
        scheme=scheme,
        dataset=str(tmp_path / "data.npz"),
        layout="chw",
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
    assert rec["losses"] == rec["match"]["reference_losses"]


def test_corrupted_onnx_never_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = bytearray((DATA / "add_qop.onnx").read_bytes())
    rng = np.random.default_rng(1)
    refused = 0
    for trial in range(30):
        bad = bytearray(good)
        for i in rng.integers(0, len(bad), 8):
            bad[i] = int(rng.integers(0, 256))
        src = tmp_path / f"c{trial}.onnx"
        src.write_bytes(bytes(bad))
        out = tmp_path / f"o{trial}"
        code = main(["import", str(src), "--out", str(out)])
        _, err = capsys.readouterr()
        assert code in (0, 2)
        if code == 2:
            refused += 1
            assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert refused > 0
