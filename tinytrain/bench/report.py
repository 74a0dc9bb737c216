"""The benchmark report: PNG plots (matplotlib), an HTML page (jinja2) and a Markdown summary with the
issue's targets, computed from the rows (and their per-kernel detail) of one `tinytrain bench` run.

Rows with compiler options (`options`, e.g. a lever turned off) are ablations: the targets and the headline
comparisons use the rows with default options only; the "Levers" section (also `levers.md`) puts each
ablation row's MEASURED SRAM change beside the planner's PREDICTED change, against the row with every
option at its default and otherwise the same settings."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinytrain import atomic
from tinytrain.bench.columns import COLUMNS
from tinytrain.bench.kernels import OUTSIDE
from tinytrain.bench.paper import (
    HEADLINE_SCHEME,
    PAPER_RESOLUTION,
    PUBLISHED,
    published_bytes,
    published_cycles,
)

KB = 1024.0
TEMPLATE_DIR = Path(__file__).parent / "templates"
PHASE_COLORS = {"forward": "#4c72b0", "loss": "#999999", "backward": "#dd8452", "update": "#55a868"}
MEM_PARTS = [
    ("sram_arena", "arena", "#4c72b0"),
    ("sram_trainable", "trainable copies", "#dd8452"),
    ("sram_input", "input buffer", "#8172b3"),
    ("sram_other_static", "other static", "#937860"),
    ("sram_stack_hw", "stack high-water", "#c44e52"),
]
PRED_PARTS = [
    ("pred_arena", "arena", "#4c72b0"),
    ("pred_trainable_weights", "trainable copies", "#dd8452"),
    ("pred_trainable_biases", "trainable copies", "#dd8452"),
    ("pred_input", "input buffer", "#8172b3"),
    ("pred_other", "other static", "#937860"),
    ("pred_stack", "stack high-water", "#c44e52"),
]


def _kb(v: Any) -> str:
    return "" if v is None else f"{v / KB:.1f}"


def _m(v: Any) -> str:
    return "" if v is None else f"{v / 1e6:.1f}"


def _label(r: dict[str, Any]) -> str:
    """The row's scheme, with its compiler options when they are not the defaults."""
    return f"{r['scheme']} [{r['options']}]" if r.get("options") else str(r["scheme"])


def _detail_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["model"], r["scheme"], r["board"], int(r["resolution"]), r.get("options") or "")


def focus_of(devices: list[dict[str, Any]]) -> tuple[str, int]:
    """The (board, resolution) the plots and targets are about: m7 at 128 when present."""
    pairs = [(r["board"], int(r["resolution"])) for r in devices]
    if ("m7", 128) in pairs:
        return "m7", 128
    if not pairs:
        return "m7", 128
    return max(set(pairs), key=pairs.count)


def _scheme_order(s: str) -> tuple[int, float, str]:
    if s.startswith("paper:"):
        try:
            return (1, float(s[6:].rstrip("kb")), s)
        except ValueError:
            return (1, 0.0, s)
    return ({"last": 0, "bias": 2, "full": 3}.get(s, 4), 0.0, s)


def headline(devices: list[dict[str, Any]], model: str, board: str, res: int) -> dict[str, Any] | None:
    for r in devices:
        if r.get("options"):  # an ablation row is never the headline measurement
            continue
        if (r["model"], r["scheme"], r["board"], int(r["resolution"])) == (
            model,
            HEADLINE_SCHEME.get(model),
            board,
            res,
        ):
            return r
    return None


# ---- targets -----------------------------------------------------------------------------------------


def dominant_memory(r: dict[str, Any]) -> str:
    parts = [(label, r.get(col) or 0) for col, label, _ in MEM_PARTS]
    parts.sort(key=lambda kv: -kv[1])
    return ", ".join(f"{label} {v / KB:.1f} KB" for label, v in parts if v)


def dominant_kernels(detail: dict[str, Any], n: int = 4) -> str:
    ks = [(k, v) for k, v in (detail.get("kernels") or {}).items() if k != OUTSIDE]
    total = sum(v["cycles_estimate"] for _, v in ks) or 1.0
    ks.sort(key=lambda kv: -kv[1]["cycles_estimate"])
    out = []
    for k, v in ks[:n]:
        ipm = f", {v['instructions'] / v['macs']:.1f} instr/MAC" if v.get("macs") else ""
        out.append(
            f"`{k}` {v['cycles_estimate'] / 1e6:.1f} M cycles "
            f"({100 * v['cycles_estimate'] / total:.0f} %{ipm})"
        )
    return "; ".join(out)


