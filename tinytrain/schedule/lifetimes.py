"""Lifetimes of arena buffers, derived from the step order of a `Program`.

Time is the step index. A buffer is live on the closed interval [first write, last access]:

- it is born at the first step that writes it (an arena buffer read before any write is an error:
  the arena holds garbage there); the input sample, when it lives in the arena
  (`CompileOptions.input_in_arena`), is born at the start of each run (the caller writes it there);
- it dies at the last step that reads (or writes) it; a buffer that no later step reads dies at its
  producer, but still occupies memory *during* that step (the kernel writes it);
- in place: a step whose output names one of its inputs writes the same buffer, so the output
  shares the input's slot by construction and simply extends its lifetime;
- scratch buffers (`role == "scratch"`) live only during each step that uses them: one interval
  per use, so one scratch buffer reused by many steps does not pin memory in between;
- kernel scratch that is not a Program buffer (asked from the kernel, see `scratch.py`) becomes a
  synthetic buffer live during its step only.

Buffers that are live at the same step conflict: a kernel reading `x` and writing `y` at step t
needs both, so they must not overlap in memory unless they are the same buffer (in place).

When a program has both a training schedule (`steps`) and an inference schedule (`infer_steps`)
over shared buffer names, the two run at different times over the same arena: the inference steps
are put on the same time line after the training steps, so one placement serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinytrain import TinytrainError
from tinytrain.program import Program, Step, Storage

#: Arena alignment in bytes; every offset and every size is rounded up to it (the arena itself is
#: declared `__attribute__((aligned(8)))`, so offsets aligned = addresses aligned). float32 and int32
#: buffers need 4 (VLDR/LDR); the int8 SIMD paths read two words at once with LDRD/LDM (SMLAD on
#: 2×2 int16 lanes), which on the M7's 64-bit AXI/TCM bus is single-access only at 8. The cost is
#: under 8 bytes per buffer.
ALIGN = 8


def align_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class Lifetime:
    """Where a buffer is live. `intervals` are closed [start, end] step ranges, sorted, disjoint."""

    name: str
    nbytes: int  # unaligned size
    intervals: list[tuple[int, int]]
    layer: str = ""
    role: str = ""
    step_kinds: list[str] = field(default_factory=list)  # kernel of the producer, for reports

    @property
    def size(self) -> int:
        """Size in the arena (aligned)."""
        return align_up(self.nbytes)

    @property
    def start(self) -> int:
        return self.intervals[0][0]

    @property
    def end(self) -> int:
        return self.intervals[-1][1]

    def live_at(self, t: int) -> bool:
        return any(s <= t <= e for s, e in self.intervals)

    def overlaps(self, other: Lifetime) -> bool:
        return any(s1 <= e2 and s2 <= e1 for s1, e1 in self.intervals for s2, e2 in other.intervals)


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def schedule_of(program: Program, include_infer: bool = True) -> list[Step]:
    """The steps on the planner's time line: training steps, then inference steps."""
    return list(program.steps) + (list(program.infer_steps) if include_infer else [])


def compute_lifetimes(
    program: Program, steps: list[Step] | None = None, kernel_scratch: bool = True
) -> dict[str, Lifetime]:
    """Lifetimes of every ARENA buffer used by `steps` (default: training then inference steps).

    Raises TinytrainError if a step names an unknown buffer or reads an arena buffer before any
    step wrote it. Arena buffers no step touches get no lifetime (they need no memory).
    """
    from tinytrain.schedule.scratch import kernel_scratch_bytes

    sched = schedule_of(program) if steps is None else steps
    # a schedule boundary (train -> infer) starts a new run: a buffer must be rewritten there
    boundaries = {0, len(program.steps)} if steps is None else {0}
    first_write: dict[str, int] = {}
    spans: dict[str, list[list[int]]] = {}  # open intervals per buffer, per run
    scratch_uses: dict[str, list[int]] = {}
    producer: dict[str, str] = {}
    result: dict[str, Lifetime] = {}
    run_start = 0
    for t, step in enumerate(sched):
        if t in boundaries:
            run_start = t
        for arg, name in list(step.inputs.items()) + list(step.outputs.items()):
            if name not in program.buffers:
                raise TinytrainError(
                    f"step {t} ({step.kernel}, layer {step.layer!r}): argument {arg!r} "
                    f"names unknown buffer {name!r}"
                )
        for name in set(step.inputs.values()) | set(step.outputs.values()):
            buf = program.buffers[name]
            if buf.storage != Storage.ARENA:
                continue
            if buf.role == "scratch":
                scratch_uses.setdefault(name, []).append(t)
                continue
            is_write = name in step.outputs.values()
            runs = spans.setdefault(name, [])
            if not runs or runs[-1][0] < run_start:  # not yet live in this run
                if name == program.input_buffer:  # the sample in the arena: written before the run starts
                    runs.append([run_start, t])
                    first_write.setdefault(name, run_start)
                    producer.setdefault(name, "input")
                    continue
                if not is_write:
                    raise TinytrainError(
                        f"step {t} ({step.kernel}, layer {step.layer!r}) reads arena buffer "
                        f"{name!r} before any step writes it"
                    )
                runs.append([t, t])
                first_write.setdefault(name, t)
                producer.setdefault(name, step.kernel)
            else:
                runs[-1][1] = t
        if kernel_scratch:
            nbytes = kernel_scratch_bytes(step, program)
            if nbytes > 0:
                sname = f"scratch#{t}:{step.kernel}"
                result[sname] = Lifetime(sname, nbytes, [(t, t)], step.layer, "kernel-scratch", [step.kernel])
    for name, runs in spans.items():
        buf = program.buffers[name]
        result[name] = Lifetime(
            name, buf.nbytes, _merge([(s, e) for s, e in runs]), buf.layer, buf.role, [producer.get(name, "")]
        )
    for name, uses in scratch_uses.items():
        buf = program.buffers[name]
        result[name] = Lifetime(name, buf.nbytes, _merge([(t, t) for t in uses]), buf.layer, buf.role)
    return result


def live_matrix(lifetimes: list[Lifetime], num_steps: int) -> np.ndarray:
    """Boolean [buffer, step] matrix: True where the buffer is live."""
    m = np.zeros((len(lifetimes), max(num_steps, 1)), dtype=bool)
    for i, lt in enumerate(lifetimes):
        for s, e in lt.intervals:
            m[i, s : e + 1] = True
    return m


def conflict_matrix(lifetimes: list[Lifetime]) -> np.ndarray:
    """Boolean [i, j]: buffers i and j are live at a common step (so must not share memory)."""
    if not lifetimes:
        return np.zeros((0, 0), dtype=bool)
    n_steps = max(lt.end for lt in lifetimes) + 1
    m = live_matrix(lifetimes, n_steps).astype(np.float32)
    return (m @ m.T) > 0


def live_bytes(lifetimes: list[Lifetime], num_steps: int) -> np.ndarray:
    """Aligned bytes live at each step: the lower bound of any placement is its maximum."""
    if not lifetimes:
        return np.zeros(max(num_steps, 1), dtype=np.int64)
    m = live_matrix(lifetimes, num_steps)
    sizes = np.array([lt.size for lt in lifetimes], dtype=np.int64)
    return (m * sizes[:, None]).sum(axis=0)
