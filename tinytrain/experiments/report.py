"""Tables (CSV + Markdown) and plots (PNG) of the evidence, from the cached run rows.

Every accuracy is the held-out top-1 accuracy on the fixed test split, mean ± sample standard deviation
(ddof = 1) over the seeds, in percent. Memory is the compiler's plan (`plan_memory(...).total`: the
predicted SRAM of the training firmware, arena + trainable copies + input + stack + runtime state) at the
experiment resolution and at 128x128, for the m7 board profile (STM32F746-class, 320 KB SRAM).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import atomic
from tinytrain.experiments.config import (
    MAIN_HEAD1,
    RULES,
    Settings,
    head1_lr,
    head_for,
    lr_for,
)

Row = dict[str, Any]
KB = 1024.0


def _stats(values: Iterable[float]) -> tuple[float, float, int]:
    v = np.asarray(list(values), np.float64)
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def pm(mean: float, std: float, n: int, scale: float = 100.0, digits: int = 1) -> str:
    if n == 0 or math.isnan(mean):
        return "—"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


#: row fields that rows cached before they existed lack, at their value then
_ROW_DEFAULTS: dict[str, Any] = {"head_lr_scale": 1.0, "val_size": 0}


def _select(rows: list[Row], dataset: str, **kw: Any) -> list[Row]:
    out = []
    for r in rows:
        if r["dataset"] != dataset or r["split"] != "test":
            continue
        got = {k: r.get(k, _ROW_DEFAULTS.get(k)) for k in kw}
        if all(
            (abs(got[k] - v) <= 1e-12 * max(1.0, abs(v))) if isinstance(v, float) else got[k] == v
            for k, v in kw.items()
        ):
            out.append(r)
    return out


def _runs(rows: list[Row], settings: Settings, dataset: str, scheme: str, **kw: Any) -> list[Row]:
    """The test runs of `scheme` on `dataset` at its family's chosen lr and head multiplier (unless given)."""
    kw.setdefault("lr", lr_for(settings, dataset, scheme))
    kw.setdefault("head_lr_scale", head_for(settings, dataset, scheme))
    return _select(rows, dataset, scheme=scheme, **kw)


def recipe(settings: Settings, fam_scheme: str) -> str:
    """`faces 0.001 (head ×10), digits ...`: the chosen lr (and head multiplier) of a scheme's family."""
    out = []
    for ds in settings.datasets:
        hs = head_for(settings, ds, fam_scheme)
        out.append(f"{ds} {lr_for(settings, ds, fam_scheme):g}" + (f" (head ×{hs:g})" if hs != 1.0 else ""))
    return ", ".join(out)


def _mem(rows: list[Row], res: int, what: str = "total") -> float:
    """Memory figure of a group of runs (identical across seeds: the head's init does not change sizes)."""
    for r in rows:
        m = r.get("memory", {}).get(str(res))
        if m:
            return float(m[what] if what in ("total", "arena") else m["breakdown"].get(what, 0))
    return math.nan


def _write_csv(path: Path, rows: list[Row]) -> Path:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic.atomic_open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
def _at(res: int | None) -> str:
    """A resolution in a table's words: `64×64`, or an imported / 1-D model's own input."""
    return f"{res}×{res}" if res else "own input"


def _about_model(model: str) -> str:
    from tinytrain.experiments.config import MODEL

    return "MCUNet-5FPS (ImageNet-pretrained int8)" if model == MODEL else f"model `{model}`"


def table1_methods(settings: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, scheme, selection) of Table 1's rows (the fp32 twins only for a model that has one)."""
    rows = _table1_methods(settings)
    return rows if settings.fp32 else [r for r in rows if r[2].get("engine") != "fp32"]


