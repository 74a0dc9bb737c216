"""Code generation: the golden file, the shape of the generated C, and whole training steps of the
generated firmware (host-native build, QEMU m4/m7) against the host reference `Trainer`."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.compiler.helpers import tiny_graph
from tinytrain import TinytrainError
from tinytrain.codegen import EMITTERS, datafile, generate
from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.emulate import EmulateConfig, FirmwareFault, emulate
from tinytrain.program import Storage
from tinytrain.schedule import plan_memory

GOLDEN = Path(__file__).parent / "golden" / "tiny"
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None
HAVE_GCC = shutil.which("gcc") is not None
needs_qemu = pytest.mark.skipif(not (HAVE_ARM and HAVE_QEMU), reason="QEMU / arm toolchain not installed")
needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="host gcc not installed")

#: A scheme touching every code path: partial channels (saved slices), a depthwise weight update,
#: biases of the last convs, the classifier.
GOLDEN_SCHEME = {
    "name": "golden",
    "bias_last_n": 2,
    "weights": [
        {"layer": "blocks.0.pointwise2", "input_channel_ratio": 0.5},
        {"layer": "blocks.0.depthwise", "input_channel_ratio": 0.5},
    ],
}


def _generated(scheme: object = GOLDEN_SCHEME, rule: str = "nearest"):
    program = compile_training(tiny_graph(), scheme, CompileOptions(update_rule=rule))
    plan = plan_memory(program, "m7")
    return program, plan, generate(program, plan)


def test_golden_files():
    """The generated C for a small fixed model; regenerate with TT_UPDATE_GOLDEN=1 and review the diff."""
    _, _, gen = _generated()
    if os.environ.get("TT_UPDATE_GOLDEN"):
        gen.write(GOLDEN)
    for name, text in gen.files.items():
        stored = GOLDEN / name
        assert stored.exists(), f"{stored} missing: run with TT_UPDATE_GOLDEN=1"
        assert text == stored.read_text(), f"{name} differs from {stored} (TT_UPDATE_GOLDEN=1 to accept)"


def test_generated_c_shape():
    program, plan, gen = _generated()
    c = gen.files["model.c"]
    assert "malloc" not in c and "free(" not in c
    assert (
        len(re.findall(r"^uint8_t tt_arena\[TT_ARENA_BYTES\] __attribute__\(\(aligned\(8\)\)\);", c, re.M))
        == 1
    )
    assert f"#define TT_ARENA_BYTES {plan.arena}" in gen.files["model.h"]
    # one call per step, in order, each under a comment naming the kernel and the layer
    body = c[c.index("float tt_train_step(") : c.index("float tt_train_step_calls(")]
    calls = re.findall(r"^  tt_(\w+)\(", body, re.M)
    assert calls == [s.kernel for s in program.steps]
    for s in program.steps:
        assert f"{s.phase}: {s.kernel} [{s.layer}]" in body
    # flat phases: each run of consecutive steps of one phase is bracketed begin/end, named by a constant
    changes = sum(1 for a, b in zip(program.steps, program.steps[1:], strict=False) if a.phase != b.phase)
    begins = re.findall(r"TT_PHASE_BEGIN\(TT_PHASE_(\w+), tt_phase_name_(\w+)\);", body)
    ends = re.findall(r"TT_PHASE_END\(TT_PHASE_(\w+), tt_phase_name_(\w+)\);", body)
    assert len(begins) == len(ends) == changes + 1
    runs = [s.phase for i, s in enumerate(program.steps) if i == 0 or program.steps[i - 1].phase != s.phase]
    assert [b[1] for b in begins] == [e[1] for e in ends] == runs
    assert all(e.lower() == n for e, n in begins + ends)
    # begin/end strictly alternate (never nested)
    marks = re.findall(r"TT_PHASE_(BEGIN|END)\(", body)
    assert marks == ["BEGIN", "END"] * (changes + 1)
    for ph in set(runs):
        assert f'static const char tt_phase_name_{ph}[] = "{ph}";' in c
    # the per-call variant: the same calls, in the same order, each its own phase "c<i>"
    body_calls = c[c.index("float tt_train_step_calls(") : c.index("void tt_infer(")]
    assert re.findall(r"^  tt_(\w+\(.*)$", body_calls, re.M) == re.findall(r"^  tt_(\w+\(.*)$", body, re.M)
    names = re.findall(r"TT_PHASE_BEGIN\(TT_PHASE_(\w+), tt_call_name_(\d+)\);", body_calls)
    assert [(int(i), ph.lower()) for ph, i in names] == [(i, s.phase) for i, s in enumerate(program.steps)]
    assert f'static const char tt_call_name_{len(program.steps) - 1}[] = "c{len(program.steps) - 1}";' in c
    # every arena buffer at the planner's offset; flash constants const; trainable copies initialised
    for name, buf in program.buffers.items():
        cname = re.sub(r"[^0-9A-Za-z_]", "_", name)
        if buf.storage == Storage.ARENA and name in plan.offsets and name != "loss":
            assert f"(tt_arena + {plan.offsets[name]}))" in c.split(f"#define A_{cname} ")[1].split("\n")[0]
        elif buf.storage == Storage.FLASH and f"tt_c_{cname}" in c:
            assert (
                f"static const {('int8_t', 'int32_t', 'float')[('s8', 's32', 'f32').index(buf.dtype)]} "
                f"tt_c_{cname}[" in c
            )
        elif buf.storage == Storage.SRAM:
            assert f"tt_copy(tt_p_{cname}, tt_p_{cname}_init," in c
    # no dead arrays: every emitted array is referenced by a call
    for arr in re.findall(r"^static const \w+ (tt_c_\w+)\[", c, re.M):
        assert c.count(arr) >= 2, f"{arr} is never used"


def test_every_catalogue_kernel_has_an_emitter():
    from tinytrain.kernels.scratch import KERNELS

    assert set(KERNELS) <= set(EMITTERS)


def test_float_literals_round_trip():
    from tinytrain.codegen.generate import _literal

    vals = np.array([0.1, 1e-5, 3.0, 1e8, -2.5e-38, 1.4e-45, 0.00390625, 1 / 3], np.float32)
    for v in vals:
        text = _literal("f32", v)
        assert text.endswith("f") and np.float32(float(text[:-1])) == v


def test_datafile_layout():
    rng = np.random.default_rng(0)
    xs = rng.integers(-128, 128, (5, 4, 4, 3)).astype(np.int8)
    xt = rng.integers(-128, 128, (2, 4, 4, 3)).astype(np.int8)
    job = datafile.TrainingJob(
        xs,
        np.array([0, 1, 0, 1, 1]),
        xt,
        np.array([1, 0]),
        datafile.make_order(5, 12, 3),
        np.full(12, 0.01, np.float32),
        2,
    )
    data = datafile.pack(job)
    head = datafile.HEADER.unpack(data[:64])
    assert head[0] == datafile.MAGIC and head[2] == 48 and head[4:7] == (5, 2, 12)
    off_train, off_order = head[9], head[13]
    assert data[off_train : off_train + 48] == xs[0].tobytes()
    order = np.frombuffer(data, "<u4", 12, off_order)
    assert sorted(order[:5]) == [0, 1, 2, 3, 4] and sorted(order[5:10]) == [0, 1, 2, 3, 4]
    with pytest.raises(TinytrainError):
        datafile.pack(
            datafile.TrainingJob(xs, np.array([0, 1, 0, 1, 2]), xt, np.array([1, 0]), job.order, job.lr, 2)
        )


def _tiny_config(
    tmp_path: Path,
    scheme: str | object,
    board: str = "m7",
    backend: str = "host",
    rule: str = "nearest",
    steps: int = 24,
) -> EmulateConfig:
    d = tmp_path / "tiny_ir"
    if not d.exists():
        tiny_graph().save(d)
    if not isinstance(scheme, str):
        import json

        (tmp_path / "scheme.json").write_text(json.dumps(scheme))
        scheme = str(tmp_path / "scheme.json")
    return EmulateConfig(
        model=str(d),
        scheme=scheme,
        dataset="faces",
        classes=2,
        resolution=8,
        board=board,
        steps=steps,
        lr=0.01,
        options=CompileOptions(update_rule=rule),
        backend=backend,
        max_test=16,
        build_dir=str(tmp_path / f"build-{board}-{backend}-{rule}"),
        save_record=False,
    )


def _assert_matched(rec: dict) -> None:
    m = rec["match"]
    assert rec["matched_reference"], {k: v for k, v in m.items() if k != "reference_losses"}
    assert m["losses"] and m["params"] and m["predictions"]
    assert rec["losses"] == m["reference_losses"]


@needs_gcc
@pytest.mark.parametrize(
    "scheme,rule",
    [("full", "nearest"), (GOLDEN_SCHEME, "stochastic"), (GOLDEN_SCHEME, "shadow"), ("bias", "nearest")],
)
def test_host_native_matches_reference(tmp_path, scheme, rule):
    """The generated C + runtime + training app built with the host gcc: losses bit-equal, parameters
    identical, same test predictions (the fast path of the QEMU tests below)."""
    rec = emulate(_tiny_config(tmp_path, scheme, backend="host", rule=rule)).record
    _assert_matched(rec)
    assert rec["steps"] == 24 and len(rec["losses"]) == 24


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("board", ["m4", "m7"])
def test_qemu_tiny_matches_reference(tmp_path, board):
    rec = emulate(
        _tiny_config(tmp_path, GOLDEN_SCHEME, board=board, backend="qemu", rule="stochastic")
    ).record
    _assert_matched(rec)
    ips = rec["instructions_per_step"]
    assert ips["total"] > 0 and ips["forward"] > 0 and ips["backward"] > 0 and ips["update"] > 0
    # exact per-phase counts from the plugin (flat phase markers in the generated step)
    assert rec["instructions_source"] == "plugin"
    assert rec["profile_phase_alignment"]["complete"]
    assert ips["forward"] + ips["loss"] + ips["backward"] + ips["update"] == ips["total"]
    # the step's phases cover the whole tt_train_step call but for the instrumentation between phases
    # (each phase end prints an event: ~2-3 k instructions, SysTick-counted in the call's total)
    call = rec["instructions_per_step_call_systick"]
    n_phase_runs = rec["phase_events_per_step"]
    assert ips["total"] < call < ips["total"] + 4000 * n_phase_runs
    kps = rec["kernels_per_step"]
    assert set(kps) == {"forward", "loss", "backward", "update"}
    assert "tt_softmax_xent" in kps["loss"]
    assert sum(kps["loss"].values()) == pytest.approx(ips["loss"], abs=2)
    # the first step counted every kernel call (tt_train_step_calls): per-call and per-layer counts, about the
    # same as the other steps' phases (a few instructions per call of bracketing differ)
    calls = rec["calls_first_step"]
    assert [c["kernel"] for c in calls] == [
        s.kernel
        for s in compile_training(tiny_graph(), GOLDEN_SCHEME, CompileOptions(update_rule="stochastic")).steps
    ]
    first = rec["instructions_per_step_all"][0]
    assert sum(c["instr"] for c in calls) == first
    assert abs(first - ips["total"]) < 0.05 * ips["total"]
    layers = rec["layers_per_step"]
    assert sum(d["total"] for d in layers) == first and layers[0]["total"] >= layers[-1]["total"]
    sram = rec["sram"]
    assert sram["breakdown"]["arena"] == rec["sram_predicted"]["arena"]
    assert 0 < sram["breakdown"]["stack_high_water"] < 4096
    assert sram["total"] == sram["static"] + sram["breakdown"]["stack_high_water"]
    assert rec["flash_bytes"] > 0 and rec["est_cycles_per_step"] > 0


@needs_qemu
@pytest.mark.qemu
def test_qemu_flash_dataset_source(tmp_path):
    """The flash-embedded sample source gives the same run as the semihosting one."""
    cfg = _tiny_config(tmp_path, "full", backend="qemu", steps=8)
    cfg.source = "flash"
    _assert_matched(emulate(cfg).record)


@needs_qemu
@pytest.mark.qemu
def test_qemu_mcunet_paper_99kb_matches_on_m7(tmp_path):
    """MCUNet-5FPS, new 2-class head, the paper's 99 KB scheme, at 48x48: a few whole steps in QEMU."""
    cfg = EmulateConfig(
        model="mcunet-5fps",
        scheme="paper:99kb",
        dataset="faces",
        classes=2,
        resolution=48,
        board="m7",
        steps=4,
        max_test=4,
        build_dir=str(tmp_path / "b"),
        save_record=False,
    )
    rec = emulate(cfg).record
    _assert_matched(rec)
    assert rec["sram"]["total"] <= 256 * 1024
    # measured within a few KB of the prediction (the plan's stack and runtime-state figures are estimates)
    assert abs(rec["sram"]["total"] - rec["sram_predicted"]["total"]) < 8 * 1024


