"""Exact per-phase instruction counts: the phase markers in tt_phase_begin/tt_phase_end, the ttprof plugin's
marker report and per-phase buckets, and the runner pairing them with the UART phase events."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulation import run_elf, selftest
from emulation.build import BuildResult
from emulation.phases import BEGIN, END, ExactPhase, align, exact_phases

from .conftest import HAVE_ARM, needs_qemu

# firmware/app/selftest/main.c, mode "phases": assembly loops of known length
KNOWN_LOOP = 1 + 2 * 1000 + 2  # movw; 1000 x (subs, bne); ldr r0 + bl tt_phase_end
MMIO_LOOP = 3 + 4 * 500 + 2  # movw, movw, movt; 500 x (adds, ldr SYST_CVR, subs, bne); ldr r0 + bl
BOARDS = ("m7", "m4", "stm32f405")


# ---- the convention, without QEMU -----------------------------------------------------------------------


def test_exact_phases_flat_and_nested() -> None:
    a, b = 0x100, 0x200
    marks = [
        (BEGIN, a, 10),  # the begin marker load is instruction 10, its return 11
        (END, a, 30),  # instructions 12..29 ran in the phase (18), 30 is the end marker
        (BEGIN, b, 40),
        (BEGIN, a, 50),
        (END, a, 60),
        (END, b, 100),
    ]
    assert exact_phases(marks) == [
        ExactPhase(a, 18, 0),
        ExactPhase(a, 8, 1),
        # 41..99 minus the nested phase's three marker instructions (50, 51, 60)
        ExactPhase(b, 100 - 40 - 2 - 3, 0),
    ]


def test_end_without_begin_closes_nothing() -> None:
    assert exact_phases([(END, 1, 5), (BEGIN, 1, 10), (END, 1, 13)]) == [ExactPhase(1, 1, 0)]


def test_align_pairs_in_order_and_stops_at_a_name_mismatch() -> None:
    events = [
        {"name": "forward", "instr": 40, "depth": 0},
        {"name": "backward", "instr": 80, "depth": 0},
    ]
    marks = [(BEGIN, 1, 0), (END, 1, 39), (BEGIN, 2, 50), (END, 2, 130)]
    names = {1: "forward", 2: "backward"}
    al = align(events, marks, names.get)
    assert al.complete and al.paired == 2
    assert [(p["instr"], p["instr_systick"], p["source"]) for p in al.phases] == [
        (37, 40, "plugin"),
        (78, 80, "plugin"),
    ]
    assert al.key_names == names
    bad = align(events, marks, {1: "forward", 2: "update"}.get)
    assert not bad.complete and "`update`" in bad.message
    assert [p["source"] for p in bad.phases] == ["plugin", "systick"]
    assert bad.phases[1]["instr"] == 80


def test_align_reports_a_count_mismatch() -> None:
    events = [{"name": "forward", "instr": 40, "depth": 0}]
    al = align(events, [(BEGIN, 1, 0), (END, 1, 39), (BEGIN, 1, 50), (END, 1, 60)])
    assert al.phases[0]["source"] == "plugin" and "2 phases closed by markers, 1 phase events" in al.message


# ---- in QEMU ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phases_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuildResult]:
    if not HAVE_ARM:
        pytest.skip("arm-none-eabi-gcc not installed")
    root: Path = tmp_path_factory.mktemp("fw-phases")
    return {b: selftest.build(b, "phases", out_dir=root / b) for b in BOARDS}


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("board", BOARDS)
def test_known_loops_give_exact_counts(
    board: str, phases_build: dict[str, BuildResult], tmp_path: Path
) -> None:
    rec = run_elf(phases_build[board].elf, board, run_dir=tmp_path, profile=True)
    assert rec.ok, rec.message
    assert [p["name"] for p in rec.phases] == [
        "known_loop",
        "mmio_loop",
        "known_loop",
        "inner",
        "known_loop",
        "outer",
    ]
    assert all(p["source"] == "plugin" for p in rec.phases)
    assert rec.profile is not None and rec.profile["phase_alignment"]["complete"]
    # the same number whether the loop runs at depth 0 or nested; mmio_loop reads SYST_CVR in the middle of
    # a block: under -icount QEMU re-executes that load alone, and the rest of the block must count once
    assert [p["instr"] for p in rec.phases if p["name"] == "known_loop"] == [KNOWN_LOOP] * 3
    assert rec.phase("mmio_loop") == MMIO_LOOP
    assert rec.phase("known_loop") == 3 * KNOWN_LOOP
    # SysTick agrees to its resolution (plus its own bookkeeping)
    for p in rec.phases:
        assert abs(p["instr_systick"] - p["instr"]) <= 100, p
    assert rec.instructions_source == "plugin" and rec.instructions_systick is not None
    assert rec.instructions is not None and abs(rec.instructions - rec.instructions_systick) <= 100


@needs_qemu
@pytest.mark.qemu
def test_split_by_phase_sums_to_the_phase(phases_build: dict[str, BuildResult], tmp_path: Path) -> None:
    rec = run_elf(phases_build["m4"].elf, "m4", run_dir=tmp_path, profile=True)
    assert rec.ok and rec.profile is not None
    phases = rec.profile["phases"]
    assert set(phases) == {"known_loop", "mmio_loop", "inner", "outer"}
    for name, ph in phases.items():
        assert ph["instructions"] == rec.phase(name), name
        assert ph["occurrences"] == sum(p["name"] == name for p in rec.phases)
        assert ph["all"]["total"] == ph["instructions"], name
        assert sum(s["total"] for s in ph["symbols"].values()) == ph["instructions"], name
        assert sum(ph["all"]["classes"].values()) == ph["instructions"], name
        assert ph["cycle_estimate"]["cycles"] > 0 and "estimate" in ph["cycle_estimate"]["label"]
    assert rec.top_kernels("known_loop") == [("known_loop_phase", 3 * KNOWN_LOOP)]
    top = dict(rec.top_kernels("outer", 3))
    assert "dot_s8_scalar" in top and "dot_f32" in top
    inner = phases["inner"]["symbols"]
    assert inner["dot_f32"]["classes"]["fp_mac"] == 1024  # the kernel's VFMAs, all inside "inner"
    # nested phases count in their parents too
    assert phases["outer"]["symbols"]["dot_f32"]["classes"]["fp_mac"] == 1024
    assert phases["outer"]["symbols"]["dot_s8_scalar"]["classes"]["mul"] == 1024


@needs_qemu
@pytest.mark.qemu
def test_two_profiled_runs_are_identical(phases_build: dict[str, BuildResult], tmp_path: Path) -> None:
    a = run_elf(phases_build["m7"].elf, "m7", run_dir=tmp_path / "a", profile=True)
    b = run_elf(phases_build["m7"].elf, "m7", run_dir=tmp_path / "b", profile=True)
    assert a.ok and b.ok
    assert a.phases == b.phases
    assert a.instructions == b.instructions
    assert a.profile is not None and b.profile is not None
    assert a.profile["phases"] == b.profile["phases"]
    assert a.profile["all"] == b.profile["all"]


@needs_qemu
@pytest.mark.qemu
def test_without_the_plugin_counts_come_from_systick(
    phases_build: dict[str, BuildResult], tmp_path: Path
) -> None:
    rec = run_elf(phases_build["stm32f405"].elf, "stm32f405", run_dir=tmp_path, profile=False)
    assert rec.ok and rec.profile is None
    assert rec.instructions_source == "systick" and rec.instructions == rec.instructions_systick
    assert all(p["source"] == "systick" and p["instr"] == p["instr_systick"] for p in rec.phases)
    assert rec.phase("known_loop") == rec.phase_systick("known_loop")
    with pytest.raises(KeyError, match="profile=True"):
        rec.phase_profile("known_loop")


@needs_qemu
@pytest.mark.qemu
def test_profile_is_the_default(phases_build: dict[str, BuildResult], tmp_path: Path) -> None:
    rec = run_elf(phases_build["m4"].elf, "m4", run_dir=tmp_path)
    assert rec.profile is not None and rec.phase("mmio_loop") == MMIO_LOOP
