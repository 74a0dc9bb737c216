"""The memory plan: arena placement plus every other byte of SRAM the training firmware needs.

`total` (predicted SRAM) = arena + SRAM-resident program buffers (trainable weight/bias copies,
shadow copies, optimizer state: momentum buffers and mini-batch gradient accumulators, any table the program
puts in SRAM) + the input sample buffer + a stack
estimate + static runtime state. Flash (frozen weights, biases, tables) is reported separately.
Every figure is in bytes; KB in reports means 1024 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.program import Program, Storage
from tinytrain.schedule.arena import lower_bound, place
from tinytrain.schedule.lifetimes import Lifetime, align_up, compute_lifetimes, live_bytes, schedule_of

if TYPE_CHECKING:
    from emulation.boards import Board

#: Stack estimate (bytes). The straight-line `train_step()` calls one kernel at a time, but the int8
#: and float fast paths keep bounded stack buffers of up to 2 KB (docs/kernels.md, "stack"); measured
#: stack high-water of the training firmware on m4/m7: 3.1-4.0 KB (the benchmark's paper:* rows at
#: 128x128 reach 4.0 KB). 4 KB keeps the prediction at or above the measurement.
#: Pass `stack_estimate=` to override.
DEFAULT_STACK_BYTES = 4096

#: Static runtime state (bytes): xorshift32 state (4), step counter and learning rate (8), loss and
#: accuracy accumulators (16), the label and the run's metric ring for UART reports (up to 96),
#: the semihosting/UART driver state (~64), rounded up to 256 for alignment and small globals.
#: To be replaced by the firmware's measured .data+.bss minus arena and program buffers.
RUNTIME_STATE_BYTES = 256

#: breakdown category of an SRAM buffer, by role (anything else: "sram_other").
SRAM_ROLE_CATEGORY = {
    "weight": "trainable_weights",
    "bias": "trainable_biases",
    "shadow": "shadow_copies",
    # optimizer state (CompileOptions.momentum / accumulate): momentum buffers, mini-batch accumulators
    "momentum": "optimizer_state",
    "grad_acc": "optimizer_state",
    "table": "sram_tables",
}

CATEGORIES = (
    "arena",
    "trainable_weights",
    "trainable_biases",
    "shadow_copies",
    "optimizer_state",
    "sram_tables",
    "sram_other",
    "input",
    "stack",
    "runtime_state",
)

PEAK_TENSORS = 8  # how many of the largest buffers live at the peak a plan lists


def kb(n: int | float) -> str:
    return f"{n / 1024:.1f} KB"


@dataclass
class PeakTensor:
    name: str
    nbytes: int
    layer: str
    role: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": self.nbytes, "layer": self.layer, "role": self.role}


@dataclass
class MemoryPlan:
    model: str
    scheme: str
    board: str | None
    arena: int  # bytes of the arena (best placement)
    offsets: dict[str, int]  # arena buffer -> byte offset (kernel scratch included as "scratch#t:kernel")
    strategy: str  # the placement kept
    strategies: dict[str, int]  # arena bytes each strategy reached
    lower_bound: int  # max over steps of the live bytes: no placement can do better
    breakdown: dict[str, int]  # category -> bytes; sums to `total`
    total: int  # predicted SRAM
    flash: int  # bytes of FLASH buffers
    flash_breakdown: dict[str, int]  # by role
    peak_step: int  # step index (time line: training steps, then inference steps) of the arena peak
    peak_step_info: dict[str, Any]  # kernel, layer, phase of the peak step
    peak_tensors: list[PeakTensor]  # largest buffers live at the peak
    num_steps: int
    sram_budget: int | None = None  # the board's SRAM, when a board was given
    lifetimes: dict[str, Lifetime] = field(default_factory=dict, repr=False)
    live_per_step: list[int] = field(default_factory=list, repr=False)
    #: the sample is streamed (CompileOptions.stream_input): read tile by tile where the caller keeps it, no
    #: SRAM of the program's ("input" 0)
    input_streamed: bool = False

    @property
    def fits(self) -> bool | None:
        return None if self.sram_budget is None else self.total <= self.sram_budget

    def largest_categories(self, n: int = 3) -> list[tuple[str, int]]:
        return sorted(((k, v) for k, v in self.breakdown.items() if v), key=lambda kv: -kv[1])[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "scheme": self.scheme,
            "board": self.board,
            "sram_budget": self.sram_budget,
            "fits": self.fits,
            "total": self.total,
            "breakdown": dict(self.breakdown),
            "arena": {
                "bytes": self.arena,
                "strategy": self.strategy,
                "strategies": dict(self.strategies),
                "lower_bound": self.lower_bound,
                "peak_step": self.peak_step,
                "peak_step_info": dict(self.peak_step_info),
                "peak_tensors": [p.to_dict() for p in self.peak_tensors],
                "offsets": dict(self.offsets),
            },
            "flash": {"total": self.flash, "breakdown": dict(self.flash_breakdown)},
            "num_steps": self.num_steps,
            "input_streamed": self.input_streamed,
        }

    def report(self) -> str:
        """A readable summary (what `tinytrain compile` prints)."""
        lines = [
            f"memory plan: model {self.model}, scheme {self.scheme}"
            + (f", board {self.board} ({kb(self.sram_budget)} SRAM)" if self.sram_budget else "")
        ]
        lines.append(f"  {'total SRAM':<22}{self.total:>10,} B  {kb(self.total):>10}")
        for cat in CATEGORIES:
            v = self.breakdown.get(cat, 0)
            if v or cat in ("arena", "input", "stack", "runtime_state"):
                note = (
                    "  (streamed: read tile by tile where the caller keeps it)"
                    if (cat == "input" and self.input_streamed)
                    else ""
                )
                lines.append(f"    {cat:<20}{v:>10,} B  {kb(v):>10}{note}")
        if self.sram_budget is not None:
            diff = self.sram_budget - self.total
            lines.append(
                f"  {'fits' if diff >= 0 else 'DOES NOT FIT'}: "
                f"{kb(abs(diff))} {'free' if diff >= 0 else 'over'} of {kb(self.sram_budget)}"
            )
        others = ", ".join(f"{k} {kb(v)}" for k, v in self.strategies.items() if k != self.strategy)
        lines.append(
            f"  arena placement: {self.strategy} {kb(self.arena)} "
            f"(lower bound {kb(self.lower_bound)}; {others})"
        )
        info = self.peak_step_info
        lines.append(
            f"  arena peak at step {self.peak_step}/{self.num_steps} ({info.get('kernel')}, "
            f"layer {info.get('layer')!r}, {info.get('phase')}): "
            f"{kb(self.live_per_step[self.peak_step] if self.live_per_step else 0)} live"
        )
        for p in self.peak_tensors:
            lines.append(f"    {p.name:<40}{kb(p.nbytes):>10}  {p.role or '-'} of {p.layer or '-'}")
        lines.append(
            f"  flash: {self.flash:,} B ({kb(self.flash)}): "
            + ", ".join(f"{k} {kb(v)}" for k, v in sorted(self.flash_breakdown.items()))
        )
        return "\n".join(lines)


def board_sram_bytes(board: str | Board) -> int:
    """SRAM bytes of a board (a name or an `emulation.boards.Board`): its board.json's `sram.size`."""
    from emulation.boards import get_board

    return int(get_board(board).sram_size)