def test_plan_too_large_fails_before_building(tmp_path):
    cfg = EmulateConfig(
        model="mcunet-5fps",
        scheme="paper:99kb",
        dataset="faces",
        classes=2,
        resolution=224,  # 160 fits the m4 since the memory levers (248 KB of 256)
        board="m4",
        steps=1,
        build_dir=str(tmp_path / "b"),
        save_record=False,
    )
    with pytest.raises(TinytrainError) as exc:
        emulate(cfg)
    msg = str(exc.value)
    assert "does not fit" in msg and "arena" in msg and "trainable_weights" in msg
    assert not (tmp_path / "b").exists()  # nothing generated or built


@needs_qemu
@pytest.mark.qemu
def test_fault_names_the_kernel(tmp_path, monkeypatch):
    """A kernel that faults (here: a corrupted pointer in the generated call) gives a readable report
    naming the kernel, and a non-zero exit (FirmwareFault)."""
    import tinytrain.job.firmware as E

    real = E.generate_model

    def broken(*a, **kw):
        gen = real(*a, **kw)
        c = gen.files["model.c"]
        i = c.index("tt_dwconv2d_s8(", c.index("float tt_train_step("))
        j = c.index(", ", i)
        gen.files["model.c"] = c[:j] + " + 0xC0100000u" + c[j:]  # x -> 0xE01xxxxx: a bus fault
        return gen

    monkeypatch.setattr(E, "generate_model", broken)
    with pytest.raises(FirmwareFault) as exc:
        emulate(_tiny_config(tmp_path, "full", backend="qemu", steps=2))
    msg = str(exc.value)
    assert "tt_dwconv2d_s8" in msg and "fault" in msg
    assert FirmwareFault.exit_code != 0


