"""Cycle model: the ttprof plugin's instruction-class counts and pipeline counters -> an ESTIMATE of core
cycles with a range. QEMU counts instructions, not cycles; every number this module produces is labelled an
estimate. docs/emulation.md lists every constant with its source and the CoreMark check (`tinytrain
calibrate`); no constant is fitted.

Cortex-M4 (`_m4`): Cortex-M4 TRM r0p1 (DDI 0439D) Table 3-1 and 3.3.2, Table 7-1 (FPU), per instruction, with
the plugin's counts of taken / not-taken conditional branches (1+P / 1), refill P by target (direct: 1, +1 for
an unaligned 32-bit target; register: 2; PC load: 3), loads pipelined after a load (-1), address-generation
stalls (+1), IT folding (0 after a 16-bit instruction), STR #imm 1 / register offset 2 / STM 1+N, TBB 6.

Cortex-M7 (`_m7`): the plugin's static in-order dual-issue schedule of each translated block (issue rules and
latencies from LLVM's Arm-written Cortex-M7 scheduling model), plus mispredictions (per-site minority
outcomes x 4..6 cycles), multi-word transfers (0.5..1 per word) and, in the worst case, a bubble per taken
branch. Flash wait states and caches are not modelled (code and data are assumed to hit).

The range (`cycles_low`..`cycles_high`) is the model's documented best/worst case (`model_low`/`model_high`)
widened by its measured CoreMark error (COREMARK_ERROR, on a CoreMark build with the flags published GCC
results use): the second, empirical band, because the published CoreMark figures lie outside the documented
bounds. `range_kind(core)` says so in one line.

CORE_MODELS keeps the older per-class costs: the fallback for profiles recorded before the pipeline counters
existed (`model: "per-class"`: a point, widened by the CoreMark band only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

#: Instruction classes of the ttprof plugin (emulation/plugin/ttprof.c, same order).
CLASSES = ("alu", "load", "store", "mul", "simd", "div", "branch", "fp", "fp_mac", "fp_div", "sys")
EXTRAS = (
    "load_extra_words",
    "store_extra_words",
    "pc_loads",
    "it",
    "cond_branches",
    "cond_not_taken",
    "cond_unknown",
    "cond_minority",
    "m4_ls_pipelined",
    "m4_agu_stalls",
    "m7_issue_cycles",
    "block_entries",
    "wide_unaligned_entries",
    "indirect_branches",
    "table_branches",
    "it_folded",
    "m4_slow_stores",
)

LABEL = "estimate: QEMU instruction counts x per-class cycle costs (emulation.cycles); not measured cycles"


@dataclass(frozen=True)
class CoreModel:
    core: str
    costs: Mapping[str, float]  # per class
    extra_costs: Mapping[str, float]  # per extra counter
    source: str


CORE_MODELS: dict[str, CoreModel] = {
    "m4": CoreModel(
        core="m4",
        costs={
            "alu": 1,
            "load": 2,
            "store": 2,
            "mul": 1,
            "simd": 1,
            "div": 7,
            "branch": 2,
            "fp": 1,
            "fp_mac": 3,
            "fp_div": 14,
            "sys": 1,
        },
        extra_costs={"load_extra_words": 1, "store_extra_words": 1, "pc_loads": 2},
        source="Arm Cortex-M4 TRM (DDI 0439B) Table 3-1, Table 7-1",
    ),
    "m7": CoreModel(
        core="m7",
        costs={
            "alu": 0.5,
            "load": 1,
            "store": 1,
            "mul": 1,
            "simd": 1,
            "div": 7,
            "branch": 1,
            "fp": 1,
            "fp_mac": 1,
            "fp_div": 14,
            "sys": 1,
        },
        extra_costs={"load_extra_words": 0.5, "store_extra_words": 0.5, "pc_loads": 1},
        source="derived from the Arm Cortex-M7 TRM (DDI 0489F) pipeline description "
        "(no per-instruction table)",
    ),
}


#: Pipeline refill P of the Cortex-M4 (TRM r0p1 Table 3-1: "1 to 3 depending on the alignment and width of the
#: target instruction, and whether the processor manages to speculate the address early"), per bound.
#: Direct branches (target in the instruction, speculated early): point 1, +1 for the share of 32-bit targets
#: at an address = 2 mod 4 (`wide_unaligned_entries` / `block_entries`). Register targets (BX/BLX Rm): the
#: TRM gives no rule, the midpoint 2. Loads into the PC: 3.3.2 "three cycles for the pipeline reload".
M4_REFILL = {"low": 1.0, "point": 1.0, "high": 3.0}
M4_REFILL_INDIRECT = {"low": 1.0, "point": 2.0, "high": 3.0}
M4_REFILL_PC_LOAD = {"low": 1.0, "point": 3.0, "high": 3.0}
#: TBB/TBH: Table 3-1 2+P (low, P = 1); 3.3.2 "at least six cycles" (point, high).
M4_TABLE_BRANCH = {"low": 3.0, "point": 6.0, "high": 6.0}
#: Cortex-M7 branch misprediction penalty (LLVM ARMScheduleM7.td, written by Arm: MispredictPenalty 4,
#: "cost for forward branches is 6").
M7_MISPREDICT = {"low": 4.0, "point": 4.0, "high": 6.0}
#: The CoreMark check (`tinytrain calibrate`, docs/emulation.md "Calibration"): the model's point estimate of
#: CoreMark/MHz relative to the published figure, minus 1, rounded outward to whole per cent (measured, not
#: fitted; tests/emulation/test_coremark.py re-measures it), on the "reporting" build (GCC 12 with the flags
#: printed with published GCC CoreMark results, emulation.coremark.REPORTING_CFLAGS), because the published
#: figures come from builds tuned for CoreMark: m4 -13.9 %, m7 -3.1 %. (The training firmware's -O2 build
#: of CoreMark executes 12-14 % more instructions and gives -26.9 % / -18.0 %: the instruction stream, not
#: the model.) Negative: the model charges too many cycles. Every estimate's range is the model's
#: documented best/worst case widened by this band: [point x (1 + error), point] for error < 0.
COREMARK_ERROR = {"m4": -0.14, "m7": -0.04}
BOUNDS = ("low", "point", "high")


@dataclass
class CycleEstimate:
    core: str
    instructions: int
    cycles: float  # the point estimate
    by_class: dict[str, float] = field(default_factory=dict)
    clock_hz: int | None = None
    label: str = LABEL
    cycles_low: float | None = None  # the range: the model's best case, widened by the CoreMark band
    cycles_high: float | None = None  # the range: the model's worst case, widened by the CoreMark band
    model: str = ""  # which model produced it ("m4-trm", "m7-schedule", "per-class" fallback)
    model_low: float | None = None  # the model's documented best case alone
    model_high: float | None = None  # ... worst case alone
    coremark_error: float = 0.0  # COREMARK_ERROR of the core: the empirical band

    @property
    def range_kind(self) -> str:
        return range_kind(self.core)

    @property
    def cpi(self) -> float:
        return self.cycles / self.instructions if self.instructions else 0.0

    @property
    def seconds(self) -> float | None:
        return self.cycles / self.clock_hz if self.clock_hz else None

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["cpi"] = round(self.cpi, 4)
        d["seconds"] = self.seconds
        d["range"] = self.range_kind
        return d


def range_kind(core: str) -> str:
    """What an estimate's range (cycles_low..cycles_high) is, for summaries and reports."""
    err = COREMARK_ERROR.get(core, 0.0)
    return (
        f"range = the model's documented best/worst case widened by its CoreMark error band "
        f"({100 * err:+.0f} % vs published on {core}; docs/emulation.md)"
    )


