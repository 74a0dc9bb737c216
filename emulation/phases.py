"""Exact per-phase instruction counts from the ttprof plugin's phase markers.

The firmware's tt_phase_begin/tt_phase_end (firmware/boards/common/tt_board.c) each execute one marker
instruction, a byte load from the phase name; the plugin records, in execution order, (kind, key, count):
kind 0 begin / 1 end, key = the address of the name, count = instructions executed so far, the marker
instruction included. Convention (the same for every phase, nested or not):

    exact count of a phase = the instructions the caller runs from the return of tt_phase_begin to the entry
    of tt_phase_end (so the call of tt_phase_end and its argument set-up are inside; the SysTick bookkeeping
    of begin/end is outside). The three marker instructions of a nested phase (begin's load and return,
    end's load) belong to no phase; everything else a nested phase runs, its UART event included, counts in
    its parents too.

With B = count at the begin marker and E = count at the end marker of one occurrence:
    exact = (E - 1) - (B + 1) - 3 x (nested phases) = E - B - 2 - (2 x nested begins + nested ends).
The plugin's per-phase buckets follow the same rule, so a phase's split by function sums to its exact count.

The n-th end marker that closes an open phase is the n-th `phase` event on the UART (tt_phase_end prints
the event after its marker); the runner pairs them in order and checks the names where it can.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

BEGIN, END = 0, 1
#: marker instructions per begin (its load and the stub's return) and per end (its load)
BEGIN_MARKER_INSNS, END_MARKER_INSNS = 2, 1


@dataclass(frozen=True)
class ExactPhase:
    key: int  # address of the phase name
    instructions: int
    depth: int  # nesting depth when it began (0 = outermost), like the UART event's "depth"


def exact_phases(marks: Sequence[Sequence[int]]) -> list[ExactPhase]:
    """The phases closed by `marks` ([kind, key, count], execution order), in the order they ended.

    An end with no open phase closes nothing (the firmware prints an error event, not a phase event)."""
    out: list[ExactPhase] = []
    stack: list[list[int]] = []  # [key, begin count, marker instructions nested inside]
    for kind, key, count in marks:
        if kind == BEGIN:
            stack.append([int(key), int(count), 0])
        elif stack:
            k, begin, nested = stack.pop()
            out.append(ExactPhase(k, int(count) - begin - 2 - nested, len(stack)))
            if stack:
                stack[-1][2] += nested + BEGIN_MARKER_INSNS + END_MARKER_INSNS
    return out


@dataclass
class Alignment:
    """Plugin phases paired with the UART phase events."""

    phases: list[dict[str, Any]]  # the UART phase events, "instr" exact where paired
    key_names: dict[int, str] = field(default_factory=dict)  # name address -> phase name
    paired: int = 0
    message: str = ""

    @property
    def complete(self) -> bool:
        return not self.message


def align(
    events: list[dict[str, Any]],
    marks: Sequence[Sequence[int]],
    name_at: Callable[[int], str | None] = lambda _addr: None,
) -> Alignment:
    """Pair the n-th closed phase of `marks` with the n-th phase event. Each returned phase dict has
    "instr" (exact when paired, else the SysTick count), "instr_systick" and "source" ("plugin" or
    "systick"). Pairing stops at the first name mismatch (`name_at` reads a name from the ELF)."""
    exact = exact_phases(marks)
    out: list[dict[str, Any]] = []
    key_names: dict[int, str] = {}
    message = ""
    paired = 0
    for i, ev in enumerate(events):
        d = {**ev, "instr_systick": ev["instr"], "source": "systick"}
        if not message and i < len(exact):
            ph = exact[i]
            known = key_names.get(ph.key) or name_at(ph.key)
            if known is not None and known != ev["name"]:
                message = (
                    f"phase marker {i} is `{known}` but phase event {i} is `{ev['name']}`: "
                    f"exact counts for the first {i} phases only"
                )
            else:
                key_names[ph.key] = ev["name"]
                d["instr"] = ph.instructions
                d["source"] = "plugin"
                paired += 1
        out.append(d)
    if not message and len(exact) != len(events):
        message = f"{len(exact)} phases closed by markers, {len(events)} phase events on the UART"
    for ph in exact:  # names of phases beyond the UART events (e.g. a run cut short)
        if ph.key not in key_names:
            name = name_at(ph.key)
            if name is not None:
                key_names[ph.key] = name
    return Alignment(out, key_names, paired, message)
