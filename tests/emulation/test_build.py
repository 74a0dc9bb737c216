from __future__ import annotations

from pathlib import Path

import pytest

from emulation import build_firmware, get_board
from emulation.build import does_not_fit_message
from emulation.selftest import SELFTEST_DIR
from tinytrain import TinytrainError

from .conftest import needs_arm

LD_RAM = """/usr/bin/arm-none-eabi-ld: app.elf section `.bss' will not fit in region `RAM'
/usr/bin/arm-none-eabi-ld: region `RAM' overflowed by 96336 bytes
collect2: error: ld returned 1 exit status"""


def test_region_overflow_becomes_a_clear_message() -> None:
    msg = does_not_fit_message(LD_RAM, get_board("m7"), 4096)
    assert msg is not None
    assert msg.startswith("does not fit: needs 424016 bytes of SRAM")
    assert "board `m7` has 327680" in msg
    flash = does_not_fit_message("region `FLASH' overflowed by 10 bytes", get_board("m4"), 4096)
    assert flash == "does not fit: needs 1048586 bytes of flash, board `m4` has 1048576"
    assert does_not_fit_message("undefined reference to `foo'", get_board("m4"), 4096) is None


@needs_arm
@pytest.mark.parametrize("board", ["m7", "stm32f405"])
def test_sram_overflow_is_a_tinytrain_error(board: str, tmp_path: Path) -> None:
    with pytest.raises(TinytrainError) as e:
        build_firmware(board, [SELFTEST_DIR / "main.c"], out_dir=tmp_path, defines={"TT_SELFTEST_MODE": 3})
    msg = str(e.value)
    assert msg.startswith("does not fit: needs ")
    assert f"board `{board}` has {get_board(board).sram_size}" in msg
    assert "region `" not in msg and "collect2" not in msg


@needs_arm
def test_stack_min_counts_against_sram(tmp_path: Path) -> None:
    # The self-test (about 10 KB static) fits m7 with a 300 KB stack but not with 320 KB.
    build_firmware("m7", [SELFTEST_DIR / "main.c"], out_dir=tmp_path / "a", stack_min=300 * 1024)
    with pytest.raises(TinytrainError, match="minimum stack of 327680"):
        build_firmware("m7", [SELFTEST_DIR / "main.c"], out_dir=tmp_path / "b", stack_min=320 * 1024)


@needs_arm
def test_compile_error_is_reported(tmp_path: Path) -> None:
    src = tmp_path / "bad.c"
    src.write_text("int main(void) { return undeclared; }\n")
    with pytest.raises(TinytrainError, match="undeclared"):
        build_firmware("m4", [src], out_dir=tmp_path)


def test_unknown_board_and_missing_source(tmp_path: Path) -> None:
    with pytest.raises(TinytrainError, match="valid boards: "):
        build_firmware("nope", [], out_dir=tmp_path)
