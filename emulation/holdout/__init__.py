"""Hold-out workloads for the cycle model (emulation.cycles): code buildable here whose cycle count on a real
core is published, kept out of every choice the model makes (docs/emulation.md, "Hold-out").

The computations of two Embench IoT benchmarks, written for tinytrain (crc32.c + lcg.c, matmult.c; no Embench
source copied). Embench publishes their run times on its reference platform (embench-iot doc/README.md,
"Reference platform"; baseline-data/speed.json): a Cortex-M4 (STM32F4-Discovery at its default 16 MHz, flash
without wait states at that clock, the DWT cycle counter), GCC 9.2.0 `-O2 -mcpu=cortex-m4 -mfloat-abi=soft`,
newlib-nano: crc32 4,010 ms, matmult-int 3,985 ms, each for LOCAL_SCALE_FACTOR x CPU_MHZ (16) repetitions.
The scale factor differs between the versions of the Embench sources found (crc32: 145 and 170; matmult-int:
46 and 47) and the stored copy does not tie either to that baseline, so each candidate gives a published
cycles-per-repetition figure and an error; no choice is made between them.

Here: the board's flags (GCC 12.2 -O2), exact instructions per repetition = (count at `hi` repetitions -
count at `lo`) / (hi - lo), the model's estimate with its range. No published Cortex-M7 figure exists for
them: the M7 rows show the estimate only."""

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
#: workload -> (sources, published ms on the reference Cortex-M4 at 16 MHz, candidate scale factors)
WORKLOADS: dict[str, tuple[tuple[str, ...], float, tuple[int, ...]]] = {
    "crc32": (("crc32.c", "lcg.c"), 4010.0, (145, 170)),
    "matmult-int": (("matmult.c",), 3985.0, (46, 47)),
}
REF_MHZ = 16
SOURCE = (
    "Embench IoT reference platform: a Cortex-M4 (STM32F4-Discovery, 16 MHz, GCC 9.2 -O2), ms for "
    "LOCAL_SCALE_FACTOR x 16 repetitions (embench-iot doc/README.md, baseline-data/speed.json)"
)


def published_cycles(workload: str) -> list[float]:
    """Cycles per repetition on the reference Cortex-M4, one per candidate scale factor."""
    _, ms, factors = WORKLOADS[workload]
    return [ms * 1e-3 * REF_MHZ * 1e6 / (f * REF_MHZ) for f in factors]


@dataclass
class HoldoutRun:
    board: str
    reps: int
    counts: ClassCounts


def run(board: str | Board, workload: str, reps: int, *, timeout: float = 60.0) -> HoldoutRun:
    """Build and run a hold-out workload with `reps` repetitions; a TinytrainError unless its result
    checks."""
    if workload not in WORKLOADS:
        raise TinytrainError(f"hold-out workload `{workload}` unknown; have {', '.join(WORKLOADS)}")
    b = get_board(board)
    res = build_firmware(
        b,
        [SRC_DIR / f for f in WORKLOADS[workload][0]],
        include_dirs=[SRC_DIR],
        out_dir=BUILD_DIR / f"holdout-{workload}-{reps}-{b.name}",
        defines={"REPS": reps},
        name="holdout",
    )
    rec = run_elf(
        res.elf, b, profile=True, timeout=timeout, run_dir=RUNS_DIR / f"holdout-{workload}-{reps}-{b.name}"
    )
    if not rec.ok:
        raise TinytrainError(
            f"hold-out {workload} on `{b.name}`: {rec.status} (wrong result?): {rec.message}"
        )
    phase = rec.phase_profile(PHASE)
    if phase.get("occurrences") != 1:
        raise TinytrainError(
            f"hold-out {workload} on `{b.name}`: the timed phase was not counted exactly once"
        )
    return HoldoutRun(b.name, reps, ClassCounts.from_json(phase["all"]))


def check(
    boards: tuple[str, ...] = ("m4", "m7"),
    lo: int = 2,
    hi: int = 6,
    workloads: tuple[str, ...] = tuple(WORKLOADS),
) -> list[dict[str, Any]]:
    """Per workload and board: exact instructions per repetition, the model's estimate (point, range) and, on
    the Cortex-M4, the published cycles per repetition (one per candidate scale factor) and the errors."""
    if not 0 < lo < hi:
        raise TinytrainError(f"hold-out repetitions: need 0 < low < high, got {lo} and {hi}")
    rows = []
    for workload, name in ((w, n) for w in workloads for n in boards):
        b = get_board(name)
        a, z = run(b, workload, lo), run(b, workload, hi)
        n = hi - lo
        classes = {k: (z.counts.classes[k] - a.counts.classes[k]) / n for k in z.counts.classes}
        extra = {k: (z.counts.extra[k] - a.counts.extra[k]) / n for k in z.counts.extra}
        est = estimate_cycles(classes, b.cycle_core, extra)
        low, high = est.cycles_low or est.cycles, est.cycles_high or est.cycles
        m_lo, m_hi = est.model_low or est.cycles, est.model_high or est.cycles
        pub = published_cycles(workload) if b.cycle_core == "m4" else []
        rows.append(
            {
                "workload": workload,
                "board": b.name,
                "instructions_per_rep": round(sum(classes.values()), 1),
                "est_cycles_per_rep": round(est.cycles, 1),
                "est_cycles_low": round(low, 1),
                "est_cycles_high": round(high, 1),
                "est_cycles_model_low": round(m_lo, 1),
                "est_cycles_model_high": round(m_hi, 1),
                "scale_factors": list(WORKLOADS[workload][2]) if pub else [],
                "published_cycles_per_rep": [round(p, 1) for p in pub],
                "published_source": SOURCE if pub else "none published for this core",
                "error_pct": [round(100.0 * (est.cycles - p) / p, 1) for p in pub],
                "published_in_model_range": [m_lo <= p <= m_hi for p in pub],
                "published_in_range": [low <= p <= high for p in pub],
                "model": est.model,
                "reps": [lo, hi],
                "classes_per_rep": {k: round(v, 1) for k, v in classes.items()},
                "extra_per_rep": {k: round(v, 1) for k, v in extra.items()},
                "label": LABEL,
            }
        )
    return rows