def test_step_instructions_total_is_the_sum_of_the_phase_means():
    """Regression: the mean total was rounded separately from the phase means and could differ from
    their sum by one (forward 16587911 + loss 186 + backward 27606963 + update 157548 vs total 44352607)."""
    from tinytrain.emulate import step_instructions

    ev, exact = [], []
    for forward, backward in ((11, 21), (12, 22)):  # means 11.5 and 21.5 both round to even: 12 + 22
        for name, n in (("forward", forward), ("backward", backward)):
            ev.append({"ev": "phase", "name": name, "instr": 1})
            exact.append({"name": name, "instr": n, "source": "plugin"})
        ev.append({"ev": "step", "i": len(ev), "instr": 40})
    c = step_instructions(ev, exact)
    ips = c["per_step"]
    assert ips["total"] == ips["forward"] + ips["loss"] + ips["backward"] + ips["update"] == 34


def test_step_instructions_groups_phase_events_by_step():
    """Phase events between two step events belong to the later step; a first step run as
    tt_train_step_calls ("c<i>" phases) is summed by its calls' phases and left out of the means."""
    from types import SimpleNamespace

    from tinytrain.emulate import layers_per_step, step_instructions

    prog = [
        SimpleNamespace(kernel="conv2d_s8", layer="a", phase="forward"),
        SimpleNamespace(kernel="softmax_xent", layer="a", phase="loss"),
        SimpleNamespace(kernel="bias_grad_update", layer="a", phase="update"),
    ]
    ev = [
        {"ev": "phase", "name": "c0", "instr": 1},
        {"ev": "phase", "name": "c1", "instr": 1},
        {"ev": "phase", "name": "c2", "instr": 1},
        {"ev": "step", "i": 0, "instr": 400},
        {"ev": "phase", "name": "forward", "instr": 1},
        {"ev": "phase", "name": "loss", "instr": 1},
        {"ev": "phase", "name": "update", "instr": 1},
        {"ev": "step", "i": 1, "instr": 380},
        {"ev": "phase", "name": "forward", "instr": 1},
        {"ev": "phase", "name": "loss", "instr": 1},
        {"ev": "phase", "name": "update", "instr": 1},
        {"ev": "step", "i": 2, "instr": 390},
    ]
    exact = [
        {"name": e["name"], "instr": n, "source": "plugin"}
        for e, n in zip(
            [e for e in ev if e["ev"] == "phase"], [100, 10, 200, 98, 10, 190, 102, 10, 194], strict=True
        )
    ]
    c = step_instructions(ev, exact, prog)
    assert c["source"] == "plugin" and c["mean_over"] == 2 and c["totals"] == [310, 298, 306]
    assert c["per_step"] == {"forward": 100, "loss": 10, "backward": 0, "update": 192, "total": 302}
    assert c["call_systick"] == 385 and c["phase_events_per_step"] == 3
    assert [x["instr"] for x in c["calls"]] == [100, 10, 200]
    assert layers_per_step(c["calls"]) == [
        {"layer": "a", "forward": 100, "loss": 10, "backward": 0, "update": 200, "total": 310}
    ]
    # without the plugin: SysTick counts, same grouping
    c = step_instructions(ev[4:], [], prog)
    assert c["source"] == "systick" and c["per_step"]["total"] == 3 and c["mean_over"] == 2
