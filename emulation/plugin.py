"""The ttprof TCG plugin (plugin/ttprof.c): built with the host gcc on first use into a cache directory
($TT_CACHE_DIR, else $XDG_CACHE_HOME/tinytrain, else ~/.cache/tinytrain), keyed by a hash of its source;
its JSON report parsed into a Profile."""

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


@dataclass
class Profile:
    """Exact executed-instruction counts by class, overall and per function symbol ("?" = no symbol)."""

    all: ClassCounts
    symbols: dict[str, ClassCounts] = field(default_factory=dict)
    translated_blocks: int = 0

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TinytrainError(f"no usable plugin report at {path}: {exc}") from None
        return cls(
            all=ClassCounts.from_json(d["all"]),
            symbols={k: ClassCounts.from_json(v) for k, v in d.get("symbols", {}).items()},
            translated_blocks=int(d.get("translated_blocks", 0)),
        )

    def top(self, n: int = 20) -> list[tuple[str, ClassCounts]]:
        return sorted(self.symbols.items(), key=lambda kv: -kv[1].total)[:n]

    def to_dict(self, core: str | None = None, clock_hz: int | None = None) -> dict[str, Any]:
        def one(c: ClassCounts) -> dict[str, Any]:
            d: dict[str, Any] = {"total": c.total, "classes": c.classes, "extra": c.extra}
            if core:
                d["cycles_estimate"] = round(c.cycles(core).cycles, 1)
            return d

        d: dict[str, Any] = {"all": one(self.all), "symbols": {k: one(v) for k, v in self.top(10**9)}}
        if core:
            d["cycle_estimate"] = self.all.cycles(core, clock_hz).to_dict()
        return d
