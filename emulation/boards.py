"""Board profiles. A board is data: `firmware/boards/<name>/board.json` (QEMU machine, core flags, memory
limits, clock, UART, instruction counter) plus its linker script; this module only reads them.

Adding a board = adding a folder with a board.json and a link.ld (MEMORY { FLASH, RAM } + INCLUDE
sections.ld); board.json's "cycles" section names the cycle model (emulation.cycles) and the cycles per
instruction assumed without a plugin profile. `tests/emulation/test_boards.py` checks that board.json and
link.ld agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

from tinytrain import FIRMWARE_DIR, TinytrainError

#: The board a job runs on when none is named (the paper's STM32F746-class Cortex-M7), and the one a
#: host-only run is planned for.
DEFAULT_BOARD = "m7"

BOARDS_DIR = FIRMWARE_DIR / "boards"
COMMON_DIR = BOARDS_DIR / "common"
INCLUDE_DIR = FIRMWARE_DIR / "include"


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    qemu_machine: str
    core: str  # "cortex-m4" | "cortex-m7": selects the cycle model
    cflags: tuple[str, ...]
    flash_origin: int
    flash_size: int
    sram_origin: int
    sram_size: int
    clock_hz: int  # nominal clock of the modelled MCU (for time estimates)
    cycle_model: str  # key into emulation.cycles.CORE_MODELS (board.json "cycles.model")
    # cycles per instruction assumed when no plugin profile measured the instruction mix (board.json
    # "cycles.fallback_cpi"): kernels are load/MAC loops, close to the per-class costs of the core's model
    fallback_cpi: float
    uart_driver: str
    uart_base: int
    counter_source: str
    counter_hz: int  # SysTick clock in QEMU
    instr_per_tick: Fraction  # instructions per SysTick tick under -icount shift=0 (measured)
    sources: tuple[Path, ...]  # board-layer C sources
    linker_script: Path
    directory: Path
    # the multiply-add contract the compiler picks for this board unless told (board.json "fma", default
    # true): fused where VFMA costs what VMUL does (M7), two roundings where VMUL + VADD is cheaper (M4: VFMA
    # takes 3 cycles, VMUL and VADD 1 each; docs/numerics.md "Fused multiply-add")
    fma: bool = True

    @property
    def include_dirs(self) -> tuple[Path, ...]:
        return (INCLUDE_DIR, COMMON_DIR)

    @property
    def defines(self) -> dict[str, str]:
        """Preprocessor defines the board layer (firmware/boards/common) needs."""
        return {
            "TT_BOARD_NAME": f'"{self.name}"',
            "TT_CLOCK_HZ": f"{self.clock_hz}u",
            "TT_UART_BASE": f"0x{self.uart_base:08x}u",
            "TT_INSTR_PER_TICK_NUM": str(self.instr_per_tick.numerator),
            "TT_INSTR_PER_TICK_DEN": str(self.instr_per_tick.denominator),
        }

    @property
    def cycle_core(self) -> str:
        """Key into emulation.cycles.CORE_MODELS (the board's cycle model)."""
        return self.cycle_model

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "qemu_machine": self.qemu_machine,
            "core": self.core,
            "flash_size": self.flash_size,
            "sram_size": self.sram_size,
            "clock_hz": self.clock_hz,
            "instr_per_tick": str(self.instr_per_tick),
            "fma": self.fma,
        }


def _load(directory: Path) -> Board:
    d = json.loads((directory / "board.json").read_text())
    if not isinstance(d.get("fma", True), bool):
        raise TinytrainError(
            f'{directory / "board.json"}: "fma" must be true or false (the board\'s multiply-add contract), '
            f"got {d['fma']!r}"
        )
    num, den = d["counter"]["instr_per_tick"]
    return Board(
        name=d["name"],
        description=d["description"],
        qemu_machine=d["qemu_machine"],
        core=d["core"],
        cflags=tuple(d["cflags"]),
        flash_origin=int(d["flash"]["origin"], 0),
        flash_size=int(d["flash"]["size"]),
        sram_origin=int(d["sram"]["origin"], 0),
        sram_size=int(d["sram"]["size"]),
        clock_hz=int(d["clock_hz"]),
        cycle_model=str(d["cycles"]["model"]),
        fallback_cpi=float(d["cycles"]["fallback_cpi"]),
        uart_driver=d["uart"]["driver"],
        uart_base=int(d["uart"]["base"], 0),
        counter_source=d["counter"]["source"],
        counter_hz=int(d["counter"]["emulated_hz"]),
        instr_per_tick=Fraction(num, den),
        sources=tuple(BOARDS_DIR / s for s in d["sources"]),
        linker_script=BOARDS_DIR / d["linker_script"],
        directory=directory,
        fma=bool(d.get("fma", True)),
    )


@cache
def all_boards() -> dict[str, Board]:
    """Every board under firmware/boards/, by name."""
    boards = {}
    for f in sorted(BOARDS_DIR.glob("*/board.json")):
        b = _load(f.parent)
        boards[b.name] = b
    return boards


def board_names() -> list[str]:
    return list(all_boards())


def get_board(board: str | Board | None = None) -> Board:
    """The profile called `board` (None: DEFAULT_BOARD); an unknown name is a TinytrainError that lists
    the valid ones. A Board is returned as it is: resolve a name once, then pass the Board down."""
    if isinstance(board, Board):
        return board
    if board is None:
        board = DEFAULT_BOARD
    boards = all_boards()
    if board not in boards:
        raise TinytrainError(f"unknown board `{board}`; valid boards: {', '.join(boards)}")
    return boards[board]
