"""Running an ELF on an emulated board (QEMU) and turning what it did into a RunRecord.

Deterministic by default: `-icount shift=0,align=off,sleep=off` makes virtual time advance 1 ns per
guest instruction, so the firmware's SysTick instruction counter repeats exactly from run to run.
Profiled by default (when the host gcc can build the ttprof plugin): the instruction counts of the record
(total and per phase) are then exact, from the plugin, with the SysTick figures kept alongside
(`instructions_systick`, each phase's `instr_systick`; `instructions_source` / a phase's `source` say which
one `instructions` / `instr` is).
The UART goes to `<run_dir>/uart.log`; semihosting (exit status, file I/O) is on with QEMU's working
directory = run_dir, so relative paths the firmware opens are files in the run directory. A wall-clock
timeout kills QEMU and the record says so, with the last UART lines.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile

from tinytrain import REPO_ROOT, TinytrainError, children
from tinytrain.atomic import write_text

from . import phases as phase_marks
from . import protocol
from .boards import Board, get_board
from .elfinfo import ElfSymbols, StaticMemory, check_arm_elf, static_memory
from .plugin import Profile, plugin_path
from .toolchain import QEMU, ToolMissing, find_tool

RUNS_DIR = REPO_ROOT / "build" / "runs"

#: Exit statuses the board layer uses (firmware/include/tt_board.h).
EXIT_FAULT = 101
EXIT_STACK_OVERFLOW = 102
EXIT_UNEXPECTED_IRQ = 103

ICOUNT = "shift=0,align=off,sleep=off"

CFSR_BITS = {
    0: "IACCVIOL: instruction fetch from a no-execute/protected region",
    1: "DACCVIOL: data access violation (MPU)",
    3: "MUNSTKERR: MemManage fault on exception return unstacking",
    4: "MSTKERR: MemManage fault on exception entry stacking",
    5: "MLSPERR: MemManage fault during lazy FP state preservation",
    7: "MMARVALID: MMFAR holds the faulting address",
    8: "IBUSERR: bus error on instruction fetch",
    9: "PRECISERR: precise data bus error (BFAR holds the address)",
    10: "IMPRECISERR: imprecise data bus error",
    11: "UNSTKERR: bus fault on exception return unstacking",
    12: "STKERR: bus fault on exception entry stacking (stack overflow?)",
    13: "LSPERR: bus fault during lazy FP state preservation",
    15: "BFARVALID: BFAR holds the faulting address",
    16: "UNDEFINSTR: undefined instruction",
    17: "INVSTATE: invalid state (Thumb bit clear: a bad function pointer?)",
    18: "INVPC: invalid PC load on exception return",
    19: "NOCP: coprocessor (FPU) access while disabled",
    24: "UNALIGNED: unaligned access trap",
    25: "DIVBYZERO: integer division by zero",
}
HFSR_BITS = {
    1: "VECTTBL: bus fault on vector table read",
    30: "FORCED: escalated configurable fault",
    31: "DEBUGEVT: debug event",
}


def decode_cfsr(cfsr: int, hfsr: int = 0) -> list[str]:
    """Human-readable names of the bits set in CFSR and HFSR."""
    out = [text for bit, text in CFSR_BITS.items() if cfsr >> bit & 1]
    out += [text for bit, text in HFSR_BITS.items() if hfsr >> bit & 1]
    return out


@dataclass
class FaultReport:
    exception: str
    cfsr: int
    hfsr: int
    mmfar: int
    bfar: int
    pc: int
    lr: int
    xpsr: int = 0
    sp: int = 0
    function: str = ""  # PC symbolised: "func+0x12"
    caller: str = ""  # LR symbolised
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def from_event(cls, ev: dict[str, Any], symbols: ElfSymbols | None = None) -> FaultReport:
        def h(key: str) -> int:
            v = ev.get(key, 0)
            return int(v, 16) if isinstance(v, str) else int(v)

        r = cls(
            exception=str(ev.get("exception", "?")),
            cfsr=h("cfsr"),
            hfsr=h("hfsr"),
            mmfar=h("mmfar"),
            bfar=h("bfar"),
            pc=h("pc"),
            lr=h("lr"),
            xpsr=h("xpsr"),
            sp=h("sp"),
        )
        r.reasons = decode_cfsr(r.cfsr, r.hfsr)
        if symbols is not None:
            r.function = symbols.symbolize(r.pc)
            r.caller = symbols.symbolize(r.lr)
        return r

    def describe(self) -> str:
        lines = [
            f"{self.exception} at pc=0x{self.pc:08x} ({self.function or '?'}), lr=0x{self.lr:08x} "
            f"({self.caller or '?'})",
            f"CFSR=0x{self.cfsr:08x} HFSR=0x{self.hfsr:08x} MMFAR=0x{self.mmfar:08x} BFAR=0x{self.bfar:08x}",
        ]
        lines += [f"  {r}" for r in self.reasons]
        return "\n".join(lines)


@dataclass
class MemoryReport:
    """Measured peak SRAM = static (.data + .bss) + the stack high-water mark (painted at reset)."""

    sram_size: int
    flash_size: int
    flash_used: int
    data: int
    bss: int
    stack_high_water: int | None
    stack_size: int | None
    largest_ram_objects: dict[str, int] = field(default_factory=dict)

    @property
    def peak_sram(self) -> int | None:
        if self.stack_high_water is None:
            return None
        return self.data + self.bss + self.stack_high_water

    @property
    def breakdown(self) -> dict[str, int | None]:
        return {"data": self.data, "bss": self.bss, "stack": self.stack_high_water}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["peak_sram"] = self.peak_sram
        d["breakdown"] = self.breakdown
        return d


@dataclass
class RunRecord:
    """One run of one ELF on one board. JSON-serialisable (to_dict / to_json / save)."""

    board: str
    elf: str
    status: str  # "ok" | "failed" | "fault" | "stack-overflow" | "timeout" | "killed" | "error"
    exit_code: int | None
    # Instructions from main to tt_exit: exact (plugin) when profiled, else the firmware's SysTick count.
    instructions: int | None
    wall_s: float
    deterministic: bool
    # {"name", "instr", "depth", "instr_systick", "source"} per phase event, in the order they ended;
    # "instr" is exact when "source" is "plugin" (see emulation.phases for the convention).
    phases: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    uart_log: str = ""
    uart_tail: list[str] = field(default_factory=list)
    fault: FaultReport | None = None
    memory: MemoryReport | None = None
    profile: dict[str, Any] | None = None  # plugin counts + cycle estimate (when profile=True)
    run_dir: str = ""
    qemu_command: list[str] = field(default_factory=list)
    instructions_systick: int | None = None  # the firmware's own count at tt_exit (SysTick resolution)
    instructions_source: str | None = None  # "plugin" (exact) | "systick" | None (no count)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def peak_sram(self) -> int | None:
        return self.memory.peak_sram if self.memory else None

    def phase(self, name: str) -> int:
        """Instructions of phase `name` (summed over its occurrences; exact when profiled); KeyError if it
        never ended."""
        return self._phase_sum(name, "instr")

    def phase_systick(self, name: str) -> int:
        """Like `phase`, from the firmware's SysTick counts (one tick resolution)."""
        return self._phase_sum(name, "instr_systick")

    def _phase_sum(self, name: str, key: str) -> int:
        hits = [p.get(key, p["instr"]) for p in self.phases if p["name"] == name]
        if not hits:
            raise KeyError(f"no phase {name!r}; have {sorted({p['name'] for p in self.phases})}")
        return int(sum(hits))

    def phase_profile(self, name: str) -> dict[str, Any]:
        """The plugin's breakdown of phase `name` (all occurrences): "instructions", "occurrences", "all"
        (class counts, cycle estimate) and "symbols" (function -> counts, largest first). KeyError if the
        run was not profiled or the phase has no breakdown."""
        phases = (self.profile or {}).get("phases") or {}
        if name not in phases:
            raise KeyError(f"no profile of phase {name!r}; have {sorted(phases)} (profile=True?)")
        return dict(phases[name])

    def top_kernels(self, phase: str | None = None, n: int = 10) -> list[tuple[str, int]]:
        """(function, exact instructions), largest first: within phase `phase`, or over the whole run."""
        if phase is None:
            if not self.profile:
                raise KeyError("no profile (run with profile=True)")
            syms = self.profile["symbols"]
        else:
            syms = self.phase_profile(phase)["symbols"]
        return [(k, int(v["total"])) for k, v in list(syms.items())[:n]]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fault"] = asdict(self.fault) if self.fault else None
        d["memory"] = self.memory.to_dict() if self.memory else None
        d["peak_sram"] = self.peak_sram
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | Path) -> Path:
        return write_text(path, self.to_json() + "\n")

    def summary(self) -> str:
        parts = [f"{self.board}: {self.status}", f"exit {self.exit_code}"]
        if self.instructions is not None:
            exact = " (exact)" if self.instructions_source == "plugin" else ""
            parts.append(f"{self.instructions} instructions{exact}")
        if self.peak_sram is not None:
            parts.append(f"peak SRAM {self.peak_sram} B")
        parts.append(f"{self.wall_s:.2f} s")
        s = ", ".join(parts)
        if self.message:
            s += "\n" + self.message
        return s


