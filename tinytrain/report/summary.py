"""The short text summary of a run record (what `tinytrain emulate` prints at the end, and the report's
first block), and the grouping of the planner's SRAM categories into the measured ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

PHASES = ("forward", "loss", "backward", "update")

#: The planner's SRAM categories (tinytrain.schedule.plan.CATEGORIES) grouped as the measurement groups
#: the ELF's symbols (arena, trainable copies, input, other static, stack).
PREDICTED_GROUPS: dict[str, tuple[str, ...]] = {
    "arena": ("arena",),
    "trainable": ("trainable_weights", "trainable_biases", "shadow_copies", "optimizer_state", "momentum"),
    "input": ("input",),
    "other static": ("sram_tables", "sram_other", "runtime_state"),
    "stack": ("stack",),
}


def predicted_groups(breakdown: dict[str, Any]) -> dict[str, int]:
    """The planner's breakdown summed into the groups of the measured SRAM (PREDICTED_GROUPS)."""
    return {group: sum(int(breakdown.get(k, 0)) for k in cats) for group, cats in PREDICTED_GROUPS.items()}


def _kb(v: float) -> str:
    return f"{v / 1024:.1f}"


def _mi(v: float) -> str:
    return f"{v / 1e6:.2f} M" if v >= 10_000 else str(int(v))


def _range_ms(r: dict[str, Any]) -> str:
    """ "; range A-B ms (the model's best/worst case widened by its CoreMark error band, ...)" or "" without
    a range (emulation.cycles.range_text)."""
    from emulation.boards import get_board
    from emulation.cycles import range_text

    rng, hz = r.get("est_cycles_range_per_step"), r.get("clock_hz")
    if not rng or not hz or r.get("board") in (None, "host"):
        return ""
    return "; " + range_text(rng[0], rng[1], int(hz), get_board(r["board"]).cycle_core)


def _input_text(r: dict[str, Any]) -> str:
    """`80x80` for a square image input, else the device's input shape (H x W x C)."""
    if r.get("resolution"):
        return f"{r['resolution']}x{r['resolution']}"
    shape = r.get("input_shape") or []
    return "input " + "x".join(str(v) for v in shape) + " (HWC)"