#: issue 16's speed target: at most this fraction of the paper's cycles per training step (point estimate)
SPEED_LIMIT_RATIO = 0.8


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's two targets per paper model, on m7 at 128x128 with the ~100 KB scheme."""
    devices = [x for x in results if x["row"].get("kind") == "device" and not x["row"].get("options")]
    by_key = {
        (x["row"]["model"], x["row"]["scheme"], x["row"]["board"], int(x["row"]["resolution"])): x
        for x in devices
    }
    out = []
    for model in PUBLISHED:
        x = by_key.get((model, HEADLINE_SCHEME[model], "m7", 128))
        t: dict[str, Any] = {
            "model": model,
            "scheme": HEADLINE_SCHEME[model],
            "pub_bytes": published_bytes(model),
            "pub_cycles": published_cycles(model),
        }
        if x is None:
            t["status"] = "not run"
        else:
            r, d = x["row"], x["detail"]
            t["status"] = r["status"]
            t["error"] = r.get("error")
            if r["status"] == "ok":
                t["sram"] = r["sram_total"]
                t["sram_delta"] = r["sram_total"] - t["pub_bytes"]
                t["sram_met"] = t["sram_delta"] <= 0
                t["arena"] = r.get("sram_arena")
                t["mem_dominant"] = dominant_memory(r)
                t["cycles"] = r.get("est_cycles")
                if t["cycles"]:
                    t["cycles_delta"] = t["cycles"] - t["pub_cycles"]
                    t["cycles_met"] = t["cycles_delta"] <= 0
                    t["cycles_ratio"] = t["cycles"] / t["pub_cycles"]
                    t["cycles_ratio_low"] = (r.get("est_cycles_low") or t["cycles"]) / t["pub_cycles"]
                    t["cycles_ratio_high"] = (r.get("est_cycles_high") or t["cycles"]) / t["pub_cycles"]
                    t["speed_limit_met"] = t["cycles_ratio"] <= SPEED_LIMIT_RATIO
                t["kernels_dominant"] = dominant_kernels(d)
                t["instr_per_mac"] = r.get("instr_per_mac")
            elif r.get("pred_total"):
                t["pred"] = r["pred_total"]
        out.append(t)
    return out


def _verdict(met: bool | None, delta: float, base: float, unit: str) -> str:
    if met is None:
        return "not measured"
    word = "**met**" if met else "**missed**"
    return (
        f"{word} ({'+' if delta > 0 else '−'}{abs(delta) / (KB if unit == 'KB' else 1e6):.1f} {unit}, "
        f"{100 * delta / base:+.1f} %)"
    )


# ---- plots -------------------------------------------------------------------------------------------


