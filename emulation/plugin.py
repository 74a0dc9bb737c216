"""The ttprof TCG plugin (plugin/ttprof.c): built with the host gcc on first use into a cache directory
($TT_CACHE_DIR, else $XDG_CACHE_HOME/tinytrain, else ~/.cache/tinytrain), keyed by a hash of its source;
its JSON report parsed into a Profile (counts by class and function, overall and per firmware phase, and
the phase markers; see emulation.phases for the phase convention)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinytrain import TinytrainError

from .cycles import CLASSES, EXTRAS, CycleEstimate, estimate_cycles
from .toolchain import HOST_CC, find_tool

PLUGIN_SOURCE = Path(__file__).parent / "plugin" / "ttprof.c"


def cache_dir() -> Path:
    if os.environ.get("TT_CACHE_DIR"):
        return Path(os.environ["TT_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tinytrain"


def plugin_path(rebuild: bool = False) -> Path:
    """Path of the built plugin, building it first if needed (host gcc)."""
    src = PLUGIN_SOURCE.read_bytes()
    digest = hashlib.sha256(src).hexdigest()[:12]
    out = cache_dir() / f"ttprof-{digest}.so"
    if out.exists() and not rebuild:
        return out
    gcc = find_tool(HOST_CC)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    cmd = [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(PLUGIN_SOURCE)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinytrainError(f"building the QEMU plugin failed:\n{proc.stderr.strip()}")
    tmp.replace(out)
    return out


@dataclass
class ClassCounts:
    total: int
    classes: dict[str, int]
    extra: dict[str, int]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClassCounts:
        return cls(
            total=int(d["total"]),
            classes={k: int(d["classes"].get(k, 0)) for k in CLASSES},
            extra={k: int(d.get("extra", {}).get(k, 0)) for k in EXTRAS},
        )

    def cycles(self, core: str, clock_hz: int | None = None) -> CycleEstimate:
        return estimate_cycles(self.classes, core, self.extra, clock_hz)

    def __add__(self, other: ClassCounts) -> ClassCounts:
        return ClassCounts(
            total=self.total + other.total,
            classes={k: self.classes.get(k, 0) + other.classes.get(k, 0) for k in CLASSES},
            extra={k: self.extra.get(k, 0) + other.extra.get(k, 0) for k in EXTRAS},
        )


@dataclass
class PhaseCounts:
    """What ran inside one phase (all its occurrences; nested phases included), by class and function."""

    all: ClassCounts
    symbols: dict[str, ClassCounts] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PhaseCounts:
        return cls(
            all=ClassCounts.from_json(d["all"]),
            symbols={k: ClassCounts.from_json(v) for k, v in d.get("symbols", {}).items()},
        )

    def __add__(self, other: PhaseCounts) -> PhaseCounts:
        syms = dict(self.symbols)
        for k, v in other.symbols.items():
            syms[k] = syms[k] + v if k in syms else v
        return PhaseCounts(self.all + other.all, syms)

    def top(self, n: int = 20) -> list[tuple[str, ClassCounts]]:
        return sorted(self.symbols.items(), key=lambda kv: (-kv[1].total, kv[0]))[:n]


def _counts_dict(c: ClassCounts, core: str | None) -> dict[str, Any]:
    d: dict[str, Any] = {"total": c.total, "classes": c.classes, "extra": c.extra}
    if core:
        d["cycles_estimate"] = round(c.cycles(core).cycles, 1)
    return d


@dataclass
class Profile:
    """Exact executed-instruction counts by class, overall and per function symbol ("?" = no symbol), and
    per firmware phase when the ELF has the phase markers (phases keyed by the address of the name)."""

    all: ClassCounts
    symbols: dict[str, ClassCounts] = field(default_factory=dict)
    translated_blocks: int = 0
    marks: list[tuple[int, int, int]] = field(default_factory=list)  # (kind 0 begin/1 end, key, count)
    phases: dict[int, PhaseCounts] = field(default_factory=dict)
    main_entry: int | None = None  # instructions executed before main's first instruction
    exit_entry: int | None = None  # ... before tt_exit's first instruction

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TinytrainError(f"no usable plugin report at {path}: {exc}") from None

        def opt(key: str) -> int | None:
            v = d.get(key)
            return None if v is None else int(v)

        return cls(
            all=ClassCounts.from_json(d["all"]),
            symbols={k: ClassCounts.from_json(v) for k, v in d.get("symbols", {}).items()},
            translated_blocks=int(d.get("translated_blocks", 0)),
            marks=[(int(k), int(a), int(c)) for k, a, c in d.get("marks", [])],
            phases={int(k): PhaseCounts.from_json(v) for k, v in d.get("phases", {}).items()},
            main_entry=opt("main_entry"),
            exit_entry=opt("exit_entry"),
        )

    @property
    def app_instructions(self) -> int | None:
        """Exact instructions from main's entry to tt_exit's entry (what the SysTick total approximates)."""
        if self.main_entry is None or self.exit_entry is None:
            return None
        return self.exit_entry - self.main_entry

    def top(self, n: int = 20) -> list[tuple[str, ClassCounts]]:
        return sorted(self.symbols.items(), key=lambda kv: -kv[1].total)[:n]

    def phases_by_name(self, key_names: dict[int, str]) -> dict[str, PhaseCounts]:
        """Phase buckets merged by name (keys without a name become "0x<address>")."""
        out: dict[str, PhaseCounts] = {}
        for key, pc in self.phases.items():
            name = key_names.get(key, f"0x{key:08x}")
            out[name] = out[name] + pc if name in out else pc
        return out

    def to_dict(
        self,
        core: str | None = None,
        clock_hz: int | None = None,
        key_names: dict[int, str] | None = None,
        phase_instructions: dict[str, tuple[int, int]] | None = None,
    ) -> dict[str, Any]:
        """JSON form. `key_names` names the phase buckets; `phase_instructions` maps a phase name to
        (occurrences, exact instructions summed over them)."""
        d: dict[str, Any] = {
            "all": _counts_dict(self.all, core),
            "symbols": {k: _counts_dict(v, core) for k, v in self.top(10**9)},
        }
        if core:
            d["cycle_estimate"] = self.all.cycles(core, clock_hz).to_dict()
        if self.phases:
            named = self.phases_by_name(key_names or {})
            phases: dict[str, Any] = {}
            for name, pc in sorted(named.items(), key=lambda kv: -kv[1].all.total):
                p: dict[str, Any] = {}
                if phase_instructions and name in phase_instructions:
                    p["occurrences"], p["instructions"] = phase_instructions[name]
                p["all"] = _counts_dict(pc.all, core)
                if core:
                    p["cycle_estimate"] = pc.all.cycles(core, clock_hz).to_dict()
                p["symbols"] = {k: _counts_dict(v, core) for k, v in pc.top(10**9)}
                phases[name] = p
            d["phases"] = phases
        if self.main_entry is not None:
            d["main_entry"] = self.main_entry
        if self.exit_entry is not None:
            d["exit_entry"] = self.exit_entry
        d["markers"] = len(self.marks)
        return d