def summary(record: dict[str, Any]) -> str:
    """The short human summary `tinytrain emulate` prints at the end."""
    r = record
    where = f"board {r['board']}" + (f" (QEMU {r['qemu_machine']})" if r.get("qemu_machine") else "")
    lines = [
        f"tinytrain emulate: {r['model']} + {r['scheme']} on {r['dataset']} ({r['classes']} classes, "
        f"{_input_text(r)}), {where}, {r['steps']} training steps ({r['epochs']} epochs)"
    ]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label:<13} {text}")

    if r.get("dataset_summary"):  # the dataset's own line (tinytrain.data.Dataset.summary)
        row("data", str(r["dataset_summary"]))
    if r.get("momentum") or int(r.get("accumulate") or 1) > 1:
        n = int(r.get("accumulate") or 1)
        left = int(r.get("unapplied_samples") or 0)
        row(
            "optimizer",
            f"SGD momentum {r.get('momentum') or 0:g}, mini-batches of {n} sample(s)"
            + (f"; the last {left} sample(s) never applied" if left else ""),
        )
    if float(r.get("head_lr_scale") or 1.0) != 1.0:
        row("head lr", f"x{float(r['head_lr_scale']):g} the learning rate for the classifier (head_lr_scale)")
    sram, pred = r.get("sram"), r.get("sram_predicted") or {}
    budget = r.get("sram_budget")
    if sram:
        b = sram["breakdown"]
        row(
            "SRAM",
            f"{_kb(sram['total'])} KB measured"
            + (f" of {budget / 1024:.0f} KB on {r['board']}" if budget else "")
            + (" (paper target 256 KB)" if budget != 256 * 1024 else "")
            + (f"; predicted {_kb(pred['total'])} KB" if pred.get("total") else ""),
        )
        row(
            "",
            f"measured:  arena {_kb(b['arena'])} + trainable {_kb(b['trainable'])} + input {_kb(b['input'])}"
            f" + other {_kb(b['other_static'])} + stack {_kb(b['stack_high_water'])} KB",
        )
        if pred.get("breakdown"):
            g = predicted_groups(pred["breakdown"])
            row(
                "",
                f"predicted: arena {_kb(g['arena'])} + trainable {_kb(g['trainable'])} + input "
                f"{_kb(g['input'])} + other {_kb(g['other static'])} + stack {_kb(g['stack'])} KB",
            )
    elif pred.get("total"):
        row("SRAM", f"predicted {_kb(pred['total'])} KB (not measured: host-native run)")
    if r.get("flash_bytes"):
        fb = r.get("flash_budget")
        row("flash", f"{_kb(r['flash_bytes'])} KB" + (f" of {fb / 1024:.0f} KB" if fb else ""))
    ips = r.get("instructions_per_step")
    if ips:
        src = {"plugin": "exact, plugin", "systick": "SysTick"}.get(str(r.get("instructions_source")), "?")
        row(
            "instructions",
            f"{_mi(ips['total'])} per training step ({src}): "
            + ", ".join(f"{p} {_mi(ips[p])}" for p in PHASES if p in ips)
            + (
                f"; one inference {_mi(r['instructions_per_inference'])}"
                if r.get("instructions_per_inference")
                else ""
            ),
        )
    if r.get("est_ms_per_step") is not None:
        how = "the exact instruction mix" if r.get("instructions_source") == "plugin" else "an assumed mix"
        row(
            "time/step",
            f"~{r['est_ms_per_step']:.0f} ms at {(r.get('clock_hz') or 0) / 1e6:.0f} MHz "
            f"(ESTIMATE, not measured: {r.get('est_cpi')} cycles/instruction from {how}{_range_ms(r)})",
        )
    ab, aa = r.get("accuracy_before"), r.get("accuracy_after")
    if ab is not None and aa is not None:
        chance = f" (chance {100 / r['classes']:.0f}%)" if r.get("classes") else ""
        row("accuracy", f"{100 * ab:.1f}% -> {100 * aa:.1f}% on {r['n_test']} held-out samples{chance}")
    base = r.get("baseline") or {}
    if base.get("accuracy_after") is not None:
        row(
            "baseline",
            f"classifier only ({base['scheme']}, host reference, same stream"
            + (f", lr {base['lr']:g}" if base.get("lr") is not None else "")
            + "): "
            f"{100 * base['accuracy_before']:.1f}% -> {100 * base['accuracy_after']:.1f}%"
            + (f", planned SRAM {_kb(base['sram_predicted'])} KB" if base.get("sram_predicted") else ""),
        )
    elif base.get("error"):
        row("baseline", f"{base['scheme']} failed: {base['error']}")
    ev = r.get("evidence")
    if ev:
        row("evidence", ev)
    losses = r.get("losses") or []
    if losses:
        k = max(1, len(losses) // 10)
        row(
            "loss",
            f"{np.mean(losses[:k]):.4f} -> {np.mean(losses[-k:]):.4f} (mean of the first/last {k} steps)",
        )
    m = r.get("matched_reference")
    match = r.get("match") or {}
    if m is True:
        n = len(losses)
        row(
            "host match",
            f"yes: all {n} per-step losses bit-equal to the host reference, trained parameters identical"
            + (", test predictions identical" if match.get("predictions") else ""),
        )
    elif m is False:
        row("host match", "NO: " + json.dumps({k: v for k, v in match.items() if k != "reference_losses"}))
    else:
        row("host match", "not checked")
    if r.get("report"):
        row("report", str(_rel(r["report"])))
    if r.get("record_file"):
        row("record", str(_rel(r["record_file"])))
    row("wall time", f"{r['wall_seconds'].get('total', 0):.0f} s")
    return "\n".join(lines)


def _rel(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