def plots(results: list[dict[str, Any]], out_dir: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    devices = [x["row"] for x in results if x["row"].get("kind") == "device"]
    details = {_detail_key(x["row"]): x["detail"] for x in results if x["row"].get("kind") == "device"}
    board, res = focus_of(devices)
    sel = [r for r in devices if r["board"] == board and int(r["resolution"]) == res]
    models = list(dict.fromkeys(r["model"] for r in sel))
    made: dict[str, str] = {}
    if not models:
        return made
    budget = next((r.get("sram_budget") for r in sel if r.get("sram_budget")), None)

    # 1. memory breakdown per scheme (measured; predicted, hatched, when it does not fit)
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.6), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        rows = sorted([r for r in sel if r["model"] == model], key=lambda r: _scheme_order(r["scheme"]))
        labels_done: set[str] = set()
        for i, r in enumerate(rows):
            measured = r["status"] == "ok"
            parts = MEM_PARTS if measured else PRED_PARTS
            bottom = 0.0
            for col, label, color in parts:
                v = (r.get(col) or 0) / KB
                if not v:
                    continue
                ax.bar(
                    i,
                    v,
                    bottom=bottom,
                    color=color,
                    hatch=None if measured else "//",
                    edgecolor="white",
                    label=label if label not in labels_done else None,
                )
                labels_done.add(label)
                bottom += v
            if not measured and r["status"] == "does-not-fit":
                ax.text(i, bottom, "does not fit", ha="center", va="bottom", fontsize=7, rotation=90)
        if budget:
            ax.axhline(budget / KB, color="k", lw=0.8, ls="--")
            ax.text(len(rows) - 0.5, budget / KB, f" {board} SRAM", va="bottom", ha="right", fontsize=7)
        if model in PUBLISHED and res == PAPER_RESOLUTION:
            ax.axhline(PUBLISHED[model][0], color="#c44e52", lw=0.8, ls=":")
            ax.text(-0.5, PUBLISHED[model][0], "paper (arena only)", va="bottom", fontsize=7, color="#c44e52")
        ax.set_xticks(range(len(rows)), [_label(r) for r in rows], rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{model} ({board}, {res}x{res})", fontsize=10)
        ax.set_ylabel("SRAM (KB)")
        ax.set_yscale("log" if any(r["status"] == "does-not-fit" for r in rows) else "linear")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Peak SRAM per scheme: measured (solid) / predicted, not built (hatched)", fontsize=10)
    fig.tight_layout()
    atomic.savefig(fig, out_dir / "memory_breakdown.png", dpi=110)
    plt.close(fig)
    made["memory_breakdown"] = "memory_breakdown.png"

    # 2. measured vs published memory, and estimated vs published cycles (the ~100 KB schemes)
    heads = [(m, headline(sel, m, board, res)) for m in models if m in PUBLISHED]
    heads = [(m, r) for m, r in heads if r is not None and r["status"] == "ok"]
    if heads:
        import numpy as np

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        x = np.arange(len(heads))
        w = 0.2
        ax1.bar(
            x - 1.5 * w,
            [PUBLISHED[m][0] for m, _ in heads],
            w,
            label="paper, arena only (STM32F746)",
            color="#c44e52",
        )
        ax1.bar(
            x - 0.5 * w, [r["sram_arena"] / KB for _, r in heads], w, label="measured arena", color="#4c72b0"
        )
        ax1.bar(
            x + 0.5 * w, [r["sram_total"] / KB for _, r in heads], w, label="measured total", color="#55a868"
        )
        ax1.bar(
            x + 1.5 * w, [r["pred_total"] / KB for _, r in heads], w, label="predicted total", color="#8c8c8c"
        )
        ax1.set_xticks(x, [f"{m}\n{r['scheme']}" for m, r in heads], fontsize=8)
        ax1.set_ylabel("KB")
        ax1.set_title(f"Peak memory, {board} {res}x{res}", fontsize=10)
        ax1.legend(fontsize=7)
        ax2.bar(
            x - w / 2,
            [published_cycles(m) / 1e6 for m, _ in heads],
            w,
            label="paper (ms x 216 MHz)",
            color="#c44e52",
        )
        ax2.bar(
            x + w / 2,
            [(r.get("est_cycles") or 0) / 1e6 for _, r in heads],
            w,
            label=f"estimated ({board} cycle model)",
            color="#4c72b0",
        )
        ax2.set_xticks(x, [f"{m}\n{r['scheme']}" for m, r in heads], fontsize=8)
        ax2.set_ylabel("M cycles per training step")
        ax2.set_title("Cycles per training image (estimate vs published)", fontsize=10)
        ax2.legend(fontsize=7)
        fig.tight_layout()
        atomic.savefig(fig, out_dir / "measured_vs_published.png", dpi=110)
        plt.close(fig)
        made["measured_vs_published"] = "measured_vs_published.png"

    # 3. instructions per step by phase
    ok = [r for r in sel if r["status"] == "ok" and r.get("instr_total")]
    if ok:
        fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.2), squeeze=False)
        for ax, model in zip(axes[0], models, strict=True):
            rows = sorted([r for r in ok if r["model"] == model], key=lambda r: _scheme_order(r["scheme"]))
            for i, r in enumerate(rows):
                bottom = 0.0
                for p, color in PHASE_COLORS.items():
                    v = (r.get(f"instr_{p}") or 0) / 1e6
                    ax.bar(i, v, bottom=bottom, color=color, label=p if i == 0 else None)
                    bottom += v
            if model in PUBLISHED and res == PAPER_RESOLUTION:
                ax.axhline(published_cycles(model) / 1e6, color="#c44e52", lw=0.8, ls=":")
                ax.text(
                    -0.5,
                    published_cycles(model) / 1e6,
                    "paper cycles",
                    fontsize=7,
                    color="#c44e52",
                    va="bottom",
                )
            ax.set_xticks(range(len(rows)), [_label(r) for r in rows], rotation=45, ha="right", fontsize=8)
            ax.set_title(f"{model} ({board}, {res}x{res})", fontsize=10)
            ax.set_ylabel("M instructions per training step")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        atomic.savefig(fig, out_dir / "instructions_by_phase.png", dpi=110)
        plt.close(fig)
        made["instructions_by_phase"] = "instructions_by_phase.png"

    # 4. top kernels by instructions (the ~100 KB scheme of each model, else its first ok row)
    picks = []
    for m in models:
        r = headline(sel, m, board, res)
        if r is None or r["status"] != "ok":
            r = next((x for x in ok if x["model"] == m), None)
        if r is not None:
            picks.append(r)
    if picks:
        fig, axes = plt.subplots(1, len(picks), figsize=(5.6 * len(picks), 4.4), squeeze=False)
        for ax, r in zip(axes[0], picks, strict=True):
            ks = details.get(_detail_key(r), {}).get("kernels") or {}
            items = [(k, v) for k, v in ks.items() if k != OUTSIDE][:10][::-1]
            colors = [PHASE_COLORS.get((v.get("phases") or ["?"])[0], "#999999") for _, v in items]
            names = [k.split(" (shared")[0] + (" (shared)" if "(shared" in k else "") for k, _ in items]
            ax.barh(names, [v["instructions"] / 1e6 for _, v in items], color=colors)
            ax.set_xlabel("M instructions per step (helpers folded in)")
            ax.set_title(f"{r['model']} {r['scheme']} ({board})", fontsize=10)
            ax.tick_params(axis="y", labelsize=7)
        from matplotlib.patches import Patch

        axes[0][-1].legend(
            handles=[Patch(color=c, label=p) for p, c in PHASE_COLORS.items() if p != "loss"],
            fontsize=7,
            loc="lower right",
        )
        fig.tight_layout()
        atomic.savefig(fig, out_dir / "top_kernels.png", dpi=110)
        plt.close(fig)
        made["top_kernels"] = "top_kernels.png"
    return made


