"""emulation: build bare-metal firmware for an emulated Cortex-M board, run it in QEMU deterministically
and measure it (instructions per phase, per class and per function, cycle estimate, peak SRAM).

Public API:
    get_board(name) -> Board, board_names(), all_boards()
    build_firmware(board, sources, include_dirs, out_dir, defines, ...) -> BuildResult
    run_elf(elf, board, timeout=, run_dir=, profile=None, deterministic=) -> RunRecord
        (profile=None: the ttprof plugin when it can be built -> exact counts, per phase too;
         RunRecord.phase / phase_systick / phase_profile / top_kernels)
    static_memory(elf) -> StaticMemory, symbolize(elf, addr) -> str, ElfSymbols
    estimate_cycles(classes, core, extra, clock_hz) -> CycleEstimate
    emulation.selftest.run(board, mode) -> RunRecord
"""

from .boards import Board, all_boards, board_names, get_board
from .build import BuildResult, build_firmware
from .cycles import CORE_MODELS, CycleEstimate, estimate_cycles
from .elfinfo import ElfSymbols, StaticMemory, check_arm_elf, static_memory, symbolize
from .plugin import Profile, plugin_path
from .runner import FaultReport, MemoryReport, RunRecord, run_elf

__all__ = [
    "Board",
    "all_boards",
    "board_names",
    "get_board",
    "BuildResult",
    "build_firmware",
    "CORE_MODELS",
    "CycleEstimate",
    "estimate_cycles",
    "ElfSymbols",
    "StaticMemory",
    "check_arm_elf",
    "static_memory",
    "symbolize",
    "Profile",
    "plugin_path",
    "FaultReport",
    "MemoryReport",
    "RunRecord",
    "run_elf",
]
