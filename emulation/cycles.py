"""Cycle model: instruction-class counts (from the ttprof plugin) -> an ESTIMATE of core cycles.

QEMU counts instructions, not cycles. This model multiplies each class count by a per-class cost for the
core and adds costs for extra words moved by multi-register loads/stores and for loads into the PC. It
ignores wait states (flash, caches), pipeline interlocks other than those folded into the averages, and
data-dependent timings (division). Every number it produces is labelled an estimate.

Cortex-M4 (Arm Cortex-M4 Processor Technical Reference Manual, DDI 0439B, Table 3-1 "Cortex-M4
instruction set summary" and Table 7-1 "FPU instruction set"):

=========  ======  ==========================================================================
class      cycles  source / reasoning
=========  ======  ==========================================================================
alu        1       ADD, MOV, CMP, logic, shifts, extends, bitfield: 1 (Table 3-1)
load       2       LDR 2; neighbouring loads/stores pipeline to 1 each (footnote), not modelled
store      2       STR 2 (same footnote)
+word      1       LDM/STM/PUSH/POP/VLDM/VPUSH: 1+N (Table 3-1, 7-1): +1 per word after the first
mul        1       MUL, SMULL, UMULL, SMLAL, SMLAxy 1; MLA/MLS 2 (not separated)
simd       1       SMLAD, SMUAD, SXTB16, SADD16, ... 1 (Table 3-1, DSP)
div        7       SDIV/UDIV 2-12, data dependent: the midpoint
branch     2       B/BL/BX/CBZ 1+P, P = 1-3 pipeline refill when taken; not-taken 1: ~2 on average
pc load    +2      POP {pc}, LDR pc: the refill P on top of the load
fp         1       VADD, VSUB, VMUL, VMOV, VCVT, VCMP 1 (Table 7-1)
fp_mac     3       VMLA, VFMA 3 (Table 7-1)
fp_div     14      VDIV.F32, VSQRT.F32 14 (Table 7-1)
sys        1       barriers, MRS/MSR, BKPT: rare
=========  ======  ==========================================================================

Cortex-M7 (Arm Cortex-M7 Processor Technical Reference Manual, DDI 0489F): the TRM gives no per-
instruction cycle table. It describes a six-stage, in-order, dual-issue pipeline (two ALU/shift pipes,
one load/store pipe with a 64-bit interface to TCM/cache, a MAC pipe, a branch predictor) and the FPU
latencies. The costs below are throughput figures derived from that description; they assume code and
data in TCM or cache (no wait states) and are less certain than the M4 table:

=========  ======  ==========================================================================
class      cycles  reasoning
=========  ======  ==========================================================================
alu        0.5     two ALU pipes: independent ALU ops dual-issue
load       1       one load/store pipe, 1 per cycle; dual-issues with an ALU op (counted there)
store      1       as load
+word      0.5     64-bit load/store interface: two words per cycle for LDM/STM/LDRD
mul        1       one MAC pipe, single-cycle issue (32x32 multiply-accumulate)
simd       1       DSP ops issue in the MAC/ALU pipe, 1 per cycle
div        7       SDIV/UDIV 2-12 (iterative, early termination): the midpoint
branch     1       predicted branches ~1 (mispredicts, ~8 cycles, not modelled)
pc load    +1      return through POP {pc}: predicted by the return stack, small penalty
fp         1       single-precision VADD/VMUL 1/cycle, pipelined
fp_mac     1       VFMA.F32 issues 1/cycle (latency 3 for a dependent chain, not modelled)
fp_div     14      VDIV.F32 / VSQRT.F32 14 (single precision, FPv5)
sys        1
=========  ======  ==========================================================================
"""

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


@dataclass
class CycleEstimate:
    core: str
    instructions: int
    cycles: float
    by_class: dict[str, float] = field(default_factory=dict)
    clock_hz: int | None = None
    label: str = LABEL

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
        return d


def estimate_cycles(
    classes: Mapping[str, int],
    core: str,
    extra: Mapping[str, int] | None = None,
    clock_hz: int | None = None,
) -> CycleEstimate:
    """Estimated cycles for instruction-class counts on `core` ("m4" | "m7"). Unknown classes cost 1."""
    if core not in CORE_MODELS:
        raise ValueError(f"no cycle model for core {core!r}; have {', '.join(CORE_MODELS)}")
    model = CORE_MODELS[core]
    by_class: dict[str, float] = {}
    for cls, n in classes.items():
        by_class[cls] = n * model.costs.get(cls, 1.0)
    for name, n in (extra or {}).items():
        by_class[name] = n * model.extra_costs.get(name, 0.0)
    return CycleEstimate(
        core=core,
        instructions=int(sum(classes.values())),
        cycles=float(sum(by_class.values())),
        by_class=by_class,
        clock_hz=clock_hz,
    )