# ---- Markdown summary --------------------------------------------------------------------------------


def summary_md(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    rows = [x["row"] for x in results]
    devices = [r for r in rows if r.get("kind") == "device"]
    torch_rows = [r for r in rows if r.get("kind") == "pytorch"]
    tg = targets(results)
    L: list[str] = []
    L.append("# tinytrain benchmark summary")
    L.append("")
    L.append(
        f"Generated {meta['created']} by `{meta['command']}` (code fingerprint `{meta['fingerprint']}`). "
        f"Full report: [report.html](report.html); every row: [bench.csv](bench.csv); columns: "
        f"[docs/benchmarks.md](../../docs/benchmarks.md)."
    )
    L.append("")
    L.append(
        "Device rows are measurements in QEMU (`-icount`, exact instruction counts; SRAM = .data + .bss + "
        "painted-stack high-water). Cycles and milliseconds are **estimates** (per-class cycle model on the "
        "instruction mix, `docs/emulation.md`), not measured cycles. Paper rows are **published figures**, "
        "not measurements; their memory is the arena only."
    )
    L.append("")
    targets_from = len(L)
    L.append("## Targets (issue 7): m7, 128×128, the paper's ~100 KB schemes")
    L.append("")
    L.append(
        "| model | scheme | measured SRAM total | paper (arena only) | memory target | est. cycles/step | "
        "paper cycles | speed target |"
    )
    L.append("|---|---|---|---|---|---|---|---|")
    for t in tg:
        if t["status"] != "ok":
            extra = f" (predicted {t['pred'] / KB:.1f} KB)" if t.get("pred") else ""
            L.append(
                f"| {t['model']} | {t['scheme']} | {t['status']}{extra} | {t['pub_bytes'] / KB:.0f} KB | "
                f"not measured | | {t['pub_cycles'] / 1e6:.1f} M | not measured |"
            )
            continue
        L.append(
            f"| {t['model']} | {t['scheme']} | {t['sram'] / KB:.1f} KB | {t['pub_bytes'] / KB:.0f} KB | "
            f"{_verdict(t['sram_met'], t['sram_delta'], t['pub_bytes'], 'KB')} | "
            f"{(t.get('cycles') or 0) / 1e6:.1f} M | {t['pub_cycles'] / 1e6:.1f} M | "
            f"{_verdict(t.get('cycles_met'), t.get('cycles_delta', 0), t['pub_cycles'], 'M')} |"
        )
    L.append("")
    for t in tg:
        if t["status"] != "ok":
            continue
        if not t["sram_met"]:
            L.append(
                f"- **{t['model']} memory** over by {t['sram_delta'] / KB:.1f} KB. Measured: "
                f"{t['mem_dominant']}. The paper's figure counts the arena only; our arena alone is "
                f"{t['arena'] / KB:.1f} KB ({'within' if t['arena'] <= t['pub_bytes'] else 'over'} it)."
            )
        if t.get("cycles_met") is False:
            L.append(
                f"- **{t['model']} speed** over by {t['cycles_delta'] / 1e6:.1f} M cycles "
                f"({t['instr_per_mac']} instructions/MAC over the step). Dominant kernels: "
                f"{t['kernels_dominant']}."
            )
    L.append("")
    L.append(
        f"**Speed at the limit (issue 16): ≤ {SPEED_LIMIT_RATIO:g}× the paper's cycles per step** (the point "
        "estimate decides; the range is the cycle model's, docs/emulation.md):"
    )
    L.append("")
    L.append("| model | est. cycles/step | target | ratio to the paper (range) | result |")
    L.append("|---|---|---|---|---|")
    for t in tg:
        if t.get("cycles_ratio") is None:
            L.append(f"| {t['model']} | not measured | | | not measured |")
            continue
        limit = SPEED_LIMIT_RATIO * t["pub_cycles"]
        gap = t["cycles"] - limit
        verdict = "**met**" if t["speed_limit_met"] else f"**missed** by {gap / 1e6:.1f} M"
        L.append(
            f"| {t['model']} | {t['cycles'] / 1e6:.1f} M | ≤ {limit / 1e6:.1f} M | {t['cycles_ratio']:.2f}× "
            f"({t['cycles_ratio_low']:.2f}–{t['cycles_ratio_high']:.2f}×) | {verdict} |"
        )
    L.append("")
    L.append("## Measured vs published, with the PyTorch anchor")
    L.append("")
    L.append("| model | source | memory | time per training image | note |")
    L.append("|---|---|---|---|---|")
    for t in tg:
        m = t["model"]
        kb, ms = PUBLISHED[m]
        L.append(
            f"| {m} | paper, STM32F746 (published) | {kb:g} KB (arena only) | {ms:g} ms at 216 MHz "
            f"({t['pub_cycles'] / 1e6:.1f} M cycles) | reference, not a measurement |"
        )
        r = headline(devices, m, "m7", 128)
        if r is not None and r["status"] == "ok":
            L.append(
                f"| {m} | tinytrain {r['scheme']}, m7 (QEMU) | {r['sram_total'] / KB:.1f} KB total "
                f"(arena {r['sram_arena'] / KB:.1f}, trainable {r['sram_trainable'] / KB:.1f}, stack "
                f"{r['sram_stack_hw'] / KB:.1f}) | est. {r.get('est_ms') or 0:.0f} ms at 216 MHz "
                f"({(r.get('est_cycles') or 0) / 1e6:.1f} M cycles, {r['instr_total'] / 1e6:.1f} M instr) | "
                f"measured memory, estimated time |"
            )
        r4 = headline(devices, m, "m4", 128)
        if r4 is not None and r4["status"] == "ok":
            L.append(
                f"| {m} | tinytrain {r4['scheme']}, m4 (QEMU) | {r4['sram_total'] / KB:.1f} KB total | "
                f"est. {r4.get('est_ms') or 0:.0f} ms at {r4.get('clock_mhz') or 0:.0f} MHz "
                f"({(r4.get('est_cycles') or 0) / 1e6:.1f} M cycles) | measured memory, estimated time |"
            )
        for p in torch_rows:
            if p["model"] == m and p["status"] == "ok":
                L.append(
                    f"| {m} | PyTorch fp32 on the host, {p['scheme']} | {p['host_rss_peak'] / 2**20:.0f} MB "
                    f"peak RSS ({p['host_rss_model'] / 2**20:.0f} MB before training) | "
                    f"{p['host_step_ms']:.0f} ms per step (host CPU, 1 thread) | measured, batch 1, "
                    f"{p.get('resolution')}×{p.get('resolution')} |"
                )
    L.append("")
    if not (
        any(t["status"] != "not run" for t in tg) or torch_rows or any(r.get("kind") == "paper" for r in rows)
    ):
        del L[targets_from:]  # nothing to compare with the paper (e.g. bench/levers.toml): no empty sections
    lever_rows = lever_savings(devices)
    if lever_rows:
        L += levers_md(lever_rows, heading="##")
    L.append("## All device rows")
    L.append("")
    L.append(
        "| model | scheme | board | res | status | SRAM meas. KB | pred. KB | M instr/step (fwd/bwd/upd) | "
        "est. ms | MACs/cycle | matched ref. |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(
        devices,
        key=lambda r: (
            r["model"],
            r["board"],
            int(r["resolution"]),
            _scheme_order(r["scheme"]),
            bool(r.get("options")),
        ),
    ):
        phases = ""
        if r.get("instr_total"):
            phases = (
                f"{_m(r['instr_total'])} ({_m(r.get('instr_forward'))}/{_m(r.get('instr_backward'))}/"
                f"{_m(r.get('instr_update'))})"
            )
        L.append(
            f"| {r['model']} | {_label(r)} | {r['board']} | {r['resolution']} | {r['status']} | "
            f"{_kb(r.get('sram_total'))} | {_kb(r.get('pred_total'))} | {phases} | {r.get('est_ms') or ''} | "
            f"{r.get('macs_per_cycle') or ''} | "
            f"{'' if r.get('matched_reference') is None else r['matched_reference']} |"
        )
    bad = [r for r in devices if r["status"] not in ("ok", "does-not-fit")]
    if bad:
        L.append("")
        L.append("Rows that did not finish:")
        for r in bad:
            L.append(
                f"- {r['model']} {_label(r)} {r['board']} {r['resolution']}: {r['status']}: "
                f"{str(r.get('error', '')).splitlines()[0][:300] if r.get('error') else ''}"
            )
    L.append("")
    return "\n".join(L)


# ---- HTML --------------------------------------------------------------------------------------------


def html_report(results: list[dict[str, Any]], images: dict[str, str], meta: dict[str, Any], md: str) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True)
    rows = [x["row"] for x in results]
    devices = [x for x in results if x["row"].get("kind") == "device"]
    show = [
        "model",
        "scheme",
        "options",
        "board",
        "resolution",
        "status",
        "pred_total",
        "sram_total",
        "sram_arena",
        "sram_trainable",
        "sram_stack_hw",
        "flash_bytes",
        "instr_forward",
        "instr_backward",
        "instr_update",
        "instr_total",
        "est_cycles",
        "est_ms",
        "macs_total",
        "macs_per_cycle",
        "instr_per_mac",
        "matched_reference",
        "wall_s",
    ]
    kernels = []
    board, res = focus_of([x["row"] for x in devices])
    for x in devices:
        r = x["row"]
        if r["status"] != "ok" or (r["board"], int(r["resolution"])) != (board, res):
            continue
        ks = [(k, v) for k, v in (x["detail"].get("kernels") or {}).items()][:12]
        kernels.append({"row": r, "kernels": ks})
    return env.get_template("report.html.j2").render(
        meta=meta,
        images=images,
        targets=targets(results),
        paper=[r for r in rows if r.get("kind") == "paper"],
        torch=[r for r in rows if r.get("kind") == "pytorch"],
        devices=sorted(
            [x["row"] for x in devices],
            key=lambda r: (r["model"], r["board"], int(r["resolution"]), _scheme_order(r["scheme"])),
        ),
        show=show,
        columns=COLUMNS,
        kernels=kernels,
        levers=lever_savings([x["row"] for x in devices]),
        KB=KB,
        outside=OUTSIDE,
        esc=html.escape,
    )


