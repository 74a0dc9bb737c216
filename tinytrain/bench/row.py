"""One benchmark row: plan, and when it fits, build + emulate a few training steps (no evaluation).

Run in its own process by the matrix runner (`python -m tinytrain.bench.row SPEC.json OUT.json WORK_DIR`),
so a crash, a hang or a fault loses only this row. Never raises for a failed run: the row gets the status
and the error. Stages reuse the job's (tinytrain.job): the plan is made here first (a plan that
does not fit is reported with its predicted figures, `does-not-fit`, and nothing is built); a fitting one
goes through `tinytrain.job.emulate()` with `evaluate=False`, `max_test=0` and `steps` (2-3) training steps.
The row's compiler options (`RowSpec.options`, "" = the defaults) reach both the plan and the firmware.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tinytrain import TinytrainError
from tinytrain.bench.config import RowSpec
from tinytrain.bench.kernels import OUTSIDE, attribute, call_graph
from tinytrain.bench.macs import macs_by_kernel, program_macs

KB = 1024


def _pred_columns(plan: Any) -> dict[str, Any]:
    b = dict(plan.breakdown)
    main = ("arena", "trainable_weights", "trainable_biases", "input", "stack")
    return {
        "sram_budget": plan.sram_budget,
        "pred_total": plan.total,
        "pred_arena": b.get("arena", 0),
        "pred_trainable_weights": b.get("trainable_weights", 0),
        "pred_trainable_biases": b.get("trainable_biases", 0),
        "pred_input": b.get("input", 0),
        "pred_other": sum(v for k, v in b.items() if k not in main),
        "pred_stack": b.get("stack", 0),
    }


def _status_of_error(msg: str) -> str:
    if "does not fit" in msg:
        return "does-not-fit"
    if "did not finish in time" in msg:
        return "timeout"
    return "fault"


def run_row(spec: RowSpec, work_dir: Path, progress: Any = None) -> dict[str, Any]:
    """-> {"row": CSV columns, "detail": per-kernel profile etc.}"""
    from emulation.boards import get_board
    from tinytrain.data.identity import is_path_dataset
    from tinytrain.job import EmulateConfig, FirmwareFault, assemble, emulate
    from tinytrain.job.prepare import load_job_data, with_head
    from tinytrain.schedule import check_fits

    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "kind": "device",
        "model": spec.model,
        "scheme": spec.scheme,
        "board": spec.board,
        "resolution": spec.resolution,
        "dataset": spec.dataset,
        "classes": spec.classes,
        "steps": spec.steps,
        "options": spec.options,
    }
    detail: dict[str, Any] = {"spec": spec.to_dict()}

    def done(status: str, error: str = "") -> dict[str, Any]:
        row["status"] = status
        row["error"] = error
        row["wall_s"] = round(time.perf_counter() - t0, 2)
        return {"row": row, "detail": detail}

    model: Any = spec.model
    classes = spec.classes
    if is_path_dataset(spec.dataset):  # the user's data first: the head takes its class count
        try:
            data = load_job_data(spec.model, spec.dataset, spec.resolution, spec.classes)
        except TinytrainError as exc:
            return done("failed", f"dataset: {exc}")
        model, classes = with_head(data.base, data.classes), data.classes
        row["classes"] = classes
        detail["dataset_provenance"] = data.provenance()
    try:
        options = spec.compile_options()
        board = get_board(spec.board)
        asm = assemble(
            model,
            spec.scheme,
            options,
            resolution=spec.resolution,
            classes=classes,
            board=board,
        )
        program, plan = asm.program, asm.plan
        assert plan is not None
    except Exception as exc:  # a bad spec or a compiler error: this row only
        detail["traceback"] = traceback.format_exc()
        return done("failed", f"compile/plan: {type(exc).__name__}: {exc}")
    row.update(_pred_columns(plan))
    macs = program_macs(program)
    row.update({f"macs_{k}": v for k, v in macs.items()})
    detail["macs_by_kernel"] = macs_by_kernel(program)
    detail["kernel_phases"] = {}
    for st in program.steps:
        detail["kernel_phases"].setdefault(st.kernel, [])
        if st.phase not in detail["kernel_phases"][st.kernel]:
            detail["kernel_phases"][st.kernel].append(st.phase)
    detail["plan"] = {"arena": plan.arena, "strategy": plan.strategy, "breakdown": dict(plan.breakdown)}
    try:
        check_fits(plan, board)
    except TinytrainError as exc:
        budget = plan.sram_budget or 0
        return done(
            "does-not-fit",
            f"does not fit: {plan.total / KB:.1f} KB predicted, "
            f"board `{spec.board}` has {budget / KB:.0f} KB "
            f"({(plan.total - budget) / KB:.1f} KB over). {str(exc).split('; ', 1)[-1]}",
        )

    cfg = EmulateConfig(
        model=spec.model,
        scheme=spec.scheme,
        dataset=spec.dataset,
        classes=classes,
        resolution=spec.resolution,
        board=spec.board,
        steps=spec.steps,
        lr=spec.lr,
        options=options,
        max_test=0,
        evaluate=False,
        check_reference=spec.check_reference,
        profile=True,
        timeout=spec.timeout,
        build_dir=str(work_dir / "build" / spec.slug()),
        save_record=False,
    )
    try:
        rec = emulate(cfg, progress=progress).record
    except FirmwareFault as exc:
        return done(_status_of_error(str(exc)), str(exc))
    except TinytrainError as exc:
        return done(_status_of_error(str(exc)) if "does not fit" in str(exc) else "failed", str(exc))
    except Exception as exc:
        detail["traceback"] = traceback.format_exc()
        return done("failed", f"{type(exc).__name__}: {exc}")

    sram = rec.get("sram") or {}
    b = sram.get("breakdown", {})
    row.update(
        {
            "sram_total": sram.get("total"),
            "sram_static": sram.get("static"),
            "sram_arena": b.get("arena"),
            "sram_trainable": b.get("trainable"),
            "sram_input": b.get("input"),
            "sram_other_static": b.get("other_static"),
            "sram_stack_hw": b.get("stack_high_water"),
            "flash_bytes": rec.get("flash_bytes"),
            "matched_reference": rec.get("matched_reference"),
            "clock_mhz": (rec.get("clock_hz") or 0) / 1e6 or None,
        }
    )
    ips = rec.get("instructions_per_step") or {}
    for p in ("forward", "loss", "backward", "update", "total"):
        row[f"instr_{p}"] = ips.get(p)
    detail["sram_largest_objects"] = sram.get("largest_objects")
    detail["emulate_estimate"] = {
        "est_cycles_per_step": rec.get("est_cycles_per_step"),
        "note": rec.get("estimate_note"),
    }
    detail["wall_seconds"] = rec.get("wall_seconds")

    # per-kernel profile (helpers folded in) from the runner's record, per training step
    steps = max(1, int(rec.get("steps") or spec.steps))
    kernels: dict[str, dict[str, float]] = {}
    run_record = Path(rec["run_dir"]) / "record.json"
    whole: dict[str, Any] = {}  # the run's cycle estimate with its range (emulation.cycles)
    if run_record.exists() and rec.get("elf"):
        full = json.loads(run_record.read_text()).get("profile") or {}
        whole = full.get("cycle_estimate") or {}
        prof = full.get("symbols") or {}
        names = set(detail["kernel_phases"]) | {s.kernel for s in program.infer_steps}
        kernels = attribute(prof, names, call_graph(Path(rec["elf"])))
    per_step = {
        k: {
            "instructions": v["instructions"] / steps,
            "cycles_estimate": v["cycles_estimate"] / steps,
            "macs": detail["macs_by_kernel"].get(k, 0),
            "phases": detail["kernel_phases"].get(k, []),
        }
        for k, v in kernels.items()
    }
    detail["kernels"] = per_step
    inside = [v for k, v in per_step.items() if k != OUTSIDE]
    k_instr = sum(v["instructions"] for v in inside)
    k_cyc = sum(v["cycles_estimate"] for v in inside)
    total = row.get("instr_total") or 0
    if k_instr and total:
        cpi = k_cyc / k_instr
        row["est_cpi"] = round(cpi, 4)
        row["est_cycles"] = int(round(total * cpi))
        if row.get("clock_mhz"):
            row["est_ms"] = round(row["est_cycles"] / (row["clock_mhz"] * 1e3), 2)
        point = float(whole.get("cycles") or 0.0)
        if point > 0 and whole.get("cycles_low") is not None and whole.get("cycles_high") is not None:
            row["est_cycles_low"] = int(round(row["est_cycles"] * float(whole["cycles_low"]) / point))
            row["est_cycles_high"] = int(round(row["est_cycles"] * float(whole["cycles_high"]) / point))
    if row.get("est_cycles") and macs["total"]:
        row["macs_per_cycle"] = round(macs["total"] / row["est_cycles"], 4)
    if total and macs["total"]:
        row["instr_per_mac"] = round(total / macs["total"], 3)
    row["top_kernels"] = ";".join(
        f"{k}={int(v['instructions'])}" for k, v in list(per_step.items())[:8] if k != OUTSIDE
    )
    if rec.get("matched_reference") is False:
        return done("mismatch", "device and host reference differ: " + json.dumps(rec.get("match", {}))[:500])
    return done("ok")


def main(argv: list[str]) -> int:
    spec_file, out_file, work_dir = argv
    spec = RowSpec(**json.loads(Path(spec_file).read_text()))

    def log(m: str) -> None:
        print(m, flush=True)

    result = run_row(spec, Path(work_dir), progress=log)
    tmp = Path(out_file).with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(out_file)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
