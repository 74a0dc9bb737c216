"""Account and record a run: measured SRAM (ELF + stack high-water), instructions per step by phase and per
layer, the cycle estimate, and the run record (format `tinytrain-run/1`) that the report and the bench read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emulation.boards import Board, get_board
from tinytrain import RESULTS_DIR

RECORD_FORMAT = "tinytrain-run/1"
PHASES = ("forward", "loss", "backward", "update")
#: The committed accuracy evidence (docs/evidence.md, `tinytrain experiment`): Fig. 9's table.
EVIDENCE_FIG9 = RESULTS_DIR / "evidence" / "fig9.csv"


def _evidence_file(task: str | None) -> Path:
    """The evidence a job's record quotes: a task's own (results/evidence/<task>.csv, same columns), else
    Fig. 9's."""
    return EVIDENCE_FIG9 if task is None else RESULTS_DIR / "evidence" / f"{task}.csv"


def _decode_preds(s: str | None) -> list[int] | None:
    if s is None:
        return None
    return [int(s[i : i + 2], 16) for i in range(0, len(s), 2)]


def measured_sram(elf: Path, memory: Any, stack_hw: int, board: str | Board) -> dict[str, Any]:
    """Measured SRAM: ELF static (.data + .bss), by symbol, plus the stack high-water mark. `trainable` is
    every SRAM copy the generated code declares (tt_p_*: updated weights, biases, shadow copies)."""
    from emulation.elfinfo import ElfSymbols

    b = get_board(board)
    static = int(memory.sram_static)
    objs = {s.name: s.size for s in ElfSymbols(elf).objects_in(b.sram_origin, b.sram_origin + b.sram_size)}
    arena = objs.get("tt_arena", 0)
    trainable = sum(v for k, v in objs.items() if k.startswith("tt_p_"))
    inp = objs.get("tt_sample", 0)
    breakdown = {
        "arena": arena,
        "trainable": trainable,
        "input": inp,
        "other_static": static - arena - trainable - inp,
        "stack_high_water": int(stack_hw),
    }
    return {
        "total": static + int(stack_hw),
        "static": static,
        "breakdown": breakdown,
        "largest_objects": dict(sorted(objs.items(), key=lambda kv: -kv[1])[:8]),
    }


def evidence_quote(scheme: str, baseline: str, path: Path = EVIDENCE_FIG9) -> str | None:
    """`scheme` vs the `baseline` scheme in the committed evidence, per dataset (mean ± std over seeds),
    read from results/evidence/fig9.csv; None when the file or a row is missing. A task where both
    saturate (faces) cannot show the difference; the evidence on the other dataset can."""
    import csv

    if scheme == baseline:
        return None  # nothing to compare
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    acc = {(r["scheme"], r["dataset"]): r for r in rows}

    def pm(r: dict[str, str], col: str = "acc") -> str:
        return f"{100 * float(r[f'{col}_mean']):.1f} ± {100 * float(r[f'{col}_std']):.1f}%"

    parts = []
    for ds in sorted({r["dataset"] for r in rows}):
        a, b = acc.get((scheme, ds)), acc.get((baseline, ds))
        if a and b:
            text = f"{ds} {pm(a)} vs {pm(b)}"
            none = acc.get(("none", ds))  # a task's table may say what no adaptation gets
            if none:
                text += f", no adaptation {pm(none)}"
            if a.get("float_acc_mean"):  # and its float twin (the upper bound)
                text += f"; float twin {pm(a, 'float_acc')}"
            parts.append(text)
    if not parts:
        return None
    seeds = rows[0].get("seeds", "?")
    head = f"{scheme} vs {baseline} on the host reference ({seeds} seeds, docs/evidence.md): "
    return head + "; ".join(parts)


