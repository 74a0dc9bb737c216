"""The streamed sample (CompileOptions.stream_input): with a patched first stage the sample is read tile by
tile (`tt_tile_load_stream_s8` through `tt_input_read`) where the caller keeps it, so no SRAM holds it
whole: the planner counts no input, the training app keeps no sample buffer and reads rows from its source
(semihosting or the flash-embedded dataset), and the device still matches the host reference bit for bit."""

from __future__ import annotations

import shutil

import pytest

from tinytrain.codegen import generate
from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.emulate import EmulateConfig, emulate
from tinytrain.models import load_model
from tinytrain.models.head import replace_head
from tinytrain.program import Storage
from tinytrain.schedule import plan_memory

HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None
needs_qemu = pytest.mark.skipif(not (HAVE_ARM and HAVE_QEMU), reason="QEMU / arm toolchain not installed")


def _graph():
    return replace_head(load_model("mcunet-5fps", resolution=48), 2, seed=0)


def test_streamed_sample_takes_no_sram_and_reads_through_the_hook():
    g = _graph()
    prog = compile_training(g, "paper:99kb")
    assert prog.meta["patch"] is not None
    assert prog.buffers["input"].storage is Storage.STREAM
    plan = plan_memory(prog, "m7")
    assert plan.breakdown["input"] == 0 and plan.input_streamed and "input" not in plan.offsets
    assert "streamed" in plan.report()
    gen = generate(prog, plan)
    assert "#define TT_INPUT_STREAMED 1" in gen.files["model.h"]
    c = gen.files["model.c"]
    assert "tt_tile_load_stream_s8(sample," in c and "tt_tile_load_s8(sample," not in c
    # the lever off: the sample in the arena as before, its bytes counted there
    off = compile_training(g, "paper:99kb", CompileOptions(stream_input=False))
    assert off.buffers["input"].storage is Storage.ARENA
    plan_off = plan_memory(off, "m7")
    assert "input" in plan_off.offsets and not plan_off.input_streamed
    assert "#define TT_INPUT_STREAMED 0" in generate(off, plan_off).files["model.h"]
    # no patched stage (a gradient reaches the stem): nothing to stream from
    full = compile_training(g, "full")
    assert full.meta["patch"] is None and full.buffers["input"].storage is Storage.ARENA


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("source", ["semihost", "flash"])
def test_streamed_sample_on_the_device(tmp_path, source):
    """Both sample sources deliver the rows the stage asks for: losses, parameters and predictions equal the
    host reference's; the measured SRAM has no input buffer and stays at the plan."""
    cfg = EmulateConfig(
        model="mcunet-5fps",
        scheme="paper:99kb",
        dataset="faces",
        classes=2,
        resolution=48,
        board="m4",
        steps=2,
        max_train=8,
        max_test=4,
        source=source,
        build_dir=str(tmp_path / "build"),
        save_record=False,
    )
    rec = emulate(cfg).record
    m = rec["match"]
    assert rec["matched_reference"] and m["losses"] and m["params"] and m["predictions"], m
    meas, pred = rec["sram"], rec["sram_predicted"]
    assert pred["breakdown"]["input"] == 0 and meas["breakdown"]["input"] == 0
    assert meas["total"] <= pred["total"]


def test_compile_prints_the_stages_and_the_streamed_sample(capsys):
    from tinytrain.cli import main

    assert main(["compile", "--model", "mcunet-5fps", "--resolution", "48", "--classes", "2"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("patched stages: first_conv.."))
    assert "% of the network's" in line and "streamed tile by tile" in line
    assert "(streamed: read tile by tile where the caller keeps it)" in out
    assert main(["compile", "--model", "mcunet-5fps", "--resolution", "48", "--no-stream-input"]) == 0
    out = capsys.readouterr().out
    assert "patched stages:" in out and "streamed" not in out
