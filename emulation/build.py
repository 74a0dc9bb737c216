"""Building bare-metal firmware for a board: arm-none-eabi-gcc on a list of sources, with the board layer
(startup, UART, counter, tt_board.h) added, linked with the board's linker script.

Flags: -O2 -ffp-contract=off (host and device round the same way; use fmaf() for fused MACs)
-fno-tree-loop-distribute-patterns (no hidden memcpy/memset calls) -fno-math-errno (sqrtf is one VSQRT)
-ffunction-sections -fdata-sections -Wl,--gc-sections. Libraries: newlib-nano libc (memcpy etc.), libm,
libgcc; no newlib start files or syscalls: the board layer is the C runtime.

A link that overflows a memory region becomes a TinytrainError "does not fit: needs X bytes of SRAM,
board `m7` has Y", never a raw ld error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tinytrain import REPO_ROOT, TinytrainError, children

from .boards import COMMON_DIR, Board, get_board
from .elfinfo import StaticMemory, static_memory
from .toolchain import ARM_GCC, ToolMissing, find_tool, newlib_libc

BUILD_DIR = REPO_ROOT / "build" / "firmware"

COMMON_CFLAGS = (
    "-O2",
    "-g",
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-ffp-contract=off",
    "-fno-tree-loop-distribute-patterns",
    "-fno-math-errno",
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-common",
)

_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


@dataclass
class BuildResult:
    board: str
    elf: Path
    map_file: Path
    command: list[str]
    memory: StaticMemory

    def to_dict(self) -> dict[str, object]:
        return {
            "board": self.board,
            "elf": str(self.elf),
            "map_file": str(self.map_file),
            "memory": self.memory.to_dict(),
        }


def does_not_fit_message(ld_output: str, board: Board, stack_min: int) -> str | None:
    """The user-facing message for a region overflow in ld's output, or None if there is none."""
    msgs = []
    for region, over in dict(_OVERFLOW.findall(ld_output)).items():
        n = int(over)
        if region == "RAM":
            msgs.append(
                f"does not fit: needs {board.sram_size + n} bytes of SRAM (static data + bss + the minimum "
                f"stack of {stack_min}), board `{board.name}` has {board.sram_size}"
            )
        elif region == "FLASH":
            msgs.append(
                f"does not fit: needs {board.flash_size + n} bytes of flash, board `{board.name}` has "
                f"{board.flash_size}"
            )
        else:
            msgs.append(f"does not fit: region {region} overflowed by {n} bytes on board `{board.name}`")
    return "; ".join(msgs) or None


def _define_flag(name: str, value: object) -> str:
    return f"-D{name}" if value is None else f"-D{name}={value}"


def build_firmware(
    board: str | Board,
    sources: Sequence[str | Path],
    include_dirs: Sequence[str | Path] = (),
    out_dir: str | Path | None = None,
    defines: Mapping[str, object] | None = None,
    *,
    name: str = "app",
    extra_cflags: Sequence[str] = (),
    stack_min: int = 4096,
    libs: Sequence[str] = ("-lm",),
) -> BuildResult:
    """Compile and link `sources` (plus the board layer) into `<out_dir>/<name>.elf` for `board`.

    `defines` maps macro -> value (None for a bare -DNAME). `stack_min` is the stack the link must leave
    free (bytes); the stack really spans all RAM after .bss. Raises TinytrainError for an unknown board,
    a missing toolchain, a compile error (with the compiler's messages) or a memory overflow."""
    b = get_board(board)
    gcc = find_tool(ARM_GCC)
    if newlib_libc(b.cflags) is None:
        raise ToolMissing("newlib", "newlib (libc.a for arm-none-eabi)")
    out = (Path(out_dir) if out_dir is not None else BUILD_DIR / f"{name}-{b.name}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    elf = out / f"{name}.elf"
    map_file = out / f"{name}.map"
    srcs = [Path(s).resolve() for s in (*b.sources, *sources)]
    for s in srcs:
        if not s.is_file():
            raise TinytrainError(f"source file not found: {s}")
    all_defines = {**b.defines, **(defines or {})}
    cmd = [
        gcc,
        *b.cflags,
        *COMMON_CFLAGS,
        *extra_cflags,
        *(f"-I{Path(d).resolve()}" for d in (*b.include_dirs, *include_dirs)),
        *(_define_flag(k, v) for k, v in all_defines.items()),
        *(str(s) for s in srcs),
        "-nostartfiles",
        "--specs=nano.specs",
        "-Wl,--gc-sections",
        f"-Wl,-Map={map_file}",
        f"-Wl,--defsym=__stack_min={stack_min}",
        f"-L{COMMON_DIR}",
        f"-T{b.linker_script}",
        *libs,
        "-o",
        str(elf),
    ]
    elf.unlink(missing_ok=True)
    proc = children.run(cmd, text=True, cwd=out)  # killed with tinytrain (tinytrain.children)
    if proc.returncode != 0:
        msg = does_not_fit_message(proc.stderr, b, stack_min)
        if msg:
            raise TinytrainError(msg)
        raise TinytrainError(f"firmware build for `{b.name}` failed:\n{proc.stderr.strip()}")
    return BuildResult(board=b.name, elf=elf, map_file=map_file, command=cmd, memory=static_memory(elf))