def write_report(results: list[dict[str, Any]], out_dir: Path, meta: dict[str, Any]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **meta}
    images = plots(results, out_dir)
    md = summary_md(results, meta)
    made = {"summary": out_dir / "summary.md", "html": out_dir / "report.html"}
    _write(made["summary"], md)
    _write(made["html"], html_report(results, images, meta, md))
    levers = lever_savings([x["row"] for x in results if x["row"].get("kind") == "device"])
    if levers:
        made["levers"] = out_dir / "levers.md"
        head = [
            "# Memory levers: measured saving vs predicted saving",
            "",
            f"Generated {meta['created']} by `{meta['command']}` (code fingerprint `{meta['fingerprint']}`); "
            "every row: [bench.csv](bench.csv).",
            "",
        ]
        _write(made["levers"], "\n".join(head + levers_md(levers, heading=None)))
    return {**made, **{k: out_dir / v for k, v in images.items()}}


def _write(path: Path, text: str) -> None:
    """Write through a temporary name, so a reader never sees half a file (tinytrain.atomic)."""
    atomic.write_text(path, text)


# ---- levers: measured vs predicted savings -----------------------------------------------------------

#: The settings two rows must share to be compared (everything but the compiler options).
_SAME = ("model", "scheme", "board", "resolution", "dataset", "classes", "steps")


