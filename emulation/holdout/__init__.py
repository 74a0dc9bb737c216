"""A hold-out workload for the cycle model (emulation.cycles): code buildable here whose cycle count on a real
core is published, kept out of every choice the model makes (docs/emulation.md, "Hold-out").

`crc32`: the computation of Embench IoT 1.0's crc32 benchmark, written for tinytrain (crc32.c, lcg.c).
Embench publishes its run time on its reference platform (doc/README.md, "Reference platform";
baseline-data/speed.json): a Cortex-M4 (STM32F4-Discovery at its default 16 MHz, flash without wait states
at that clock, cycle counter), GCC 9.2.0 `-O2 -mcpu=cortex-m4 -mfloat-abi=soft`: 4,010 ms for
LOCAL_SCALE_FACTOR (145) x CPU_MHZ (16) = 2,320 repetitions, i.e. 27,655 cycles per repetition.
Here: the board's flags (GCC 12.2 -O2), exact instructions per repetition = (count at `hi` repetitions -
count at `lo`) / (hi - lo), the model's estimate with its range. No published Cortex-M7 figure exists for
it: the M7 rows show the estimate only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinytrain import TinytrainError

from ..boards import Board, get_board
from ..build import BUILD_DIR, build_firmware
from ..cycles import LABEL, estimate_cycles
from ..plugin import ClassCounts
from ..runner import RUNS_DIR, run_elf

SRC_DIR = Path(__file__).parent
PHASE = "holdout"
#: Embench IoT 1.0 reference (Cortex-M4 at 16 MHz, GCC 9.2 -O2): 4,010 ms for 145 x 16 repetitions.
PUBLISHED_MS, SCALE_FACTOR, CPU_MHZ = 4010.0, 145, 16
PUBLISHED: dict[str, tuple[float, str]] = {
    "m4": (
        PUBLISHED_MS * 1e-3 * CPU_MHZ * 1e6 / (SCALE_FACTOR * CPU_MHZ),
        "Embench IoT 1.0 reference platform: crc32 4,010 ms on a Cortex-M4 (STM32F4-Discovery, 16 MHz, "
        "GCC 9.2 -O2) for 145 x 16 repetitions (embench-iot doc/README.md, baseline-data/speed.json)",
    ),
}


@dataclass
class HoldoutRun:
    board: str
    reps: int
    counts: ClassCounts


def run(board: str | Board, reps: int, *, timeout: float = 60.0) -> HoldoutRun:
    """Build and run the crc32 hold-out with `reps` repetitions; a TinytrainError unless its result checks."""
    b = get_board(board)
    res = build_firmware(
        b,
        [SRC_DIR / "crc32.c", SRC_DIR / "lcg.c"],
        include_dirs=[SRC_DIR],
        out_dir=BUILD_DIR / f"holdout-crc32-{reps}-{b.name}",
        defines={"REPS": reps},
        name="holdout",
    )
    rec = run_elf(
        res.elf, b, profile=True, timeout=timeout, run_dir=RUNS_DIR / f"holdout-crc32-{reps}-{b.name}"
    )
    if not rec.ok:
        raise TinytrainError(f"hold-out crc32 on `{b.name}`: {rec.status} (result != 11433?): {rec.message}")
    phase = rec.phase_profile(PHASE)
    if phase.get("occurrences") != 1:
        raise TinytrainError(f"hold-out crc32 on `{b.name}`: the timed phase was not counted exactly once")
    return HoldoutRun(b.name, reps, ClassCounts.from_json(phase["all"]))


def check(boards: tuple[str, ...] = ("m4", "m7"), lo: int = 2, hi: int = 6) -> list[dict[str, Any]]:
    """Per board: exact instructions per repetition, the model's estimate (point, range) and, where one is
    published, the published cycles per repetition and the error."""
    if not 0 < lo < hi:
        raise TinytrainError(f"hold-out repetitions: need 0 < low < high, got {lo} and {hi}")
    rows = []
    for name in boards:
        b = get_board(name)
        a, z = run(b, lo), run(b, hi)
        n = hi - lo
        classes = {k: (z.counts.classes[k] - a.counts.classes[k]) / n for k in z.counts.classes}
        extra = {k: (z.counts.extra[k] - a.counts.extra[k]) / n for k in z.counts.extra}
        est = estimate_cycles(classes, b.cycle_core, extra)
        low, high = est.cycles_low or est.cycles, est.cycles_high or est.cycles
        m_lo, m_hi = est.model_low or est.cycles, est.model_high or est.cycles
        pub = PUBLISHED.get(b.cycle_core)
        row: dict[str, Any] = {
            "workload": "crc32 (Embench IoT 1.0 computation)",
            "board": b.name,
            "instructions_per_rep": round(sum(classes.values()), 1),
            "est_cycles_per_rep": round(est.cycles, 1),
            "est_cycles_low": round(low, 1),
            "est_cycles_high": round(high, 1),
            "est_cycles_model_low": round(m_lo, 1),
            "est_cycles_model_high": round(m_hi, 1),
            "published_cycles_per_rep": round(pub[0], 1) if pub else None,
            "published_source": pub[1] if pub else "none published for this core",
            "error_pct": round(100.0 * (est.cycles - pub[0]) / pub[0], 1) if pub else None,
            "published_in_model_range": (m_lo <= pub[0] <= m_hi) if pub else None,
            "published_in_range": (low <= pub[0] <= high) if pub else None,
            "model": est.model,
            "reps": [lo, hi],
            "classes_per_rep": {k: round(v, 1) for k, v in classes.items()},
            "extra_per_rep": {k: round(v, 1) for k, v in extra.items()},
            "label": LABEL,
        }
        rows.append(row)
    return rows