def _table1_methods(settings: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    rule, M = settings.rule, settings.main_scheme
    return [
        (
            f"classifier only (int8, QAS, `last`, {rule})",
            "last",
            {"engine": "int8", "qas": True, "rule": rule},
        ),
        ("classifier only (fp32 twin, `last`)", "last", {"engine": "fp32"}),
        (f"fp32 (PyTorch twin, `{M}`)", M, {"engine": "fp32"}),
        (f"int8 without QAS (`{M}`, nearest)", M, {"engine": "int8", "qas": False, "rule": "nearest"}),
        (
            f"int8 without QAS (`{M}`, shadow f32 accumulation)",
            M,
            {"engine": "int8", "qas": False, "rule": "shadow"},
        ),
        (f"**int8 with QAS** (`{M}`, {rule})", M, {"engine": "int8", "qas": True, "rule": rule}),
        (
            f"int8 with QAS (`{M}`, {rule}), head ×1, same lr",
            M,
            {"engine": "int8", "qas": True, "rule": rule, "head_lr_scale": 1.0},
        ),
        (
            f"int8 with QAS (`{M}`, {rule}), head ×1, its own best lr",
            M,
            {"engine": "int8", "qas": True, "rule": rule, "head_lr_scale": 1.0, "lr": MAIN_HEAD1},
        ),
    ]


def _resolve(settings: Settings, dataset: str, method: dict[str, Any]) -> dict[str, Any]:
    """A Table 1 selection with the symbolic lr `MAIN_HEAD1` replaced by its value."""
    if method.get("lr") == MAIN_HEAD1:
        return dict(method, lr=head1_lr(settings, dataset))
    return method


def table1(rows: list[Row], settings: Settings) -> tuple[list[Row], str]:
    csv_rows: list[Row] = []
    body = []
    for name, scheme, method in table1_methods(settings):
        cells = [name]
        for ds in settings.datasets:
            sel = _resolve(settings, ds, method)
            g = _runs(rows, settings, ds, scheme, **sel)
            acc = _stats(r["accuracy"] for r in g)
            loss = _stats(r["eval_loss"] for r in g)
            cells.append(pm(*acc))
            csv_rows.append(
                {
                    "method": name.replace("*", "").replace("`", ""),
                    "dataset": ds,
                    "lr": sel.get("lr", lr_for(settings, ds, scheme)),
                    "head_lr_scale": sel.get("head_lr_scale", head_for(settings, ds, scheme)),
                    "acc_mean": acc[0],
                    "acc_std": acc[1],
                    "seeds": acc[2],
                    "loss_mean": loss[0],
                    "loss_std": loss[1],
                    "steps": g[0]["steps"] if g else 0,
                    "diverged_runs": sum(bool(r["diverged"]) for r in g),
                }
            )
        body.append(cells)
    md = _md_table(["method"] + [f"{ds} acc (%)" for ds in settings.datasets], body)
    main = settings.main_scheme
    md += (
        f"\nlr (head multiplier), chosen on the validation split: `last` {recipe(settings, 'last')}; "
        f"`{main}` {recipe(settings, main)}; `{main}` with the head ×1: "
        + ", ".join(f"{ds} {head1_lr(settings, ds):g}" for ds in settings.datasets)
        + ". Every row of a column uses the same steps and samples; the last two rows are the main scheme "
        "with one lr for all its layers (no head multiplier): at the main lr, and at the best lr the sweep "
        "found for head ×1.\n"
    )
    return csv_rows, md


def fig9(rows: list[Row], settings: Settings) -> tuple[list[Row], str]:
    R, M = settings.resolution, settings.memory_resolution
    csv_rows: list[Row] = []
    body = []
    for sch in settings.fig9_schemes:
        cells = [f"`{sch}`"]
        mem_cells: list[str] = []
        for i, ds in enumerate(settings.datasets):
            g = _runs(rows, settings, ds, sch, engine="int8", qas=True, rule=settings.rule)
            f = _runs(rows, settings, ds, sch, engine="fp32")
            acc = _stats(r["accuracy"] for r in g)
            facc = _stats(r["accuracy"] for r in f)
            rec = {
                "scheme": sch,
                "dataset": ds,
                "lr": lr_for(settings, ds, sch),
                "head_lr_scale": head_for(settings, ds, sch),
                "acc_mean": acc[0],
                "acc_std": acc[1],
                "seeds": acc[2],
                "fp32_acc_mean": facc[0],
                "fp32_acc_std": facc[1],
                "fp32_seeds": facc[2],
                f"sram_{R}": _mem(g, R),
                f"arena_{R}": _mem(g, R, "arena"),
                f"sram_{M}": _mem(g, M),
                f"arena_{M}": _mem(g, M, "arena"),
                "trainable_weights_128": _mem(g, M, "trainable_weights"),
            }
            csv_rows.append(rec)
            hs = rec["head_lr_scale"]
            cells += [f"{rec['lr']:g}" + (f" ×{hs:g}" if hs != 1.0 else ""), pm(*acc), pm(*facc)]
            if i == len(settings.datasets) - 1:
                mem_cells = [
                    f"{rec[f'sram_{R}'] / KB:.0f}",
                    *([f"{rec[f'sram_{M}'] / KB:.0f}"] if M != R else []),
                    f"{rec[f'arena_{M}'] / KB:.0f}",
                ]
        body.append(cells[:1] + mem_cells + cells[1:])
    last_ds = settings.datasets[-1]
    header = ["scheme", f"SRAM @{_at(R)} (KB)"]
    header += ([f"SRAM @{_at(M)} (KB)"] if M != R else []) + [f"arena @{_at(M)} (KB)"]
    for ds in settings.datasets:
        header += [f"{ds} lr ×head", f"{ds} int8 (%)", f"{ds} fp32 (%)"]
    md = _md_table(header, body)
    md += (
        f"\nMemory: the compiler's plan for the `{settings.board}` board, total predicted SRAM (arena + "
        f"trainable copies + input + stack + runtime state), with the {last_ds} head; "
        "per-dataset figures in the CSV. Accuracies at the training resolution "
        f"{_at(R)}: int8 = the device's training (QAS, `{settings.rule}`), fp32 = the PyTorch twin with the "
        "same scheme, steps, lr and head multiplier. lr ×head: the family's lr and head multiplier, chosen "
        "on the validation split.\n"
    )
    return csv_rows, md


def rounding(rows: list[Row], settings: Settings) -> tuple[list[Row], str]:
    R, M = settings.resolution, settings.memory_resolution
    csv_rows: list[Row] = []
    body = []
    for factor, tag in ((1.0, "chosen lr"),):
        for rule in RULES:
            cells = [f"`{rule}`", tag]
            memcells: list[str] = []
            for i, ds in enumerate(settings.datasets):
                lr = lr_for(settings, ds, settings.main_scheme) * factor
                sel = {"engine": "int8", "qas": True, "lr": lr}
                g = _runs(rows, settings, ds, settings.main_scheme, rule=rule, **sel)
                base = _runs(rows, settings, ds, settings.main_scheme, rule="nearest", **sel)
                acc = _stats(r["accuracy"] for r in g)
                rec = {
                    "rule": rule,
                    "lr_factor": factor,
                    "dataset": ds,
                    "lr": lr,
                    "head_lr_scale": head_for(settings, ds, settings.main_scheme),
                    "acc_mean": acc[0],
                    "acc_std": acc[1],
                    "seeds": acc[2],
                    f"sram_{R}": _mem(g, R),
                    f"sram_{M}": _mem(g, M),
                    f"shadow_{R}": _mem(g, R, "shadow_copies"),
                    f"shadow_{M}": _mem(g, M, "shadow_copies"),
                    f"extra_vs_nearest_{M}": _mem(g, M) - _mem(base, M),
                }
                csv_rows.append(rec)
                cells.append(pm(*acc))
                if i == len(settings.datasets) - 1:
                    memcells = [
                        f"{rec[f'sram_{R}'] / KB:.1f}",
                        *([f"{rec[f'sram_{M}'] / KB:.1f}"] if M != R else []),
                        f"{rec[f'extra_vs_nearest_{M}'] / KB:+.1f}",
                    ]
            body.append(cells + memcells)
    md = _md_table(
        ["rule", "lr"]
        + [f"{ds} acc (%)" for ds in settings.datasets]
        + [f"SRAM @{_at(R)} (KB)"]
        + ([f"SRAM @{_at(M)} (KB)"] if M != R else [])
        + [f"vs nearest @{_at(M)} (KB)"],
        body,
    )
    main = settings.main_scheme
    md += f"\nScheme `{main}`, int8 with QAS; chosen lr: {recipe(settings, main)}.\n"
    return csv_rows, md


def sweep_md(table: list[Row], rule: str = "stochastic") -> str:
    groups: dict[tuple[str, str, float], list[Row]] = defaultdict(list)
    for t in table:
        groups[(t["dataset"], t["family"], float(t.get("head_lr_scale", 1.0)))].append(t)
    lrs = sorted({t["lr"] for t in table})
    body = []
    for (ds, _fam, hs), g in groups.items():
        by = {t["lr"]: t for t in g}
        cells = [
            ds,
            f"`{g[0]['scheme']}`",
            f"×{hs:g}",
            f"{g[0]['train_samples']}/{g[0]['val_samples']}",
            str(g[0].get("seeds", 1)),
        ]
        for lr in lrs:
            t = by.get(lr)
            if t is None:
                cells.append("—")
            else:
                s = f"{100 * t['val_accuracy']:.1f} ({t['val_loss']:.2f})"
                cells.append(f"**{s}**" if t.get("chosen") else s)
        body.append(cells)
    header = ["dataset", "scheme", "head", "train/val", "seeds"] + [f"lr {lr:g}" for lr in lrs]
    return _md_table(header, body) + (
        f"\nValidation accuracy % (validation loss), mean over the seeds, int8 with QAS, `{rule}` rounding; "
        "head: the classifier's lr multiplier; **bold**: chosen per family (best mean accuracy, ties: lower "
        "loss). The lowest seed's accuracy is in the CSV (`val_accuracy_min`).\n"
    )


# ---------------------------------------------------------------------------------------------------------
def _plot_fig9(path: Path, recs: list[Row], settings: Settings) -> Path:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    R, M = settings.resolution, settings.memory_resolution
    nds = len(settings.datasets)
    fig, axes = plt.subplots(2, nds, figsize=(6.2 * nds, 8.5), squeeze=False)
    colors = {"last": "tab:gray", "bias": "tab:orange", "full": "tab:red"}
    for j, ds in enumerate(settings.datasets):
        for i, res in enumerate((R, M)):
            ax = axes[i][j]
            for rec in (r for r in recs if r["dataset"] == ds):
                sch = rec["scheme"]
                x = rec[f"sram_{res}"] / KB
                c = colors.get(sch, "tab:blue" if sch.startswith("paper") else "tab:green")
                mk = "*" if sch.startswith("paper") else ("s" if sch.startswith("blocks") else "o")
                ax.errorbar(
                    x, 100 * rec["acc_mean"], yerr=100 * rec["acc_std"], fmt=mk, color=c, ms=9, capsize=3
                )
                if rec.get("fp32_seeds"):
                    ax.plot(x, 100 * rec["fp32_acc_mean"], mk, ms=9, mfc="none", mec=c, alpha=0.8)
                ax.annotate(
                    sch, (x, 100 * rec["acc_mean"]), textcoords="offset points", xytext=(5, 4), fontsize=8
                )
            paper = sorted(
                (r for r in recs if r["dataset"] == ds and r["scheme"].startswith("paper")),
                key=lambda r: r[f"sram_{res}"],
            )
            ax.plot(
                [r[f"sram_{res}"] / KB for r in paper],
                [100 * r["acc_mean"] for r in paper],
                "-",
                color="tab:blue",
                alpha=0.5,
                label="sparse update (paper schemes)",
            )
            ax.plot([], [], "o", mfc="none", mec="k", label="fp32 twin, same scheme (hollow)")
            ax.axvline(320, color="k", ls="--", lw=0.8, label="320 KB (STM32F746 SRAM)")
            ax.axvline(256, color="k", ls=":", lw=0.8, label="256 KB")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            lows = [100 * (r["acc_mean"] - r["acc_std"]) for r in recs if r["dataset"] == ds]
            lows += [100 * r["fp32_acc_mean"] for r in recs if r["dataset"] == ds and r.get("fp32_seeds")]
            finite = [v for v in lows if math.isfinite(v)]
            ax.set_ylim(bottom=max(0.0, min(finite, default=0.0) - 8), top=103)
            ax.set_xlabel(f"training memory, predicted SRAM at {res}×{res} (KB, log)")
            ax.set_ylabel(f"{ds} test accuracy (%) [trained at {_at(R)}]")
            ax.set_title(f"{ds}: accuracy vs memory @{res}×{res}")
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"MCUNet-5FPS, new head, int8 + QAS ({settings.rule}), {settings.epochs} epochs, mean ± std over "
        f"{len(settings.seeds)} seeds"
    )
    fig.tight_layout()
    atomic.savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def _plot_bars(path: Path, recs: list[Row], key: str, title: str, settings: Settings) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(r[key] for r in recs))
    nds = len(settings.datasets)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(labels) * nds / 2 + 3), 4.6))
    width = 0.8 / nds
    x = np.arange(len(labels))
    for j, ds in enumerate(settings.datasets):
        by = {r[key]: r for r in recs if r["dataset"] == ds}
        m = [100 * by[lab]["acc_mean"] if lab in by else np.nan for lab in labels]
        s = [100 * by[lab]["acc_std"] if lab in by else 0 for lab in labels]
        ax.bar(x + (j - (nds - 1) / 2) * width, m, width, yerr=s, capsize=3, label=ds)
    ax.set_xticks(x)
    ax.set_xticklabels([str(lab) for lab in labels], rotation=18, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic.savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def _plot_curves(path: Path, rows: list[Row], settings: Settings) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nds = len(settings.datasets)
    fig, axes = plt.subplots(1, nds, figsize=(6 * nds, 4.2), squeeze=False)
    for j, ds in enumerate(settings.datasets):
        ax = axes[0][j]
        for name, scheme, kw in table1_methods(settings):
            g = _runs(rows, settings, ds, scheme, **_resolve(settings, ds, kw))
            curves = [r["loss_curve"] for r in g if r["loss_curve"]]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            c = np.mean([cc[:n] for cc in curves], axis=0)
            steps = g[0]["steps"]
            ax.plot(np.linspace(0, steps, n), c, label=name.replace("*", "").replace("`", ""))
        ax.set_yscale("log")
        ax.set_xlabel("training step (batch 1)")
        ax.set_ylabel("training loss (chunk mean, mean over seeds)")
        ax.set_title(f"{ds}: training loss, Table 1 methods")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic.savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def write_all(
    out: Path,
    settings: Settings,
    suites: list[str],
    rows: list[Row],
    sweep_table: list[Row],
    info: dict[str, Any],
) -> list[Path]:
    """Write every table/plot of the suites that ran; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sections: list[str] = []
    if sweep_table:
        written.append(_write_csv(out / "lr_sweep.csv", sweep_table))
        md = sweep_md(sweep_table, settings.rule)
        atomic.write_text(out / "lr_sweep.md", "# Learning-rate sweep\n\n" + md)
        written.append(out / "lr_sweep.md")
        sections.append("## Learning-rate sweep\n\n" + md)
    if "table1" in suites:
        recs, md = table1(rows, settings)
        written.append(_write_csv(out / "table1.csv", recs))
        atomic.write_text(out / "table1.md", "# Table 1 shape: fp32 vs int8 without / with QAS\n\n" + md)
        written.append(out / "table1.md")
        written.append(
            _plot_bars(
                out / "table1.png",
                recs,
                "method",
                "Table 1 shape: fp32 vs int8 w/o QAS vs int8 with QAS",
                settings,
            )
        )
        written.append(_plot_curves(out / "learning_curves.png", rows, settings))
        sections.append("## Table 1 shape\n\n" + md)
    if "fig9" in suites:
        recs, md = fig9(rows, settings)
        written.append(_write_csv(out / "fig9.csv", recs))
        atomic.write_text(out / "fig9.md", "# Fig. 9 shape: accuracy vs training memory\n\n" + md)
        written.append(out / "fig9.md")
        written.append(_plot_fig9(out / "fig9.png", recs, settings))
        sections.append("## Fig. 9 shape\n\n" + md)
    if "rounding" in suites:
        recs, md = rounding(rows, settings)
        written.append(_write_csv(out / "rounding.csv", recs))
        atomic.write_text(out / "rounding.md", "# Update rounding rule\n\n" + md)
        written.append(out / "rounding.md")
        bars = [dict(r, config=f"{r['rule']} @ lr×{r['lr_factor']:g}") for r in recs]
        written.append(_plot_bars(out / "rounding.png", bars, "config", "update rounding rule", settings))
        sections.append("## Update rounding rule\n\n" + md)
    test_rows = [r for r in rows if r["split"] == "test"]
    if test_rows:
        flat = [
            {k: v for k, v in r.items() if k not in ("loss_curve", "memory", "run_memory", "options")}
            | {
                f"sram_{res}": r.get("memory", {}).get(str(res), {}).get("total")
                for res in (settings.resolution, settings.memory_resolution)
            }
            for r in sorted(test_rows, key=lambda r: (r["dataset"], r["label"], r["lr"], r["seed"]))
        ]
        written.append(_write_csv(out / "runs.csv", flat))
    run_seconds = sum(float(r.get("seconds", 0)) for r in test_rows)
    cpu_seconds = sum(float(r.get("cpu_seconds", 0)) for r in test_rows)
    info = dict(
        info,
        run_seconds_sum=round(run_seconds, 1),
        cpu_seconds_sum=round(cpu_seconds, 1),
        runs=len(test_rows),
    )
    atomic.write_text(out / "run_info.json", json.dumps(info, indent=1, default=str))
    written.append(out / "run_info.json")
    s = settings
    head = (
        f"# Accuracy evidence (generated by `tinytrain experiment`)\n\n"
        f"{_about_model(s.model)} with a new head; datasets {', '.join(s.datasets)}; "
        f"seeds {', '.join(map(str, s.seeds))}; training at {_at(s.resolution)}, "
        f"{s.epochs} epochs, "
        f"batch 1, at most {s.max_train} training images per dataset (stratified), SGD, linear warmup "
        f"{100 * s.warmup_fraction:g}% then cosine decay to 0; learning rates "
        f"({info.get('lr_source')}): {json.dumps(s.lr)}; head multipliers: {json.dumps(s.head)}; update "
        f"rule of the int8 runs `{s.rule}` (the rounding table: all three). Test accuracy on the fixed "
        f"test split, mean ± std over seeds (%). Discussion: docs/evidence.md.\n\n"
    )
    atomic.write_text(out / "README.md", head + "\n".join(sections))
    written.append(out / "README.md")
    return written
