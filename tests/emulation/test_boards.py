from __future__ import annotations

import re
from fractions import Fraction

import pytest

from emulation.boards import all_boards, board_names, get_board
from tinytrain import TinytrainError


def test_the_three_boards_exist_with_their_limits() -> None:
    b = all_boards()
    assert {"m7", "m4", "stm32f405"} <= set(b)
    assert (b["m7"].qemu_machine, b["m7"].sram_size, b["m7"].flash_size, b["m7"].clock_hz) == (
        "mps2-an500",
        320 * 1024,
        1024 * 1024,
        216_000_000,
    )
    assert (b["m4"].qemu_machine, b["m4"].sram_size, b["m4"].clock_hz) == (
        "mps2-an386",
        256 * 1024,
        168_000_000,
    )
    s = b["stm32f405"]
    assert (s.qemu_machine, s.flash_origin, s.sram_size) == ("netduinoplus2", 0x08000000, 192 * 1024)
    assert b["m7"].cycle_core == "m7" and b["m4"].cycle_core == "m4" and s.cycle_core == "m4"


def test_instructions_per_tick_match_the_measured_systick_clock() -> None:
    for b in all_boards().values():
        # -icount shift=0: 1 instruction = 1 ns, so instructions per tick = 1e9 / SysTick clock
        assert b.instr_per_tick == Fraction(10**9, b.counter_hz), b.name


def test_unknown_board_lists_the_valid_ones() -> None:
    with pytest.raises(TinytrainError) as e:
        get_board("m9")
    msg = str(e.value)
    assert "unknown board `m9`" in msg
    for name in board_names():
        assert name in msg


@pytest.mark.parametrize("name", ["m7", "m4", "stm32f405"])
def test_board_json_agrees_with_the_linker_script(name: str) -> None:
    b = get_board(name)
    text = b.linker_script.read_text()
    regions = {
        m[0]: (int(m[1], 16), int(m[2]) * 1024)
        for m in re.findall(
            r"(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9a-fA-F]+),\s*LENGTH\s*=\s*(\d+)K", text
        )
    }
    assert regions["FLASH"] == (b.flash_origin, b.flash_size)
    assert regions["RAM"] == (b.sram_origin, b.sram_size)
    for src in b.sources:
        assert src.is_file()


def test_board_defines_for_the_board_layer() -> None:
    d = get_board("stm32f405").defines
    assert d["TT_BOARD_NAME"] == '"stm32f405"'
    assert d["TT_UART_BASE"] == "0x40011000u"
    assert (d["TT_INSTR_PER_TICK_NUM"], d["TT_INSTR_PER_TICK_DEN"]) == ("125", "21")


def test_board_facts_are_data_and_the_default_is_one_constant() -> None:
    from emulation.boards import DEFAULT_BOARD
    from emulation.cycles import CORE_MODELS

    assert get_board() is get_board(DEFAULT_BOARD) and get_board(get_board("m4")).name == "m4"
    for b in all_boards().values():
        assert b.cycle_model in CORE_MODELS and b.fallback_cpi > 0, b.name
    # the cycles per instruction assumed without a plugin profile (formerly a table in the code)
    assert (get_board("m7").fallback_cpi, get_board("m4").fallback_cpi) == (1.0, 1.5)


def test_one_call_graph_walk_for_faults_and_the_bench() -> None:
    from emulation.elfinfo import reaching
    from tinytrain.bench.kernels import owners

    callers = {"helper": {"tt_a", "inner"}, "inner": {"tt_b"}, "tt_a": {"main"}, "lonely": set()}
    kernels = {"tt_a", "tt_b"}
    assert reaching("helper", kernels, callers) == {"tt_a", "tt_b"} == owners("helper", kernels, callers)
    assert reaching("helper", kernels, callers, depth=1) == {"tt_a"}  # tt_b is two calls away
    assert reaching("tt_a", kernels, callers) == {"tt_a"} and reaching("lonely", kernels, callers) == set()


def test_board_multiply_add_contract_is_a_json_boolean(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """m7 fused, m4 two roundings (docs/numerics.md); a board.json `fma` that is not true/false is one clear
    error naming the file, not a silent truthy string."""
    import json

    from emulation.boards import _load

    assert get_board("m7").fma is True and get_board("m4").fma is False
    d = json.loads((get_board("m4").directory / "board.json").read_text())
    (tmp_path / "board.json").write_text(json.dumps({**d, "fma": "false"}))
    with pytest.raises(TinytrainError, match=r'board.json: "fma" must be true or false'):
        _load(tmp_path)
