"""The report of one `tinytrain emulate` run: report.html + learning_curve.png + memory_breakdown.png +
record.json in one directory (see the package doc)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from tinytrain import atomic
from tinytrain.report.summary import PHASES, predicted_groups, summary

KB = 1024.0
#: The paper's SRAM target (the title of Lin et al. 2022); drawn beside the board's own budget.
PAPER_BUDGET = 256 * 1024
COLORS = {
    "arena": "#4C72B0",
    "trainable": "#DD8452",
    "input": "#55A868",
    "other static": "#8172B3",
    "stack": "#C44E52",
}


def _mpl() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def running_mean(x: list[float], w: int) -> np.ndarray:
    """Mean of the last `w` values at each step (fewer at the start)."""
    a = np.asarray(x, np.float64)
    c = np.concatenate([[0.0], np.cumsum(a)])
    idx = np.arange(1, len(a) + 1)
    lo = np.maximum(0, idx - w)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_learning_curve(record: dict[str, Any], path: Path) -> Path:
    plt = _mpl()
    losses = record.get("losses") or []
    fig, (ax, axb) = plt.subplots(1, 2, figsize=(9.0, 3.4), gridspec_kw={"width_ratios": [3, 1.25]}, dpi=100)
    if losses:
        steps = np.arange(1, len(losses) + 1)
        w = max(5, len(losses) // 30)
        floor = 1e-5
        ax.plot(steps, np.maximum(losses, floor), lw=0.6, color="#9DB4D6", label="loss per step")
        ax.plot(
            steps, np.maximum(running_mean(losses, w), floor), lw=1.8, color="#1F4E8C", label=f"mean of {w}"
        )
        n_train = int(record.get("n_train") or 0)
        if n_train:
            for e in range(n_train, len(losses), n_train):
                ax.axvline(e + 0.5, color="0.6", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlim(0, len(losses) + 1)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.set_xlabel("training step (dashed: epoch boundaries)")
    ax.set_ylabel("cross-entropy loss (device)")
    match = record.get("matched_reference")
    agree = {True: "every step bit-equal to the host reference", False: "DIFFERS from the host reference"}
    ax.set_title(
        f"{record['model']} + {record['scheme']} on {record['dataset']}, board {record['board']}"
        + (f"\n{agree[match]}" if match in agree else ""),
        fontsize=9,
    )
    bars = accuracy_bars(record)
    if bars:
        labels, values, colors = zip(*bars, strict=True)
        xs = np.arange(len(values))
        axb.bar(xs, [100 * v for v in values], color=colors)
        for x, v in zip(xs, values, strict=True):
            axb.text(x, 100 * v + 1.5, f"{100 * v:.0f}%", ha="center", fontsize=8)
        axb.set_xticks(xs, labels, fontsize=7)
        axb.set_ylim(0, 112)
        classes = int(record.get("classes") or 0)
        if classes:
            axb.axhline(100 / classes, color="0.5", ls=":", lw=1)
            axb.text(len(values) - 0.5, 100 / classes - 5, "chance", ha="right", fontsize=7, color="0.4")
        axb.set_ylabel("held-out accuracy (%)")
        axb.set_title(f"{record.get('n_test')} test images", fontsize=9)
    else:
        axb.axis("off")
    fig.tight_layout()
    atomic.savefig(fig, path)
    plt.close(fig)
    return path


def accuracy_bars(record: dict[str, Any]) -> list[tuple[str, float, str]]:
    out: list[tuple[str, float, str]] = []
    if record.get("accuracy_before") is not None:
        out.append(("before", float(record["accuracy_before"]), "#9DB4D6"))
    if record.get("accuracy_after") is not None:
        out.append((f"after\n{record['scheme']}\n(device)", float(record["accuracy_after"]), "#1F4E8C"))
    base = record.get("baseline") or {}
    if base.get("accuracy_after") is not None:
        out.append((f"after\n{base['scheme']}\n(host)", float(base["accuracy_after"]), "#DD8452"))
    return out


def memory_rows(record: dict[str, Any]) -> list[tuple[str, dict[str, int]]]:
    """(label, bytes by category) for the measured and the predicted SRAM, in the same categories."""
    rows: list[tuple[str, dict[str, int]]] = []
    sram = record.get("sram")
    if sram:
        b = sram["breakdown"]
        rows.append(
            (
                "measured\n(ELF + stack)",
                {
                    "arena": int(b["arena"]),
                    "trainable": int(b["trainable"]),
                    "input": int(b["input"]),
                    "other static": int(b["other_static"]),
                    "stack": int(b["stack_high_water"]),
                },
            )
        )
    pred = (record.get("sram_predicted") or {}).get("breakdown")
    if pred:
        rows.append(("predicted\n(plan)", predicted_groups(pred)))
    return rows


def plot_memory(record: dict[str, Any], path: Path) -> Path:
    plt = _mpl()
    rows = memory_rows(record)
    fig, ax = plt.subplots(figsize=(9.0, 2.2), dpi=100)
    budget = int(record.get("sram_budget") or 0)
    for y, (_label, parts) in enumerate(reversed(rows)):
        left = 0.0
        for cat, v in parts.items():
            if v <= 0:
                continue
            ax.barh(y, v / KB, left=left, color=COLORS[cat], label=cat if y == 0 else None, height=0.6)
            if v / KB > 6:
                ax.text(
                    left + v / KB / 2, y, f"{v / KB:.0f}", ha="center", va="center", fontsize=7, color="w"
                )
            left += v / KB
        ax.text(left + 2, y, f"{left:.1f} KB", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
    marks = [(PAPER_BUDGET, "256 KB (paper)")]
    if budget and budget != PAPER_BUDGET:
        marks.append((budget, f"{budget / KB:.0f} KB ({record['board']})"))
    for v, text in marks:
        ax.axvline(v / KB, color="0.3", ls="--", lw=1)
        ax.text(v / KB, len(rows) - 0.45, text, ha="right", fontsize=7, color="0.3")
    ax.set_xlim(0, max([budget, PAPER_BUDGET]) / KB * 1.04)
    ax.set_ylim(-0.6, len(rows) - 0.2)
    ax.set_xlabel("SRAM (KB)")
    ax.set_title("peak SRAM of the training firmware: measured vs the compiler's plan", fontsize=9)
    ax.legend(loc="center", fontsize=7, ncol=2, frameon=False, bbox_to_anchor=(0.6, 0.5))
    fig.tight_layout()
    atomic.savefig(fig, path)
    plt.close(fig)
    return path


def trimmed_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record as the report keeps it: the whole-run per-function profile reduced to its totals."""
    rec = dict(record)
    prof = rec.get("profile")
    if isinstance(prof, dict):
        rec["profile"] = {k: v for k, v in prof.items() if k in ("all", "kernels", "cycle_estimate")}
    match = rec.get("match")
    if isinstance(match, dict) and match.get("losses") and "reference_losses" in match:
        rec["match"] = {k: v for k, v in match.items() if k != "reference_losses"}
        rec["match"]["reference_losses"] = "equal to losses (bit for bit)"
    base = rec.get("baseline")
    if isinstance(base, dict) and "losses" in base:
        rec["baseline"] = {k: v for k, v in base.items() if k != "losses"}
    return rec