def range_text(cycles_low: float, cycles_high: float, clock_hz: int, core: str) -> str:
    """A summary line's range: "range A-B ms (the model's best/worst case widened by its CoreMark error band,
    -14 % on m4; docs/emulation.md)"."""
    err = COREMARK_ERROR.get(core, 0.0)
    lo, hi = 1e3 * cycles_low / clock_hz, 1e3 * cycles_high / clock_hz
    return (
        f"range {lo:.0f}-{hi:.0f} ms (the model's best/worst case widened by its CoreMark error band, "
        f"{100 * err:+.0f} % on {core}; docs/emulation.md)"
    )


def _widen(core: str, point: float, low: float, high: float) -> tuple[float, float]:
    """The model's [low, high] widened by the empirical CoreMark band [point x (1 + error), point]."""
    band = point * (1.0 + COREMARK_ERROR.get(core, 0.0))
    return min(low, band), max(high, band)


def _m4(classes: Mapping[str, float], ex: Mapping[str, float], bound: str) -> dict[str, float]:
    """Cortex-M4 TRM model (docs/emulation.md, "The Cortex-M4 model")."""
    br = classes.get("branch", 0)
    cond = ex.get("cond_branches", 0)
    nt, unk = ex.get("cond_not_taken", 0), ex.get("cond_unknown", 0)
    taken_known = max(cond - nt - unk, 0)
    indirect, table = ex.get("indirect_branches", 0), ex.get("table_branches", 0)
    direct_uncond = max(br - cond - indirect - table, 0)
    known = taken_known + nt
    rate = taken_known / known if known else 1.0
    unk_taken = {"low": 0.0, "point": rate, "high": 1.0}[bound] * unk
    entries = ex.get("block_entries", 0)
    unaligned = ex.get("wide_unaligned_entries", 0) / entries if entries else 0.0
    p = M4_REFILL[bound] + (unaligned if bound == "point" else 0.0)
    it, folded = ex.get("it", 0), ex.get("it_folded", 0)
    return {
        # IT: 1 cycle, 0 when folded onto a preceding 16-bit instruction (point: the ones that follow one)
        "alu": classes.get("alu", 0) - {"low": it, "point": folded, "high": 0.0}[bound],
        "load": 2 * classes.get("load", 0) - ex.get("m4_ls_pipelined", 0) + ex.get("m4_agu_stalls", 0),
        "store": classes.get("store", 0)
        + ex.get("m4_slow_stores", 0),  # STR #imm 1, register offset 2, STM 1+N
        "mul": classes.get("mul", 0),  # MUL, MLA, MLS, UMULL, SMLAL: 1 (Table 3-1, r0p1)
        "simd": classes.get("simd", 0),
        "div": {"low": 2, "point": 7, "high": 12}[bound] * classes.get("div", 0),
        "branch": (direct_uncond + taken_known + unk_taken) * (1 + p)
        + indirect * (1 + M4_REFILL_INDIRECT[bound])
        + table * M4_TABLE_BRANCH[bound]
        + (nt + unk - unk_taken),
        "fp": classes.get("fp", 0),
        "fp_mac": 3 * classes.get("fp_mac", 0),
        "fp_div": 14 * classes.get("fp_div", 0),
        "sys": classes.get("sys", 0),
        "load_extra_words": ex.get("load_extra_words", 0),
        "store_extra_words": ex.get("store_extra_words", 0),
        "pc_loads": M4_REFILL_PC_LOAD[bound] * ex.get("pc_loads", 0),
    }


