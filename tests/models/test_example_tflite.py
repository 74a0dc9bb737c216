"""The README's "your own model" example, docs/examples/basicmotions_conv1d.tflite
(scripts/make_example_tflite.py: a Keras Conv1D net trained on BasicMotions, TFLiteConverter full-integer
int8): it imports, the summary the README and docs/models.md show is what `tinytrain import` prints, it
infers bit-exactly against the TFLite Micro interpreter, its recorded accuracies are what tinytrain
measures, and it trains in QEMU with host match."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.ops.tflite_builder import tflm_run
from tinytrain.cli import main
from tinytrain.data.quantize import quantize
from tinytrain.models import import_model
from tinytrain.models.importer import folded_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "basicmotions_conv1d.tflite"


@pytest.fixture()
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    """The repository's docs/ seen from an empty current directory, so the command reads as documented."""
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def test_summary_in_the_docs_is_what_import_prints(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["import", "docs/examples/basicmotions_conv1d.tflite", "--out", "my-model"]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("imported basicmotions_conv1d.tflite -> my-model (tinytrain-ir/1, numerics tflm")
    assert "folded  10 op(s): 5 EXPAND_DIMS, 5 RESHAPE (shape only" in "\n".join(out)
    for doc in ("README.md", "docs/models.md"):
        text = (ROOT / doc).read_text()
        assert f"$ tinytrain {' '.join(args)}" in text, doc
        for line in out:
            assert line in text, (doc, line)


def _splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The script's own splits (scripts/make_example_tflite.py), sys.path left as it was."""
    import sys

    saved = list(sys.path)
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from make_example_tflite import splits
    finally:
        sys.path[:] = saved
    return splits()


def test_bit_exact_against_tflite_micro_and_the_recorded_accuracy() -> None:
    """tinytrain's int8 logits equal the TFLite Micro interpreter's on 80 real inputs (the archive's 40 test
    recordings as recorded and worn rotated, quantized as the device gets them) and 32 random int8 ones;
    the accuracies docs/examples/basicmotions_conv1d.json records (and its .md shows) are those measured."""
    from tinytrain.reference.inference import run_forward

    g = import_model(EXAMPLE)
    q = g.tensors[g.input]
    assert q.shape == (6, 1, 100) and g.num_classes == 4 and g.numerics == "tflm"
    meta = json.loads(EXAMPLE.with_suffix(".json").read_text())
    data = _splits()
    xs = {k: quantize(x, q.scale, q.zero) for k, (x, _) in data.items()}  # int8 NWC [N, 100, 6]
    rand = np.random.default_rng(13).integers(-128, 128, (32, 100, 6)).astype(np.int8)
    batch = np.concatenate([xs["test as recorded"], xs["test worn rotated"], rand])
    ours = np.stack([run_forward(g, xi[None])[g.output].reshape(-1) for xi in batch])
    ref = tflm_run(EXAMPLE.read_bytes(), batch)
    assert len(batch) == 112 and ours.dtype == ref.dtype == np.int8 and np.array_equal(ours, ref)
    note = EXAMPLE.with_suffix(".md").read_text()
    for k, (_, y) in data.items():
        logits = ours[:40] if k == "test as recorded" else ours[40:80] if k == "test worn rotated" else None
        if logits is None:
            logits = np.stack([run_forward(g, xi[None])[g.output].reshape(-1) for xi in xs[k]])
        acc = float(np.mean(np.argmax(logits, 1) == y))
        assert meta["accuracy"][k]["int8"] == acc, k
        assert f"| {k} | {len(y)} | {100 * meta['accuracy'][k]['float']:.1f} % | {100 * acc:.1f} % |" in note
    # the shift the example demonstrates: perfect as recorded, near chance worn rotated
    assert meta["accuracy"]["test as recorded"]["int8"] == 1.0
    assert meta["accuracy"]["test worn rotated"]["int8"] < 0.5


def test_folded_text_lists_few_and_counts_many() -> None:
    few = ["EXPAND_DIMS op #0 [1, 64, 3] -> [1, 1, 64, 3]", "RESHAPE op #2 [1, 1, 64, 8] -> [1, 64, 8]"]
    assert folded_text(few) == "; ".join(few)
    many = [*few, *few, "SHAPE op #7 (computes a RESHAPE target shape; the static shape is used)"]
    assert folded_text(many) == (
        "2 EXPAND_DIMS, 2 RESHAPE (shape only: in the device's HWC layout they move no byte); "
        "SHAPE op #7 (computes a RESHAPE target shape; the static shape is used)"
    )


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="QEMU missing")
@pytest.mark.parametrize("board", ["m4", "m7"])
def test_trains_on_the_sensor_scenario_in_qemu(board: str, tmp_path: Path) -> None:
    """3 training steps on the rotated-watch scenario (`--dataset sensor`) equal the host reference bit for
    bit (losses, parameters, predictions); the scheme trains the first conv's weights and the classifier."""
    from tinytrain.emulate import EmulateConfig, emulate
    from tinytrain.models.importer import write_model_dir

    d = write_model_dir(import_model(EXAMPLE), tmp_path / "my-model")
    scheme = tmp_path / "scheme.json"
    scheme.write_text(
        json.dumps({"bias_last_n": 0, "weights": [{"layer": "conv1_1", "input_channel_ratio": 1}]})
    )
    cfg = EmulateConfig(
        model=str(d),
        scheme=str(scheme),
        dataset="sensor",
        resolution=None,
        board=board,
        steps=3,
        backend="qemu",
        max_test=4,
        build_dir=str(tmp_path / "build"),
        save_record=False,
    )
    rec = emulate(cfg).record
    assert rec["matched_reference"], {k: v for k, v in rec["match"].items() if k != "reference_losses"}
    assert rec["losses"] == rec["match"]["reference_losses"] and len(rec["losses"]) == 3