def step_instructions(
    events: list[dict[str, Any]], phases: list[dict[str, Any]], steps: list[Any] | None = None
) -> dict[str, Any]:
    """Instructions per training step by phase. The generated step brackets each run of consecutive steps
    of one phase with tt_phase_begin/tt_phase_end (flat); each end prints a phase event, paired in order
    with `phases` (the runner's list: exact counts, `source` "plugin", when profiled). A step's phases are
    the phase events since the previous step event. `total` is the sum of the step's phases (exact when
    profiled): the step's own work, without the instrumentation (the phase events' SysTick bookkeeping and
    UART lines, between phases); `call_systick` is the SysTick count of the whole tt_train_step call,
    instrumentation included.

    A step run as tt_train_step_calls (the first, with TT_DS_PROFILE_CALLS) has one phase "c<i>" per kernel
    call i of `steps` (the Program's step list): its calls are returned in `calls` and summed into its
    phases; the means leave it out when other steps exist (its per-call brackets add a few instructions)."""
    call_of = {f"c{i}": st for i, st in enumerate(steps or [])}
    per: list[dict[str, int]] = []
    by_calls: list[bool] = []
    systick_totals: list[int] = []
    cur = {p: 0 for p in PHASES}
    cur_calls: list[dict[str, Any]] = []
    first_calls: list[dict[str, Any]] = []
    k, sources, n_events = 0, set(), []
    for ev in events:
        kind = ev.get("ev")
        if kind == "phase":
            ph = phases[k] if k < len(phases) else {**ev, "source": "systick"}
            k += 1
            name = str(ph.get("name"))
            n = int(ph.get("instr", 0))
            if name in cur:
                n_events.append(len(per))
                cur[name] += n
                sources.add(str(ph.get("source", "systick")))
            elif name in call_of:
                st = call_of[name]
                cur[st.phase] += n
                sources.add(str(ph.get("source", "systick")))
                cur_calls.append(
                    {
                        "i": int(name[1:]),
                        "kernel": st.kernel,
                        "layer": st.layer,
                        "phase": st.phase,
                        "instr": n,
                    }
                )
        elif kind == "step":
            if not any(cur.values()):  # a firmware without phase events: the step event's own SysTick counts
                cur = {p: int(ev.get("phases", {}).get(p, 0)) for p in PHASES}
                sources.add("systick")
            per.append(cur)
            by_calls.append(bool(cur_calls))
            if cur_calls and not first_calls:
                first_calls = cur_calls
            systick_totals.append(int(ev.get("instr", 0)))
            cur, cur_calls = {p: 0 for p in PHASES}, []
    totals = [sum(d.values()) for d in per]
    keep = [i for i in range(len(per)) if not by_calls[i]] or list(range(len(per)))
    mean = {p: (int(round(np.mean([per[i][p] for i in keep]))) if keep else 0) for p in PHASES}
    # The total is the sum of the (rounded) phase means, as documented: rounding the mean of the step
    # totals separately can differ from it by a few instructions.
    mean["total"] = sum(mean[p] for p in PHASES)
    source = "plugin" if sources == {"plugin"} else ("systick" if sources else None)
    kept_systick = [systick_totals[i] for i in keep]
    call = int(round(np.mean(kept_systick))) if kept_systick else 0
    note = (
        "exact (ttprof plugin, phase markers): per phase, mean over steps; total = sum of the phases"
        if source == "plugin"
        else "SysTick counts (one tick = 40 instructions on mps2; run with the plugin for exact counts)"
    )
    if first_calls and len(keep) < len(per):
        note += "; the first step (every kernel call its own phase, for the per-layer breakdown) left out"
    return {
        "per_step": mean,
        "steps": per,
        "totals": totals,
        "call_systick": call,
        "phase_events_per_step": n_events.count(keep[0]) if keep else 0,
        "calls": first_calls,
        "mean_over": len(keep),
        "source": source,
        "note": note + f"; the whole tt_train_step call incl. the phase events: {call} (SysTick)",
    }