def _scheme_name(program: Program) -> str:
    s = program.scheme
    if isinstance(s, dict):
        return str(s.get("name", s.get("scheme", "?")))
    return str(s)


def plan_memory(
    program: Program,
    board: str | Board | None = None,
    stack_estimate: int | None = None,
    strategies: list[str] | None = None,
    include_infer: bool = True,
    runtime_state: int = RUNTIME_STATE_BYTES,
) -> MemoryPlan:
    """Plan the arena of `program` (training steps, then inference steps, over one arena) and predict
    its total SRAM. With `board`, the plan records the board's SRAM (see `check_fits`)."""
    steps = schedule_of(program, include_infer)
    # steps=None: training then inference steps, as two separate runs over one arena
    lts = compute_lifetimes(program, None if include_infer else list(program.steps), kernel_scratch=True)
    lt_list = sorted(lts.values(), key=lambda lt: (lt.start, lt.name))
    best, sizes = place(lt_list, strategies)
    live = live_bytes(lt_list, len(steps)) if steps else np.zeros(1, dtype=np.int64)
    peak_step = int(np.argmax(live))
    peak = sorted((lt for lt in lt_list if lt.live_at(peak_step)), key=lambda lt: (-lt.nbytes, lt.name))
    peak_tensors = [PeakTensor(lt.name, lt.nbytes, lt.layer, lt.role) for lt in peak[:PEAK_TENSORS]]
    st = steps[peak_step] if steps else None
    info = {"kernel": st.kernel, "layer": st.layer, "phase": st.phase} if st else {}

    breakdown = dict.fromkeys(CATEGORIES, 0)
    breakdown["arena"] = best.arena
    flash_breakdown: dict[str, int] = {}
    for buf in program.buffers.values():
        if buf.storage == Storage.SRAM:
            breakdown[SRAM_ROLE_CATEGORY.get(buf.role, "sram_other")] += align_up(buf.nbytes)
        elif buf.storage == Storage.INPUT:
            breakdown["input"] += align_up(buf.nbytes)
        elif buf.storage == Storage.FLASH:
            key = buf.role or "other"
            flash_breakdown[key] = flash_breakdown.get(key, 0) + buf.nbytes
    breakdown["stack"] = DEFAULT_STACK_BYTES if stack_estimate is None else int(stack_estimate)
    breakdown["runtime_state"] = int(runtime_state)
    total = sum(breakdown.values())
    return MemoryPlan(
        model=program.model,
        scheme=_scheme_name(program),
        board=getattr(board, "name", board),
        arena=best.arena,
        offsets=best.offsets,
        strategy=best.strategy,
        strategies=sizes,
        lower_bound=lower_bound(lt_list),
        breakdown=breakdown,
        total=total,
        flash=sum(flash_breakdown.values()),
        flash_breakdown=flash_breakdown,
        peak_step=peak_step,
        peak_step_info=info,
        peak_tensors=peak_tensors,
        num_steps=len(steps),
        sram_budget=board_sram_bytes(board) if board else None,
        lifetimes=lts,
        live_per_step=live.tolist(),
        input_streamed=program.buffers[program.input_buffer].storage == Storage.STREAM,
    )


def check_fits(plan: MemoryPlan, board: str | Board | None = None) -> None:
    """Raise TinytrainError if the plan's predicted SRAM exceeds the board's, saying by how much and
    what takes the memory."""
    name = getattr(board, "name", board) or plan.board
    if name is None:
        raise TinytrainError("check_fits needs a board")
    budget = board_sram_bytes(name)
    if plan.total <= budget:
        return
    cats = ", ".join(f"{k} {v:,} B" for k, v in plan.largest_categories(3))
    tensors = ", ".join(
        f"{p.name} {p.nbytes:,} B ({p.role or '-'} of {p.layer or '-'})" for p in plan.peak_tensors[:3]
    )
    info = plan.peak_step_info
    raise TinytrainError(
        f"does not fit: needs {plan.total:,} bytes of SRAM, board `{name}` has {budget:,} "
        f"({plan.total - budget:,} bytes over); largest: {cats}; arena peak at step {plan.peak_step} "
        f"({info.get('kernel')}, layer {info.get('layer')!r}): {tensors}"
    )
