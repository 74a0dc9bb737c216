from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emulation.build import BuildResult
from emulation.elfinfo import ElfSymbols, check_arm_elf, static_memory, symbolize
from tinytrain import TinytrainError

from .conftest import needs_arm


def test_not_an_elf(tmp_path: Path) -> None:
    p = tmp_path / "model.bin"
    p.write_bytes(b"hello")
    with pytest.raises(TinytrainError, match="not an ELF file"):
        check_arm_elf(p)
    with pytest.raises(TinytrainError, match="no such file"):
        check_arm_elf(tmp_path / "missing.elf")


def test_host_elf_is_not_an_arm_elf() -> None:
    with pytest.raises(TinytrainError, match="not an ARM ELF"):
        check_arm_elf(
            sys.executable if Path(sys.executable).resolve().read_bytes()[:4] == b"\x7fELF" else "/bin/sh"
        )


@needs_arm
def test_static_memory_matches_binutils(selftest_build: dict[str, BuildResult]) -> None:
    elf = selftest_build["m7"].elf
    mem = static_memory(elf)
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True).stdout
    sizes = {ln.split()[0]: int(ln.split()[1]) for ln in out.splitlines() if ln.startswith(".")}
    assert mem.text == sizes[".text"]
    assert mem.rodata == sizes[".rodata"]
    assert mem.data == sizes.get(".data", 0)
    assert mem.bss == sizes[".bss"]
    assert mem.stack_min == sizes[".stack"] == 4096
    assert mem.bss >= 2 * 1024 + 2 * 4096  # the self-test's int8 and fp32 arrays
    assert mem.flash == mem.vectors + mem.text + mem.rodata + mem.other_flash + mem.data


@needs_arm
def test_symbols_and_symbolize(selftest_build: dict[str, BuildResult]) -> None:
    elf = selftest_build["m4"].elf
    syms = ElfSymbols(elf)
    f = next(s for s in syms.functions if s.name == "dot_s8_scalar")
    assert f.addr % 2 == 0 and f.size > 0
    assert symbolize(elf, f.addr + 4) == "dot_s8_scalar+0x4"
    assert syms.symbolize(f.addr | 1) == "dot_s8_scalar+0x0"
    assert syms.symbolize(0x1FFFFFF0) == "0x1ffffff0"
    objs = syms.objects_in(0x20000000, 0x20040000)
    assert {"xa", "xb", "fa", "fb"} <= {o.name for o in objs}
    assert objs[0].size == 4096
