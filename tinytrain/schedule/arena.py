"""Arena placement: give every arena buffer an offset so that buffers live at the same time never
share bytes, and the arena (max offset + size) is small.

Strategies (all offsets multiples of `ALIGN`; each checks only the already-placed buffers whose
lifetimes conflict with the one being placed, and scans their gaps in address order):

- `greedy_size_first_fit` — TFLM's "greedy by size" planner: largest buffer first (ties: earlier
  birth), placed at the lowest offset where it fits between conflicting buffers.
- `greedy_size_best_fit` — same order, but into the *smallest* gap that fits (top of the
  conflicting buffers if none does).
- `program_order_first_fit` — linear: buffers in order of birth (ties: larger first), first fit.
  What a simple runtime allocator would do; usually worse on training graphs, where long-lived
  saved activations are born early among short-lived big ones.

`place()` runs them all and keeps the smallest arena; the others are reported. `live_bytes().max()`
is a lower bound no placement can beat (reported too, so the gap is visible).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinytrain import TinytrainError
from tinytrain.schedule.lifetimes import ALIGN, Lifetime, conflict_matrix, live_bytes


@dataclass
class Placement:
    strategy: str
    offsets: dict[str, int]
    arena: int  # bytes: max(offset + aligned size)


def _place(
    lifetimes: list[Lifetime], order: list[int], best_fit: bool, neighbours: list[list[int]] | None = None
) -> tuple[dict[str, int], int]:
    if neighbours is None:
        neighbours = _neighbours(lifetimes)
    offsets: list[int | None] = [None] * len(lifetimes)
    placed: list[int] = []
    for i in order:
        size = lifetimes[i].size
        others = sorted(
            (offsets[j], offsets[j] + lifetimes[j].size)  # type: ignore[operator]
            for j in neighbours[i]
            if offsets[j] is not None
        )
        cursor = 0
        best: tuple[int, int] | None = None  # (gap size, offset)
        for lo, hi in others:
            if lo >= cursor + size:
                gap = lo - cursor
                if not best_fit:
                    best = (gap, cursor)
                    break
                if best is None or gap < best[0]:
                    best = (gap, cursor)
            cursor = max(cursor, hi)
        offsets[i] = best[1] if best is not None else cursor
        placed.append(i)
    result = {lt.name: int(off) for lt, off in zip(lifetimes, offsets, strict=True)}  # type: ignore[arg-type]
    arena = max((result[lt.name] + lt.size for lt in lifetimes), default=0)
    return result, arena


def _neighbours(lifetimes: list[Lifetime]) -> list[list[int]]:
    """For each buffer, the buffers live at a common step with it (itself excluded)."""
    c = conflict_matrix(lifetimes)
    np.fill_diagonal(c, False) if len(lifetimes) else None
    return [np.nonzero(row)[0].tolist() for row in c]


#: `searched_first_fit`: random orders tried after the deterministic ones (seeded: plans are reproducible)
SEARCH_ITERATIONS = 48


def searched_first_fit(lifetimes: list[Lifetime]) -> tuple[dict[str, int], int]:
    """First fit over several orders, the best kept: by size, by size x lifetime length, by lifetime length,
    then `SEARCH_ITERATIONS` seeded random perturbations of the size order (each size scaled by a random
    factor in [0.5, 2)); stops early at the lower bound."""
    n = len(lifetimes)
    if n == 0:
        return {}, 0
    nb = _neighbours(lifetimes)
    bound = lower_bound(lifetimes)
    size = np.array([lt.size for lt in lifetimes], float)
    span = np.array([sum(e - s + 1 for s, e in lt.intervals) for lt in lifetimes], float)
    start = np.array([lt.start for lt in lifetimes], float)
    keys = [size, size * span, span * 1e9 + size, size * np.sqrt(span)]
    rng = np.random.default_rng(0)
    keys += [size * np.exp2(rng.uniform(-1, 1, n)) for _ in range(SEARCH_ITERATIONS)]
    best: tuple[dict[str, int], int] | None = None
    for key in keys:
        order = sorted(range(n), key=lambda i: (-key[i], start[i], i))
        for best_fit in (False, True):
            res = _place(lifetimes, order, best_fit, nb)
            if best is None or res[1] < best[1]:
                best = res
            if best[1] <= bound:
                return best
    assert best is not None
    return best


def greedy_size_first_fit(lifetimes: list[Lifetime]) -> tuple[dict[str, int], int]:
    order = sorted(range(len(lifetimes)), key=lambda i: (-lifetimes[i].size, lifetimes[i].start, i))
    return _place(lifetimes, order, best_fit=False)


def greedy_size_best_fit(lifetimes: list[Lifetime]) -> tuple[dict[str, int], int]:
    order = sorted(range(len(lifetimes)), key=lambda i: (-lifetimes[i].size, lifetimes[i].start, i))
    return _place(lifetimes, order, best_fit=True)


def program_order_first_fit(lifetimes: list[Lifetime]) -> tuple[dict[str, int], int]:
    order = sorted(range(len(lifetimes)), key=lambda i: (lifetimes[i].start, -lifetimes[i].size, i))
    return _place(lifetimes, order, best_fit=False)


STRATEGIES: dict[str, Callable[[list[Lifetime]], tuple[dict[str, int], int]]] = {
    "greedy_size_first_fit": greedy_size_first_fit,
    "greedy_size_best_fit": greedy_size_best_fit,
    "program_order_first_fit": program_order_first_fit,
    "searched_first_fit": searched_first_fit,
}


def place(lifetimes: list[Lifetime], strategies: list[str] | None = None) -> tuple[Placement, dict[str, int]]:
    """Run the strategies; return the best placement (smallest arena, first listed on ties) and the
    arena size each strategy reached. The best placement is verified before it is returned."""
    names = list(STRATEGIES) if strategies is None else strategies
    best: Placement | None = None
    sizes: dict[str, int] = {}
    for name in names:
        if name not in STRATEGIES:
            raise TinytrainError(f"unknown placement strategy {name!r} (known: {', '.join(STRATEGIES)})")
        offsets, arena = STRATEGIES[name](lifetimes)
        sizes[name] = arena
        if best is None or arena < best.arena:
            best = Placement(name, offsets, arena)
    assert best is not None
    violations = check_placement(lifetimes, best.offsets)
    if violations:  # a planner bug, never a user error
        raise AssertionError(f"placement {best.strategy} is invalid: {violations[:3]}")
    return best, sizes


def check_placement(lifetimes: list[Lifetime], offsets: dict[str, int]) -> list[str]:
    """Every violation of the placement invariants, as messages (empty = valid): each buffer has an
    aligned, non-negative offset, and no two buffers live at a common step share a byte."""
    problems: list[str] = []
    for lt in lifetimes:
        off = offsets.get(lt.name)
        if off is None:
            problems.append(f"{lt.name}: no offset")
        elif off < 0 or off % ALIGN:
            problems.append(f"{lt.name}: offset {off} not a non-negative multiple of {ALIGN}")
    conflicts = conflict_matrix(lifetimes)
    for i, j in zip(*np.nonzero(np.triu(conflicts, 1)), strict=True):
        a, b = lifetimes[int(i)], lifetimes[int(j)]
        oa, ob = offsets.get(a.name), offsets.get(b.name)
        if oa is None or ob is None:
            continue
        if oa < ob + b.nbytes and ob < oa + a.nbytes:
            problems.append(
                f"{a.name} [{oa}, {oa + a.size}) and {b.name} [{ob}, {ob + b.size}) overlap "
                f"in memory and are both live at a common step"
            )
    return problems


def lower_bound(lifetimes: list[Lifetime]) -> int:
    if not lifetimes:
        return 0
    return int(live_bytes(lifetimes, max(lt.end for lt in lifetimes) + 1).max())