def layers_per_step(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instructions of each layer by phase in one step (from the per-call counts), largest first."""
    layers: dict[str, dict[str, Any]] = {}
    for c in calls:
        d = layers.setdefault(c["layer"] or "-", {"layer": c["layer"] or "-", **{p: 0 for p in PHASES}})
        d[c["phase"]] += int(c["instr"])
    for d in layers.values():
        d["total"] = sum(d[p] for p in PHASES)
    return sorted(layers.values(), key=lambda d: -d["total"])


def kernels_per_step(profile: dict[str, Any], n_steps: int, top: int = 12) -> dict[str, dict[str, int]]:
    """Instructions per training step of each function, by phase (plugin; all steps merged / n_steps)."""
    out: dict[str, dict[str, int]] = {}
    for name, ph in (profile.get("phases") or {}).items():
        if name not in PHASES or not n_steps:
            continue
        syms = sorted(ph.get("symbols", {}).items(), key=lambda kv: -int(kv[1]["total"]))
        out[name] = {fn: int(round(int(c["total"]) / n_steps)) for fn, c in syms[:top]}
    return {p: out[p] for p in PHASES if p in out}


def estimate_step_cycles(
    board: str | Board, counts: dict[str, Any], profile: dict[str, Any] | None, kernels: list[str]
) -> dict[str, Any] | None:
    """Cycles per step: from the plugin's per-phase instruction classes when the phases were counted exactly
    (the cycle model on exactly the step's instructions), else `estimate_cycles` on the total."""
    total = int(counts["per_step"]["total"])
    phases = (profile or {}).get("phases") or {}
    steps = int(counts["mean_over"])  # the steps counted under the four phase names
    if counts["source"] == "plugin" and steps and all(p in phases for p in PHASES if counts["per_step"][p]):
        b = get_board(board)
        cyc = sum(float(phases[p]["cycle_estimate"]["cycles"]) for p in PHASES if p in phases) / steps
        instr = sum(int(phases[p]["all"]["total"]) for p in PHASES if p in phases) / steps
        cpi = cyc / instr if instr else 1.0
        ests = [phases[p]["cycle_estimate"] for p in PHASES if p in phases]
        low = sum(float(e.get("cycles_low") or e["cycles"]) for e in ests) / steps
        high = sum(float(e.get("cycles_high") or e["cycles"]) for e in ests) / steps
        scale = total * cpi / cyc if cyc else 0.0  # the range (emulation.cycles), scaled like the point
        return {
            "cycles": int(round(total * cpi)),
            "cycles_low": int(round(low * scale)),
            "cycles_high": int(round(high * scale)),
            "ms": round(1000.0 * total * cpi / b.clock_hz, 3),
            "cpi": round(cpi, 4),
            "note": f"estimate: {total} instructions/step x {cpi:.3f} cycles/instruction from the exact "
            f"instruction-class mix of the step's phases (plugin, {b.cycle_core} model), at "
            f"{b.clock_hz / 1e6:.0f} MHz; QEMU counts instructions, not cycles",
        }
    return estimate_cycles(board, total, profile, kernels)


def estimate_cycles(
    board: str | Board,
    instructions: int,
    profile: dict[str, Any] | None = None,
    kernels: list[str] | None = None,
) -> dict[str, Any] | None:
    """Cycles and milliseconds per step at the board's nominal clock: an ESTIMATE. With a plugin profile,
    cycles per instruction come from the instruction-class mix of the kernels (emulation.cycles);
    without one, the board's assumed average (board.json `cycles.fallback_cpi`)."""
    b = get_board(board)
    cpi, source = None, ""
    if profile:
        syms = profile.get("symbols", {})
        names = [f"tt_{k}" for k in (kernels or [])]
        instr = sum(syms[n]["total"] for n in names if n in syms)
        cyc = sum(syms[n].get("cycles_estimate", 0.0) for n in names if n in syms)
        if instr:
            cpi, source = (
                cyc / instr,
                f"instruction-class mix of the kernels (plugin profile, {b.cycle_core} model)",
            )
    if cpi is None:
        cpi, source = (
            b.fallback_cpi,
            "an assumed average (no plugin profile; use --profile)",
        )
    c = int(round(instructions * cpi))
    return {
        "cycles": c,
        "ms": round(1000.0 * c / b.clock_hz, 3),
        "cpi": round(cpi, 4),
        "note": f"estimate: {instructions} instructions/step x {cpi:.3f} cycles/instruction from {source}, "
        f"at {b.clock_hz / 1e6:.0f} MHz; QEMU counts instructions, not cycles",
    }


def _profile_summary(profile: dict[str, Any], kernels: list[str]) -> dict[str, Any]:
    """Per-kernel instruction counts and cycle estimates over the whole run (from the plugin)."""
    syms = profile.get("symbols", {})
    per = {
        k: {
            "instructions": syms[f"tt_{k}"]["total"],
            "cycles_estimate": syms[f"tt_{k}"].get("cycles_estimate"),
        }
        for k in kernels
        if f"tt_{k}" in syms
    }
    return {"all": profile.get("all"), "kernels": per, "cycle_estimate": profile.get("cycle_estimate")}


def device_results(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the firmware reported: per-step losses (from their float32 bits), labels, evaluations and
    test predictions (by `before` / `after`)."""
    steps_ev = [e for e in events if e.get("ev") == "step"]
    return {
        "steps": steps_ev,
        "losses": [
            float(np.frombuffer(int(e["loss_bits"], 16).to_bytes(4, "little"), np.float32)[0])
            for e in steps_ev
        ],
        "loss_bits": [str(e["loss_bits"]) for e in steps_ev],
        "evals": {e["when"]: e for e in events if e.get("ev") == "eval" and "correct" in e},
        "preds": {
            e["when"]: _decode_preds(e.get("preds")) for e in events if e.get("ev") == "eval" and "preds" in e
        },
    }


def build_record(
    cfg: Any,
    board: Any,
    program: Any,
    plan: Any,
    gen: Any,
    job: Any,
    events: list[dict[str, Any]],
    dev: dict[str, Any],
    run_rec: Any,
    elf: Path | None,
    memory: Any,
    match: dict[str, Any],
    matched: bool | None,
    baseline: dict[str, Any] | None,
    unapplied: int,
    run_dir: Path,
    wall: dict[str, float],
) -> dict[str, Any]:
    """The run record of a finished run (every field the report, the bench and `--json` read)."""
    qemu = cfg.backend == "qemu"
    steps_ev, evals = dev["steps"], dev["evals"]
    n_test = len(job.y_test)
    exit_ev = next((e for e in reversed(events) if e.get("ev") == "exit"), {})
    counts = step_instructions(events, run_rec.phases if run_rec is not None else [], list(program.steps))
    est = (
        estimate_step_cycles(board, counts, run_rec.profile if run_rec else None, gen.kernels)
        if qemu
        else None
    )
    stack_hw = int(exit_ev.get("stack_hw", 0))
    sram = measured_sram(elf, memory, stack_hw, board) if elf is not None else None
    boot = next((e for e in events if e.get("ev") == "boot"), {})
    infer_instr = None
    if evals and n_test:
        infer_instr = int(np.mean([int(e.get("instr", 0)) for e in evals.values()]) / n_test)
    profile = run_rec.profile if run_rec is not None else None
    return {
        "format": RECORD_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": cfg.backend,
        "board": board.name if qemu else "host",
        "model": cfg.model,
        "scheme": cfg.scheme,
        "dataset": cfg.dataset,
        "classes": program.num_classes,
        "resolution": cfg.resolution,
        "input_shape": [int(v) for v in program.buffers[program.input_buffer].shape],  # HWC, as the device
        "task": cfg.task,
        "update_rule": cfg.update_rule,
        "momentum": cfg.momentum,
        "accumulate": cfg.accumulate,
        "head_lr_scale": cfg.head_lr_scale,
        "unapplied_samples": unapplied,  # a trailing partial mini-batch: accumulated, never applied
        "lr": cfg.lr,
        "seed": cfg.seed,
        "steps": len(steps_ev),
        "epochs": round(len(steps_ev) / max(1, len(job.y_train)), 3),
        "n_train": int(len(job.y_train)),
        "n_test": n_test,
        "losses": dev["losses"],
        "loss_bits": dev["loss_bits"],
        "labels": [int(e.get("label", -1)) for e in steps_ev],
        "accuracy_before": (int(evals["before"]["correct"]) / n_test)
        if "before" in evals and n_test
        else None,
        "accuracy_after": (int(evals["after"]["correct"]) / n_test) if "after" in evals and n_test else None,
        "instructions_per_step": counts["per_step"] if qemu else None,
        "instructions_source": counts["source"] if qemu else None,
        "instructions_per_step_all": counts["totals"] if qemu else None,
        "instructions_per_step_call_systick": counts["call_systick"] if qemu else None,
        "instructions_per_inference": infer_instr if qemu else None,
        "instruction_counter": {
            "source": counts["source"] if qemu else None,
            "instr_per_tick": boot.get("instr_per_tick"),
            "note": counts["note"],
        },
        "phase_events_per_step": counts["phase_events_per_step"] if qemu else None,
        "layers_per_step": layers_per_step(counts["calls"]) if counts["calls"] else None,
        "calls_first_step": counts["calls"] or None,
        "profile_phase_alignment": (run_rec.profile or {}).get("phase_alignment") if run_rec else None,
        "kernels_per_step": kernels_per_step(profile, counts["mean_over"]) if profile else None,
        "est_cycles_per_step": est["cycles"] if est else None,
        "est_cycles_range_per_step": [est["cycles_low"], est["cycles_high"]]
        if est and "cycles_low" in est
        else None,
        "est_ms_per_step": est["ms"] if est else None,
        "est_cpi": est["cpi"] if est else None,
        "estimate_note": est["note"] if est else None,
        "profile": _profile_summary(profile, gen.kernels) if profile else None,
        "clock_hz": boot.get("clock_hz"),
        "qemu_machine": board.qemu_machine if qemu else None,
        "flash_budget": board.flash_size if qemu else None,
        "sram": sram,
        "sram_budget": plan.sram_budget,
        "sram_predicted": {
            "total": plan.total,
            "breakdown": dict(plan.breakdown),
            "arena": plan.arena,
            "strategy": plan.strategy,
        },
        "flash_bytes": int(memory.flash) if memory is not None else None,
        "flash": memory.to_dict() if memory is not None else None,
        "codegen": {
            "kernel_calls": len(program.steps),
            "infer_calls": len(program.infer_steps),
            "trainable_bytes": gen.sram_param_bytes,
            "constant_bytes": gen.flash_bytes,
            "kernels": gen.kernels,
        },
        "matched_reference": matched,
        "match": match,
        "evidence": evidence_quote(cfg.scheme, cfg.baseline, _evidence_file(cfg.task))
        if cfg.baseline
        else None,
        "baseline": baseline,
        "exit_status": int(exit_ev.get("status", 0)),
        "elf": str(elf) if elf else None,
        "run_dir": str(run_dir),
        "wall_seconds": wall,
        "command": cfg.command(),
        "config": cfg.to_dict(),
    }


def save_record(record: dict[str, Any], runs_dir: Path, key: str) -> Path:
    """Write the record as runs_dir/<time>-<key>.json (through a temporary name); returns the path."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = runs_dir / f"{stamp}-{key}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)
    return path