def compact_json(obj: Any) -> str:
    """Indented JSON with every list of scalars on one line (per-step lists stay readable and small)."""
    text = json.dumps(obj, indent=1)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return re.sub(r"\{\s+([^\[\]{}]*?)\s+\}", lambda m: "{" + " ".join(m.group(1).split()) + "}", text)


def command_of(record: dict[str, Any]) -> str:
    """The command that reproduces the run (the job wrote it into the record)."""
    return str(record.get("command") or "tinytrain emulate (the record does not say how it was run)")


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tinytrain.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["kb"] = lambda v: f"{float(v) / KB:.1f}"
    env.filters["mi"] = lambda v: f"{float(v) / 1e6:.2f}"
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * float(v):.1f}%"
    return env.get_template("run.html.j2")


def write_run_report(record: dict[str, Any], out_dir: str | Path) -> Path:
    """Write report.html, the two PNGs and record.json into `out_dir`; returns the report.html path."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    plot_learning_curve(record, d / "learning_curve.png")
    plot_memory(record, d / "memory_breakdown.png")
    rec = trimmed_record(record)
    atomic.write_text(d / "record.json", compact_json(rec) + "\n")
    ips = record.get("instructions_per_step") or {}
    kps = record.get("kernels_per_step") or {}
    total = int(ips.get("total") or 0)
    phase_rows = []
    for p in PHASES:
        if p in ips:
            top = list((kps.get(p) or {}).items())[:6]
            phase_rows.append(
                {
                    "name": p,
                    "instr": int(ips[p]),
                    "share": (100.0 * ips[p] / total) if total else 0.0,
                    "top": ", ".join(f"{html.escape(k)} {v / 1e6:.2f} M" for k, v in top if v >= 1000),
                }
            )
    layers = record.get("layers_per_step") or []
    first = sum(int(d["total"]) for d in layers)
    layer_rows = [
        {**d, "share": 100.0 * d["total"] / first if first else 0.0} for d in layers[:12] if d["total"] > 0
    ]
    match = record.get("match") or {}
    losses = record.get("losses") or []
    ref = match.get("reference_losses") or []
    text = summary(record).replace(str(record.get("record_file") or "\0"), "record.json")
    page = _template().render(
        r=record,
        summary=text,
        phase_rows=phase_rows,
        layer_rows=layer_rows,
        layers_more=max(0, len(layers) - len(layer_rows)),
        first_total=first,
        memory=memory_rows(record),
        categories=list(COLORS),
        match=match,
        n_equal=sum(1 for a, b in zip(losses, ref, strict=False) if a == b),
        command=command_of(record),
        baseline=record.get("baseline") or {},
        config=json.dumps(record.get("config") or {}, indent=1),
        wall=record.get("wall_seconds") or {},
    )
    out = d / "report.html"
    atomic.write_text(out, page)
    return out