class EmulatorKilled(TinytrainError):
    """The emulator was killed by a signal tinytrain did not send (not a timeout, not a firmware fault)."""

    exit_code = 4


def _check_elf_for_board(elf: Path, board: Board) -> None:
    size = elf.stat().st_size
    try:
        with elf.open("rb") as f:
            segs = [
                (s["p_paddr"], s["p_offset"], s["p_filesz"])
                for s in ELFFile(f).iter_segments()
                if s["p_type"] == "PT_LOAD" and s["p_filesz"]
            ]
    except Exception as exc:  # pyelftools raises ELFError, struct and construct errors on a damaged file
        raise TinytrainError(
            f"{elf}: corrupt or truncated ELF ({type(exc).__name__}: {exc}); rebuild it"
        ) from None
    if not segs:
        raise TinytrainError(f"{elf}: the ELF has no loadable segment (truncated or not a firmware image)")
    for addr, off, n in segs:
        if off + n > size:
            raise TinytrainError(
                f"{elf}: truncated ELF: the segment loaded at 0x{addr:08x} needs bytes {off}..{off + n} of a "
                f"{size}-byte file; rebuild it"
            )
    loads = [a for a, _, _ in segs]
    lo, hi = board.flash_origin, board.flash_origin + board.flash_size
    if loads and not any(lo <= a < hi for a in loads):
        raise TinytrainError(
            f"{elf} was not linked for board `{board.name}` (loads at 0x{min(loads):08x}, "
            f"its flash is 0x{lo:08x}-0x{hi:08x})"
        )


