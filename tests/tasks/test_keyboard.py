"""The keyboard task: windows of token ids, the zoo model, the job in QEMU m4 and host-native with host match,
the embedding's split (reordering off) path bit-identical to the fused sparse update."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.data.text import encode
from tinytrain.job.config import JobConfig
from tinytrain.models import load_model
from tinytrain.reference.training import Trainer
from tinytrain.tasks import TASKS, task_defaults
from tinytrain.tasks import keyboard as task

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host C compiler")
needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="QEMU / arm toolchain missing",
)


def test_windows_and_dataset() -> None:
    ids = encode("hello world, hello keyboard")
    x, y = task.windows(ids, range(1, 5))
    assert x.dtype == np.int8 and x.shape == (4, 1, task.CONTEXT, 1)
    assert list(y) == list(ids[1:5])
    assert list(x[3, 0, -4:, 0]) == list(ids[:4]) and not x[0, 0, :-1].any()  # newline ids before the start
    d = task.user_dataset("The Licensee shall hereby agree. " * 20)
    assert d["x"].shape[1:] == (1, 1, task.CONTEXT) and len(d["class_names"]) == 97
    assert TASKS["keyboard"] is task.DEFAULTS and task_defaults("keyboard") == task.DEFAULTS


def test_model_and_scheme_fit() -> None:
    g = load_model(str(task.MODEL_DIR))
    assert [op.kind for op in g.ops] == ["embedding", "qconv", "qconv", "qconv", "qconv"]
    assert g.tensors[g.input].shape == (1, 1, task.CONTEXT) and g.num_classes == 97
    p = compile_training(g, task.DEFAULTS["scheme"])
    kernels = [s.kernel for s in p.steps]
    assert "embedding_s8" in kernels and "embedding_wgrad_update" in kernels


def test_split_path_matches_fused() -> None:
    g = load_model(str(task.MODEL_DIR))
    x, y = task.windows(encode("Licensee agrees to be bound by the terms. " * 3), range(20, 26))
    scheme = {"bias_last_n": 1, "weights": [{"layer": "embedding", "input_channel_ratio": 1}]}
    # nearest rounding: the split path's dense update draws for every row under the stochastic rule
    opts = [CompileOptions(reorder=r, update_rule="nearest") for r in (True, False)]
    ts = [Trainer(compile_training(g, scheme, o)) for o in opts]
    for t in ts:
        for xi, yi in zip(x, y, strict=True):
            t.train_step(xi, int(yi), 1.0)  # large: nearest rounding moves the table
    a, b = (t.parameters() for t in ts)
    assert (a["w:embedding"] != g.op("embedding").params["weight"]).any()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _cfg(tmp_path: Path, backend: str, **over: object) -> JobConfig:
    fields = {**task.DEFAULTS, "steps": 3, "max_test": 6, **over}
    cfg = JobConfig.from_fields(**fields)
    cfg.backend, cfg.baseline, cfg.save_record = backend, None, False
    cfg.build_dir = str(tmp_path / f"build-{backend}")
    return cfg


def _check(rec: dict) -> None:
    assert rec["matched_reference"], rec["match"]
    assert rec["losses"] == rec["match"]["reference_losses"] and len(rec["losses"]) == 3
    assert rec["perplexity_before"] > 1 and rec["perplexity_after"] > 1


@needs_gcc
def test_task_host_native_no_reorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The split path's C (embedding_wgrad_f32 + conv2d_weight_update) bit-exact with its reference."""
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(tmp_path, "host", reorder=False)
    cfg.save_model = str(tmp_path / "adapted")
    _check(task.run(cfg).record)
    g0, g1 = load_model(str(task.MODEL_DIR)), load_model(cfg.save_model)  # the adapted model back out
    w0, w1 = (g.op("embedding").params["weight"] for g in (g0, g1))
    assert w1.shape == w0.shape and g1.meta["adapted"]["from"] == "keyboard-char"


@needs_qemu
@pytest.mark.qemu
def test_task_qemu_m4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """3 steps of the keyboard job in QEMU m4: embedding forward + sparse update bit-exact with the host."""
    monkeypatch.chdir(tmp_path)
    rec = task.run(_cfg(tmp_path, "qemu")).record
    _check(rec)
    assert rec["sram"]["total"] <= 128 * 1024  # measured: static + stack high-water


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinytrain.cli import main

    (tmp_path / "short.txt").write_text("hi")
    cases = [
        (["--defaults", "--text", "x.txt"], "--text needs --task keyboard"),
        (["--defaults", "--task", "keyboard", "--dataset", "digits"], "not --dataset"),
        (["--defaults", "--task", "keyboard", "--text", str(tmp_path / "none.txt")], "unreadable text file"),
        (["--defaults", "--task", "keyboard", "--text", str(tmp_path / "short.txt")], "needs at least"),
    ]
    for args, msg in cases:
        assert main(["emulate", *args, "--host", "--steps", "1", "--no-save", "--no-report"]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
