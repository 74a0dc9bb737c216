"""Reading firmware ELFs (pyelftools): checking they are ARM ELFs, static memory by section, the symbol
table and PC -> function symbolisation."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from tinytrain import TinytrainError

SHF_ALLOC = 0x2
SHT_NOBITS = 8

# Sections by role. Anything else allocated is reported as "other" in its region.
FLASH_ONLY = {
    ".vectors": "vectors",
    ".text": "text",
    ".rodata": "rodata",
    ".ARM.exidx": "other",
    ".ARM.extab": "other",
}


def check_arm_elf(path: str | Path) -> Path:
    """`path` if it is a 32-bit ARM ELF executable, else a TinytrainError saying what it is."""
    p = Path(path)
    if not p.is_file():
        raise TinytrainError(f"{p}: no such file")
    with p.open("rb") as f:
        magic = f.read(4)
        if magic != b"\x7fELF":
            raise TinytrainError(f"{p}: not an ELF file (expected an ARM ELF built for a board)")
        f.seek(0)
        try:
            elf = ELFFile(f)
            machine = elf["e_machine"]
        except ELFError as exc:
            raise TinytrainError(f"{p}: not a valid ELF file: {exc}") from None
    if machine != "EM_ARM":
        raise TinytrainError(
            f"{p}: not an ARM ELF (machine {machine}); build it with emulation.build_firmware"
        )
    return p


@dataclass
class SectionInfo:
    name: str
    addr: int
    size: int
    load_addr: int
    nobits: bool


@dataclass
class StaticMemory:
    """Static memory of an ELF, in bytes. Flash: vectors + text + rodata + other + data (its load image).
    SRAM: data + bss (the stack comes on top: from the end of .bss to the end of RAM)."""

    vectors: int = 0
    text: int = 0
    rodata: int = 0
    data: int = 0
    bss: int = 0
    other_flash: int = 0
    stack_min: int = 0  # the .stack reservation (the link-time minimum), not the stack used
    sections: list[SectionInfo] = field(default_factory=list)

    @property
    def flash(self) -> int:
        return self.vectors + self.text + self.rodata + self.other_flash + self.data

    @property
    def sram_static(self) -> int:
        return self.data + self.bss

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("sections")
        d["flash"] = self.flash
        d["sram_static"] = self.sram_static
        return d


def static_memory(path: str | Path) -> StaticMemory:
    p = check_arm_elf(path)
    mem = StaticMemory()
    with p.open("rb") as f:
        elf = ELFFile(f)
        lma = {}
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                lma[seg["p_vaddr"]] = seg["p_paddr"]
        for s in elf.iter_sections():
            if not s["sh_flags"] & SHF_ALLOC or s["sh_size"] == 0:
                continue
            name, size, nobits = s.name, s["sh_size"], s["sh_type"] == "SHT_NOBITS"
            mem.sections.append(
                SectionInfo(name, s["sh_addr"], size, lma.get(s["sh_addr"], s["sh_addr"]), nobits)
            )
            if name == ".stack":
                mem.stack_min += size
            elif name in FLASH_ONLY:
                role = FLASH_ONLY[name]
                if role == "other":
                    mem.other_flash += size
                else:
                    setattr(mem, role, getattr(mem, role) + size)
            elif nobits:
                mem.bss += size
            elif s["sh_flags"] & 0x1:  # SHF_WRITE: initialised data (RAM, loaded from flash)
                mem.data += size
            else:
                mem.other_flash += size
    return mem


@dataclass(frozen=True)
class Symbol:
    name: str
    addr: int  # Thumb bit cleared
    size: int
    kind: str  # "func" | "object"


class ElfSymbols:
    """Symbol table of an ELF: function ranges (for the plugin and for symbolising fault PCs) and RAM
    objects (for memory breakdowns)."""

    def __init__(self, path: str | Path) -> None:
        self.path = check_arm_elf(path)
        syms: list[Symbol] = []
        self.addresses: dict[str, int] = {}  # every defined named symbol (labels too) -> value
        self._strings: list[tuple[int, bytes]] = []  # (address, contents) of allocated PROGBITS sections
        with self.path.open("rb") as f:
            elf = ELFFile(f)
            for sec in elf.iter_sections():
                if sec["sh_flags"] & SHF_ALLOC and sec["sh_type"] == "SHT_PROGBITS" and sec["sh_size"]:
                    self._strings.append((sec["sh_addr"], sec.data()))
                if not isinstance(sec, SymbolTableSection):
                    continue
                for s in sec.iter_symbols():
                    t = s["st_info"]["type"]
                    defined = s.name and s["st_shndx"] != "SHN_UNDEF"
                    if defined and t in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE"):
                        value = s["st_value"] & ~1 if t == "STT_FUNC" else s["st_value"]
                        self.addresses.setdefault(s.name, value)
                    if t not in ("STT_FUNC", "STT_OBJECT") or not s.name or s["st_shndx"] == "SHN_UNDEF":
                        continue
                    kind = "func" if t == "STT_FUNC" else "object"
                    addr = s["st_value"] & ~1 if kind == "func" else s["st_value"]
                    syms.append(Symbol(s.name, addr, s["st_size"], kind))
        self.symbols = sorted(set(syms), key=lambda s: (s.addr, s.name))

    @cached_property
    def functions(self) -> list[Symbol]:
        # One symbol per address: prefer the one with a size (aliases share addresses).
        out: dict[int, Symbol] = {}
        for s in self.symbols:
            if s.kind == "func" and (s.addr not in out or (out[s.addr].size == 0 and s.size)):
                out[s.addr] = s
        return sorted(out.values(), key=lambda s: s.addr)

    @cached_property
    def _starts(self) -> list[int]:
        return [s.addr for s in self.functions]

    def function_at(self, addr: int) -> Symbol | None:
        """The function containing `addr` (Thumb bit ignored)."""
        addr &= ~1
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        s = self.functions[i]
        end = (
            s.addr + s.size if s.size else (self._starts[i + 1] if i + 1 < len(self._starts) else s.addr + 2)
        )
        return s if addr < end else None

    def address_of(self, name: str) -> int | None:
        """Value of the symbol `name` (a function's with the Thumb bit cleared), None if absent."""
        return self.addresses.get(name)

    def string_at(self, addr: int, limit: int = 256) -> str | None:
        """The NUL-terminated string the ELF holds at `addr` (initial contents; .rodata or .data), or None."""
        for start, data in self._strings:
            if start <= addr < start + len(data):
                raw = data[addr - start : addr - start + limit]
                end = raw.find(b"\0")
                if end < 0:
                    return None
                try:
                    return raw[:end].decode()
                except UnicodeDecodeError:
                    return None
        return None

    def symbolize(self, addr: int) -> str:
        """`func+0x12` for an address inside a function, else the hex address."""
        s = self.function_at(addr)
        return f"{s.name}+0x{(addr & ~1) - s.addr:x}" if s else f"0x{addr:08x}"

    def objects_in(self, start: int, end: int) -> list[Symbol]:
        """Data objects in [start, end), largest first (e.g. the biggest users of SRAM)."""
        objs = [s for s in self.symbols if s.kind == "object" and start <= s.addr < end and s.size]
        return sorted(objs, key=lambda s: -s.size)

    def write_plugin_symbols(self, path: str | Path) -> Path:
        """The symbol file the ttprof plugin reads: "start end name" per function, sorted, hex."""
        p = Path(path)
        lines = []
        fns = self.functions
        for i, s in enumerate(fns):
            end = s.addr + s.size if s.size else (fns[i + 1].addr if i + 1 < len(fns) else s.addr + 2)
            lines.append(f"{s.addr:x} {end:x} {s.name}\n")
        p.write_text("".join(lines))
        return p


def symbolize(elf: str | Path, addr: int) -> str:
    """Map a PC (e.g. from a fault report) to `function+offset` using the ELF symbol table."""
    return ElfSymbols(elf).symbolize(addr)


def call_graph(elf: str | Path) -> dict[str, set[str]]:
    """callee -> callers, from the direct calls and (conditional) tail calls in the ELF's disassembly
    (arm-none-eabi-objdump); empty when objdump is not installed."""
    import re
    import shutil
    import subprocess

    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump is None:
        return {}
    text = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", str(elf)], capture_output=True, text=True, check=False
    ).stdout
    callers: dict[str, set[str]] = {}
    current = ""
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <([\w.$]+)>:$", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(
            r"\s(?:bl|blx|b|b\.w|b\.n|b[a-z]{2}(?:\.w|\.n)?)\s+[0-9a-f]+ <([\w.$]+)(?:\+0x[0-9a-f]+)?>", line
        )
        if m and current and m.group(1) != current:
            callers.setdefault(m.group(1), set()).add(current)
    return callers


def reaching(function: str, targets: set[str], callers: dict[str, set[str]], depth: int = 6) -> set[str]:
    """The functions of `targets` from which `function` is reachable through at most `depth` calls
    (`function` itself when it is one); the search does not go through a target."""
    if function in targets:
        return {function}
    found: set[str] = set()
    frontier, seen = {function}, {function}
    for _ in range(depth):
        nxt: set[str] = set()
        for f in frontier:
            for c in callers.get(f, ()):
                if c in targets:
                    found.add(c)
                elif c not in seen:
                    seen.add(c)
                    nxt.add(c)
        frontier = nxt
        if not frontier:
            break
    return found
