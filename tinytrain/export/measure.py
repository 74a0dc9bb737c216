"""`tinytrain export --measure`: the exported example run once in QEMU with the ttprof plugin, for the speed
figures of the folder's README: exact instructions per training step (by phase) and the cycle model's
ESTIMATE of the time at the board's clock (emulation/cycles.py; QEMU counts instructions, not cycles).

The library is built exactly as exported, except that the training step keeps its phase markers (no
TT_NO_PHASE_COUNTERS), so the plugin can count the step's phases exactly; the phase markers add a few hundred
instructions per step, outside the phases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinytrain import TinytrainError

PHASES = ("forward", "loss", "backward", "update")


def measure_example(folder: Path, board: str, work: Path, timeout: float = 600.0) -> dict[str, Any]:
    from emulation.boards import get_board
    from emulation.build import build_firmware
    from emulation.cycles import estimate_cycles
    from emulation.runner import run_elf

    manifest = json.loads((folder / "tinytrain.json").read_text())
    # the self-check's steps and the one after the reload (main.c): every tt_train_step call counts
    steps = len(manifest["self_check"]["labels"]) + 1
    sources = [
        *(folder / f for f in manifest["lib_sources"]),  # src/ and src/ops/: what the model uses
        folder / "board" / "flash_emulated.c",
        folder / "example" / "main.c",
        folder / "example" / "example_data.c",
    ]
    built = build_firmware(
        board,
        sources,
        include_dirs=[folder / "include", folder / "src", folder / "board", folder / "example"],
        out_dir=work / "bin",
        name="example",
    )
    rec = run_elf(built.elf, board, run_dir=work / "run", profile=True, timeout=timeout)
    if not rec.ok:
        raise TinytrainError(f"the exported example failed on {board} while measuring: {rec.message}")
    b = get_board(board)
    classes: dict[str, int] = {}
    extra: dict[str, int] = {}
    by_phase: dict[str, int] = {}
    for name in PHASES:
        try:
            p = rec.phase_profile(name)
        except KeyError:
            continue
        by_phase[name] = int(p["instructions"]) // steps
        for k, v in p["all"]["classes"].items():
            classes[k] = classes.get(k, 0) + int(v)
        for k, v in p["all"].get("extra", {}).items():
            extra[k] = extra.get(k, 0) + int(v)
    if not by_phase:
        raise TinytrainError("the measuring run reported no phases (ttprof plugin missing?)")
    est = estimate_cycles(classes, b.cycle_core, extra, b.clock_hz)
    return {
        "board": board,
        "core": b.core,
        "clock_hz": b.clock_hz,
        "steps": steps,
        "instructions_per_step": sum(by_phase.values()),
        "instructions_by_phase": by_phase,
        "est_cycles_per_step": round(est.cycles / steps),
        "est_ms_per_step": est.cycles / steps / b.clock_hz * 1000,
        "stack_high_water": rec.memory.stack_high_water if rec.memory else None,
        "source": "QEMU -icount + ttprof (exact instructions); cycles: emulation.cycles model (estimate)",
    }