def qemu_command(
    board: Board, elf: Path, uart_log: Path, deterministic: bool = True, plugin_args: list[str] | None = None
) -> list[str]:
    cmd = [
        find_tool(QEMU),
        "-M",
        board.qemu_machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        f"file:{uart_log}",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
        str(elf),
    ]
    if deterministic:
        cmd += ["-icount", ICOUNT]
    if plugin_args is not None:
        cmd += ["-plugin", ",".join([str(plugin_path()), *plugin_args]), "-d", "plugin"]
    return cmd


def run_elf(
    elf: str | Path,
    board: str | Board,
    *,
    timeout: float = 60.0,
    run_dir: str | Path | None = None,
    profile: bool | None = None,
    deterministic: bool = True,
    extra_qemu_args: tuple[str, ...] = (),
    tail_lines: int = 20,
) -> RunRecord:
    """Run `elf` on `board` in QEMU until the firmware exits (semihosting) or `timeout` wall-clock
    seconds pass. The record is also written to `<run_dir>/record.json`.

    `profile` loads the ttprof plugin: exact instruction counts (total, per phase, per class and per
    function, per function within each phase) and cycle estimates; it costs a few per cent of wall time.
    None (the default) profiles when the plugin can be built (a host gcc), True requires it, False runs
    without (SysTick counts only)."""
    b = get_board(board)
    if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise TinytrainError(f"timeout must be a finite number of seconds > 0, not {timeout!r}")
    try:
        elf_path = check_arm_elf(elf).resolve()
    except TinytrainError:
        raise
    except Exception as exc:  # a header too short for pyelftools
        raise TinytrainError(
            f"{elf}: corrupt or truncated ELF ({type(exc).__name__}: {exc}); rebuild it"
        ) from None
    _check_elf_for_board(elf_path, b)
    rd = Path(run_dir) if run_dir is not None else RUNS_DIR / f"{elf_path.stem}-{b.name}"
    rd.mkdir(parents=True, exist_ok=True)
    rd = rd.resolve()
    uart = rd / "uart.log"
    uart.unlink(missing_ok=True)
    try:
        symbols = ElfSymbols(elf_path)
    except TinytrainError:
        raise
    except Exception as exc:  # a truncated symbol table or section
        raise TinytrainError(
            f"{elf_path}: corrupt or truncated ELF ({type(exc).__name__}: {exc}); rebuild it"
        ) from None
    plugin_args = None
    prof_path = rd / "profile.json"
    if profile is None:
        profile = plugin_buildable()
    if profile:
        prof_path.unlink(missing_ok=True)
        symbols.write_plugin_symbols(rd / "symbols.txt")
        plugin_args = [f"out={prof_path}", f"syms={rd / 'symbols.txt'}", *marker_args(symbols)]
    cmd = [*qemu_command(b, elf_path, uart, deterministic, plugin_args), *extra_qemu_args]
    if profile:
        cmd += ["-D", str(rd / "plugin.log")]

    t0 = time.monotonic()
    with (rd / "qemu.out").open("wb") as out:
        # own process group, killed with tinytrain (signal, error, exit, SIGKILL: tinytrain.children)
        proc = children.spawn(cmd, cwd=rd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        timed_out = False
        try:
            rc: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            children.kill_group(proc)
            rc = None
        except BaseException:  # Ctrl-C, SIGTERM (children.Terminated), any error: QEMU goes too
            children.kill_group(proc)
            raise
        finally:
            children.reap(proc)
    wall = time.monotonic() - t0

    text = uart.read_text(errors="replace") if uart.exists() else ""
    lines = [ln.rstrip("\r") for ln in text.splitlines()]
    events = protocol.parse_output(text)
    exit_ev = protocol.last(events, "exit")
    fault_ev = protocol.last(events, "fault")
    systick_total = int(exit_ev["instr"]) if exit_ev and "instr" in exit_ev else None
    rec = RunRecord(
        board=b.name,
        elf=str(elf_path),
        status="ok",
        exit_code=rc,
        instructions=systick_total,
        instructions_systick=systick_total,
        instructions_source="systick" if systick_total is not None else None,
        wall_s=round(wall, 4),
        deterministic=deterministic,
        phases=[{**p, "instr_systick": p["instr"], "source": "systick"} for p in protocol.phases(events)],
        metrics=protocol.metrics(events),
        events=events,
        uart_log=str(uart),
        uart_tail=lines[-tail_lines:],
        run_dir=str(rd),
        qemu_command=cmd,
    )
    tail = "\n".join(f"  | {ln}" for ln in rec.uart_tail) or "  (no UART output)"
    if timed_out:
        rec.status = "timeout"
        rec.message = (
            f"timed out after {timeout:g} s of wall-clock time (the --timeout limit): the firmware did not "
            f"finish in time; QEMU killed. Last UART lines:\n{tail}"
        )
    elif rc is not None and rc < 0:
        rec.status = "killed"
        rec.message = (
            f"QEMU was killed from outside by {_signal_name(-rc)} after {wall:.1f} s (not a timeout: the "
            f"limit was {timeout:g} s; not a firmware fault). Last UART lines:\n{tail}"
        )
    elif fault_ev is not None:
        rec.status = "fault"
        if fault_ev.get("exception") != "unexpected":
            rec.fault = FaultReport.from_event(fault_ev, symbols)
            rec.message = "CPU fault: " + rec.fault.describe()
        else:
            rec.message = f"unexpected interrupt {fault_ev.get('irq')}"
    elif exit_ev is None:
        rec.status = "error"
        qemu_out = (rd / "qemu.out").read_text(errors="replace").strip()
        rec.message = (
            f"QEMU exited with {rc} before the firmware exited:\n{qemu_out}\nLast UART lines:\n{tail}"
        )
    elif rc == EXIT_STACK_OVERFLOW:
        rec.status = "stack-overflow"
        rec.message = "the stack used all free SRAM (the painted region is exhausted)"
    elif rc != 0:
        rec.status = "failed"
        rec.message = f"firmware exited with status {rc}. Last UART lines:\n{tail}"

    rec.memory = memory_report(elf_path, b, exit_ev, symbols)
    if profile and prof_path.exists():
        apply_profile(rec, Profile.load(prof_path), b, symbols)
    rec.save(rd / "record.json")
    return rec


def _signal_name(signum: int) -> str:
    try:
        return f"{signal.Signals(signum).name} (signal {signum})"
    except ValueError:
        return f"signal {signum}"


#: ELF symbols the plugin watches (firmware/boards/common/tt_board.c, startup.c) -> plugin argument
MARKER_SYMBOLS = {
    "tt__mark_begin": "begin",
    "tt__mark_begin_ret": "begin_ret",
    "tt__mark_end": "end",
    "main": "main",
    "tt_exit": "exit",
}


def marker_args(symbols: ElfSymbols) -> list[str]:
    """Plugin arguments for the phase markers and the main/tt_exit entries the ELF has (an ELF built
    before the markers existed simply gets SysTick phase counts)."""
    out = []
    for sym, arg in MARKER_SYMBOLS.items():
        addr = symbols.address_of(sym)
        if addr is not None:
            out.append(f"{arg}={addr:x}")
    return out


def apply_profile(rec: RunRecord, prof: Profile, board: Board, symbols: ElfSymbols) -> None:
    """Put the plugin's exact counts into `rec`: the total, each phase event's count (paired in order with
    the phase markers), and the profile with per-phase breakdowns."""
    exact_total = prof.app_instructions
    if exact_total is not None:
        rec.instructions = exact_total
        rec.instructions_source = "plugin"
    events = [{k: v for k, v in p.items() if k not in ("instr_systick", "source")} for p in rec.phases]
    al = phase_marks.align(events, prof.marks, symbols.string_at)
    rec.phases = al.phases
    per_name: dict[str, tuple[int, int]] = {}
    for p in rec.phases:
        if p["source"] == "plugin":
            n, total = per_name.get(p["name"], (0, 0))
            per_name[p["name"]] = (n + 1, total + int(p["instr"]))
    rec.profile = prof.to_dict(board.cycle_core, board.clock_hz, al.key_names, per_name)
    rec.profile["phase_alignment"] = {
        "paired": al.paired,
        "phase_events": len(rec.phases),
        "complete": al.complete,
        "message": al.message,
    }


def plugin_buildable() -> bool:
    """Whether the ttprof plugin is built or can be (a host gcc is installed)."""
    try:
        plugin_path()
    except (ToolMissing, TinytrainError):
        return False
    return True


def memory_report(
    elf: Path,
    board: Board,
    exit_ev: dict[str, Any] | None,
    symbols: ElfSymbols | None = None,
    static: StaticMemory | None = None,
) -> MemoryReport:
    st = static or static_memory(elf)
    syms = symbols or ElfSymbols(elf)
    objs = syms.objects_in(board.sram_origin, board.sram_origin + board.sram_size)[:10]
    return MemoryReport(
        sram_size=board.sram_size,
        flash_size=board.flash_size,
        flash_used=st.flash,
        data=st.data,
        bss=st.bss,
        stack_high_water=int(exit_ev["stack_hw"]) if exit_ev and "stack_hw" in exit_ev else None,
        stack_size=int(exit_ev["stack_size"]) if exit_ev and "stack_size" in exit_ev else None,
        largest_ram_objects={s.name: s.size for s in objs},
    )


def qemu_available() -> bool:
    return shutil.which(QEMU) is not None
