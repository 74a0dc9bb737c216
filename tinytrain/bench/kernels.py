"""Per-kernel instruction counts of a training run, helpers included.

The ttprof plugin counts instructions per *function* (ELF symbol). A catalogue kernel `tt_<kernel>` often
spends most of its time in static helpers (`tt_dot2x2`, `conv1x1_pixels`, `dw_plane_3_1`, ...), so the
function counts alone understate the kernels. `attribute` folds each helper into the kernel that calls
it, from the ELF's static call graph (arm-none-eabi-objdump): a helper reachable from exactly one kernel
is that kernel's; one reachable from several is reported as shared (`helper (shared: a, b)`); one no
kernel reaches is outside the kernels (the app, the board layer, the data source, libgcc).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emulation.elfinfo import call_graph, reaching

__all__ = ["OUTSIDE", "attribute", "call_graph", "owners"]

OUTSIDE = "(outside kernels)"


def owners(function: str, kernels: set[str], callers: dict[str, set[str]], depth: int = 6) -> set[str]:
    """The kernels (symbols in `kernels`) from which `function` is reachable."""
    return reaching(function, kernels, callers, depth)


def attribute(
    symbols: dict[str, dict[str, Any]], kernels: Iterable[str], callers: dict[str, set[str]]
) -> dict[str, dict[str, float]]:
    """Fold function counts into kernels. `symbols`: the plugin's per-function classes (`total`,
    `cycles_estimate`); `kernels`: catalogue names (without `tt_`). Returns name -> {instructions,
    cycles_estimate, functions}, sorted by instructions."""
    ksyms = {f"tt_{k}" for k in kernels}
    out: dict[str, dict[str, float]] = {}
    for fn, c in symbols.items():
        own = owners(fn, ksyms, callers)
        if len(own) == 1:
            name = next(iter(own))[3:]
        elif own:
            name = f"{fn} (shared: {', '.join(sorted(o[3:] for o in own))})"
        else:
            name = OUTSIDE
        e = out.setdefault(name, {"instructions": 0, "cycles_estimate": 0.0, "functions": 0})
        e["instructions"] += int(c.get("total", 0))
        e["cycles_estimate"] += float(c.get("cycles_estimate", 0.0) or 0.0)
        e["functions"] += 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["instructions"]))