def _lever_name(options: str) -> str:
    """`split_weights=false` -> "`split_weights` off" (several: "`a` + `b` off"); other options as given."""
    parts = [p.partition("=") for p in options.split(",")]
    if all(value == "false" for _, _, value in parts):
        return " + ".join(f"`{name}`" for name, _, _ in parts) + " off"
    return f"`{options}`"


def _delta(off: dict[str, Any], on: dict[str, Any], col: str) -> int | None:
    a, b = off.get(col), on.get(col)
    return None if a is None or b is None else int(a) - int(b)


def lever_savings(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each device row with compiler options against the row with default options and the same settings:
    the saving of what the options turned off, measured (`sram_total`, QEMU) and predicted (`pred_total`,
    the planner), in bytes (saving = row with the options − row with defaults; positive = the default
    saves memory). Rows without a default twin are left out."""
    base = {tuple(r.get(k) for k in _SAME): r for r in devices if not r.get("options")}
    out = []
    for r in devices:
        on = base.get(tuple(r.get(k) for k in _SAME))
        if not r.get("options") or on is None:
            continue
        measured = _delta(r, on, "sram_total") if r.get("status") == on.get("status") == "ok" else None
        predicted = _delta(r, on, "pred_total")
        out.append(
            {
                "lever": _lever_name(str(r["options"])),
                "options": r["options"],
                "where": f"{r['model']} {r['scheme']} {r['board']} {r['resolution']}×{r['resolution']}",
                "status": r.get("status"),
                "on_measured": on.get("sram_total"),
                "on_predicted": on.get("pred_total"),
                "off_measured": r.get("sram_total"),
                "off_predicted": r.get("pred_total"),
                "measured": measured,
                "predicted": predicted,
                "difference": None if measured is None or predicted is None else measured - predicted,
                "arena_measured": _delta(r, on, "sram_arena") if measured is not None else None,
                "arena_predicted": _delta(r, on, "pred_arena"),
                "stack_measured": _delta(r, on, "sram_stack_hw") if measured is not None else None,
                "instr": _delta(r, on, "instr_total") if measured is not None else None,
                "matched_reference": r.get("matched_reference"),
            }
        )
    return out


def _b(v: int | None) -> str:
    return "" if v is None else f"{v:+,}"


def levers_md(levers: list[dict[str, Any]], heading: str | None = "##") -> list[str]:
    """The lever table (Markdown lines): measured saving vs predicted saving per ablation row."""
    L: list[str] = []
    if heading:
        L += [f"{heading} Levers: measured saving vs predicted saving", ""]
    for where in dict.fromkeys(x["where"] for x in levers):
        rows = [x for x in levers if x["where"] == where]
        on = rows[0]
        L.append(
            f"{where}, every lever on (the defaults): measured SRAM {on['on_measured'] or 0:,} B "
            f"(QEMU: .data + .bss + stack high-water), predicted {on['on_predicted'] or 0:,} B (planner). "
            "Saving = SRAM with the lever off − SRAM with every lever on, in bytes."
        )
        L.append("")
        L.append(
            "| lever | status | SRAM off, measured | measured saving | predicted saving "
            "| measured − predicted | arena saving meas. / pred. | stack high-water Δ | instr/step Δ "
            "| matched ref. |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for x in rows:
            arena = (
                f"{_b(x['arena_measured'])} / {_b(x['arena_predicted'])}"
                if x["arena_measured"] is not None
                else f"— / {_b(x['arena_predicted'])}"
            )
            L.append(
                f"| {x['lever']} | {x['status']} | "
                f"{'' if x['off_measured'] is None else format(x['off_measured'], ',')} | "
                f"{_b(x['measured'])} | {_b(x['predicted'])} | {_b(x['difference'])} | {arena} | "
                f"{_b(x['stack_measured'])} | {_b(x['instr'])} | "
                f"{'' if x['matched_reference'] is None else x['matched_reference']} |"
            )
        L.append("")
    return L