def _m7(classes: Mapping[str, float], ex: Mapping[str, float], bound: str) -> dict[str, float]:
    """Cortex-M7: the plugin's static dual-issue schedule plus branch and multi-word costs."""
    cond = ex.get("cond_branches", 0)
    nt, unk, minority = ex.get("cond_not_taken", 0), ex.get("cond_unknown", 0), ex.get("cond_minority", 0)
    known = max(cond - unk, 0)
    rate = minority / known if known else 0.0
    mispredicts = minority + {"low": 0.0, "point": rate, "high": 0.5}[bound] * unk
    taken = max(classes.get("branch", 0) - nt - unk, 0)
    words = ex.get("load_extra_words", 0) + ex.get("store_extra_words", 0)
    return {
        "issue": ex.get("m7_issue_cycles", 0),
        "extra_words": (1.0 if bound == "high" else 0.5) * words,  # 64-bit interface: 2 words per cycle
        "mispredicts": M7_MISPREDICT[bound] * mispredicts,
        "taken_bubbles": (1.0 if bound == "high" else 0.0) * taken,  # a taken branch's fetch bubble
        # the schedule starts every block in a new cycle; after a not-taken branch the next instruction may
        # pair with the branch (best case)
        "fallthrough_pairs": (-1.0 if bound == "low" else 0.0) * nt,
    }


def _per_class(
    classes: Mapping[str, float], extra: Mapping[str, float], model: CoreModel
) -> dict[str, float]:
    out = {cls: n * model.costs.get(cls, 1.0) for cls, n in classes.items()}
    for name, n in extra.items():
        if name in model.extra_costs:
            out[name] = n * model.extra_costs[name]
    return out


def estimate_cycles(
    classes: Mapping[str, int],
    core: str,
    extra: Mapping[str, int] | None = None,
    clock_hz: int | None = None,
) -> CycleEstimate:
    """Estimated cycles (point, low, high) for instruction-class counts and the plugin's extra counters on
    `core` ("m4" | "m7"). Counts from a plugin without the pipeline counters (no `m7_issue_cycles`, no
    `cond_branches`) fall back to the per-class costs of CORE_MODELS, without a range."""
    if core not in CORE_MODELS:
        raise ValueError(f"no cycle model for core {core!r}; have {', '.join(CORE_MODELS)}")
    ex = dict(extra or {})
    instructions = int(sum(classes.values()))
    has_pipeline = "m7_issue_cycles" in ex and (ex.get("m7_issue_cycles", 0) > 0 or instructions == 0)
    if not has_pipeline:
        by = _per_class(classes, ex, CORE_MODELS[core])
        c = float(sum(by.values()))
        lo, hi = _widen(core, c, c, c)
        return CycleEstimate(
            core,
            instructions,
            c,
            by,
            clock_hz,
            cycles_low=lo,
            cycles_high=hi,
            model="per-class",
            model_low=c,
            model_high=c,
            coremark_error=COREMARK_ERROR[core],
        )
    fn = _m4 if core == "m4" else _m7
    parts = {b: fn(classes, ex, b) for b in BOUNDS}
    tot = {b: float(sum(parts[b].values())) for b in BOUNDS}
    m_lo, m_hi = min(tot.values()), max(tot.values())
    lo, hi = _widen(core, tot["point"], m_lo, m_hi)
    return CycleEstimate(
        core=core,
        instructions=instructions,
        cycles=tot["point"],
        by_class=parts["point"],
        clock_hz=clock_hz,
        cycles_low=lo,
        cycles_high=hi,
        model="m4-trm" if core == "m4" else "m7-schedule",
        model_low=m_lo,
        model_high=m_hi,
        coremark_error=COREMARK_ERROR[core],
    )
