from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from emulation import run_elf, selftest
from emulation.build import BuildResult
from emulation.runner import decode_cfsr
from tinytrain import TinytrainError

from .conftest import needs_qemu

pytestmark = [pytest.mark.qemu, needs_qemu]


@pytest.mark.parametrize("board", ["m7", "m4", "stm32f405"])
def test_selftest_runs_and_reports(
    board: str, selftest_build: dict[str, BuildResult], tmp_path: Path
) -> None:
    rec = run_elf(selftest_build[board].elf, board, run_dir=tmp_path, timeout=20)
    assert rec.status == "ok" and rec.exit_code == 0, rec.message
    assert rec.metrics["dot_s8_agree"] == 1
    assert rec.metrics["dot_s8_scalar"] == rec.metrics["dot_s8_smlad"]
    assert [p["name"] for p in rec.phases] == ["dot_s8_scalar", "dot_s8_smlad", "fp32"]
    assert rec.phase("dot_s8_smlad") < rec.phase("dot_s8_scalar")
    assert rec.instructions and rec.instructions > sum(p["instr"] for p in rec.phases)
    mem = rec.memory
    assert mem is not None and mem.stack_high_water and 0 < mem.stack_high_water < 2048
    assert rec.peak_sram == mem.data + mem.bss + mem.stack_high_water
    assert mem.stack_size == mem.sram_size - mem.data - mem.bss
    saved = json.loads((tmp_path / "record.json").read_text())
    assert saved["status"] == "ok" and saved["peak_sram"] == rec.peak_sram


def test_two_runs_give_identical_instruction_counts(
    selftest_build: dict[str, BuildResult], tmp_path: Path
) -> None:
    elf = selftest_build["m7"].elf
    a = run_elf(elf, "m7", run_dir=tmp_path / "a")
    b = run_elf(elf, "m7", run_dir=tmp_path / "b")
    assert a.instructions == b.instructions
    assert a.phases == b.phases
    assert a.metrics == b.metrics


def test_profile_counts_per_class_and_symbol(selftest_build: dict[str, BuildResult], tmp_path: Path) -> None:
    rec = run_elf(selftest_build["m4"].elf, "m4", run_dir=tmp_path, profile=True)
    assert rec.ok and rec.profile is not None
    syms = rec.profile["symbols"]
    # 1024 int8 MACs: one MUL each in plain C; 8 SXTB16 + 4 SMLAD per 8 elements with SIMD
    assert syms["dot_s8_scalar"]["classes"]["mul"] == 1024
    assert syms["dot_s8_smlad"]["classes"]["simd"] == 1024 // 8 * 12
    assert syms["dot_f32"]["classes"]["fp_mac"] == 1024  # fmaf -> VFMA
    assert syms["fp_mix"]["classes"]["fp_div"] == 2048  # VSQRT + VDIV
    # the firmware's SysTick phase count agrees with the plugin's exact count (40-instruction ticks)
    assert abs(rec.phase("dot_s8_scalar") - syms["dot_s8_scalar"]["total"]) <= 80
    est = rec.profile["cycle_estimate"]
    assert est["core"] == "m4" and "estimate" in est["label"] and est["cycles"] > 0
    assert rec.profile["all"]["total"] == sum(s["total"] for s in syms.values())


def test_fault_is_reported_and_symbolised(tmp_path: Path) -> None:
    rec = selftest.run("m7", "fault", run_dir=tmp_path)
    assert rec.status == "fault" and rec.exit_code == 101
    assert rec.fault is not None
    assert rec.fault.function.startswith("main+")
    assert any("UNDEFINSTR" in r for r in rec.fault.reasons)
    assert "CFSR=0x00010000" in rec.message


def test_hang_times_out_with_the_last_uart_lines(tmp_path: Path) -> None:
    rec = selftest.run("m4", "hang", timeout=1.0, run_dir=tmp_path)
    assert rec.status == "timeout" and rec.exit_code is None
    assert "timed out after 1 s" in rec.message
    assert "about to hang" in rec.message
    assert rec.wall_s < 10


def test_semihosting_file_io(tmp_path: Path) -> None:
    rec = selftest.run("stm32f405", "file-io", run_dir=tmp_path)
    assert rec.ok, rec.message
    assert rec.metrics["file_sum"] == sum(selftest.FILE_IO_INPUT)
    assert (tmp_path / "selftest_out.bin").read_bytes() == bytes(b + 1 for b in selftest.FILE_IO_INPUT)


def test_elf_for_another_board_is_refused(selftest_build: dict[str, BuildResult], tmp_path: Path) -> None:
    with pytest.raises(TinytrainError, match="not linked for board `stm32f405`"):
        run_elf(selftest_build["m4"].elf, "stm32f405", run_dir=tmp_path)


def test_not_an_arm_elf_is_refused(tmp_path: Path) -> None:
    host = shutil.which("true") or "/bin/true"
    with pytest.raises(TinytrainError, match="not an ARM ELF"):
        run_elf(host, "m7", run_dir=tmp_path)


def test_decode_cfsr() -> None:
    reasons = decode_cfsr(0x00008200, 0x40000000)
    assert any(r.startswith("PRECISERR") for r in reasons)
    assert any(r.startswith("BFARVALID") for r in reasons)
    assert any(r.startswith("FORCED") for r in reasons)
