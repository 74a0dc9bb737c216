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

from tinytrain.experiments.config import FIG9_SCHEMES, MAIN_SCHEME, RULES, Settings, family

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


def _select(rows: list[Row], dataset: str, **kw: Any) -> list[Row]:
    out = []
    for r in rows:
        if r["dataset"] != dataset or r["split"] != "test":
            continue
        if all(
            (abs(r[k] - v) <= 1e-12 * max(1.0, abs(v))) if isinstance(v, float) else r[k] == v
            for k, v in kw.items()
        ):
            out.append(r)
    return out


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
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def _lr_of(settings: Settings, ds: str, fam: str) -> float:
    return settings.lr[ds][fam]


# ---------------------------------------------------------------------------------------------------------
def table1(rows: list[Row], settings: Settings) -> tuple[list[Row], str]:
    methods = [
        (
            f"classifier only (int8, QAS, `last`, {settings.rule})",
            "last",
            {"scheme": "last", "engine": "int8", "qas": True, "rule": settings.rule},
        ),
        (f"fp32 (PyTorch twin, `{MAIN_SCHEME}`)", "main", {"scheme": MAIN_SCHEME, "engine": "fp32"}),
        (
            f"int8 without QAS (`{MAIN_SCHEME}`, nearest)",
            "main",
            {"scheme": MAIN_SCHEME, "engine": "int8", "qas": False, "rule": "nearest"},
        ),
        (
            f"int8 without QAS (`{MAIN_SCHEME}`, shadow f32 accumulation)",
            "main",
            {"scheme": MAIN_SCHEME, "engine": "int8", "qas": False, "rule": "shadow"},
        ),
        (
            f"**int8 with QAS** (`{MAIN_SCHEME}`, {settings.rule})",
            "main",
            {"scheme": MAIN_SCHEME, "engine": "int8", "qas": True, "rule": settings.rule},
        ),
    ]
    csv_rows: list[Row] = []
    body = []
    for name, fam, sel in methods:
        cells = [name]
        for ds in settings.datasets:
            lr = _lr_of(settings, ds, fam)
            g = _select(rows, ds, lr=lr, **sel)
            acc = _stats(r["accuracy"] for r in g)
            loss = _stats(r["eval_loss"] for r in g)
            cells.append(pm(*acc))
            csv_rows.append(
                {
                    "method": name.replace("*", "").replace("`", ""),
                    "dataset": ds,
                    "lr": lr,
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
    return csv_rows, md


def fig9(rows: list[Row], settings: Settings) -> tuple[list[Row], str]:
    R, M = settings.resolution, settings.memory_resolution
    csv_rows: list[Row] = []
    body = []
    for sch in FIG9_SCHEMES:
        fam = family(sch)
        cells = [f"`{sch}`"]
        mem_cells: list[str] = []
        for i, ds in enumerate(settings.datasets):
            lr = _lr_of(settings, ds, fam)
            g = _select(rows, ds, scheme=sch, engine="int8", qas=True, rule=settings.rule, lr=lr)
            acc = _stats(r["accuracy"] for r in g)
            rec = {
                "scheme": sch,
                "dataset": ds,
                "lr": lr,
                "acc_mean": acc[0],
                "acc_std": acc[1],
                "seeds": acc[2],
                f"sram_{R}": _mem(g, R),
                f"arena_{R}": _mem(g, R, "arena"),
                f"sram_{M}": _mem(g, M),
                f"arena_{M}": _mem(g, M, "arena"),
                "trainable_weights_128": _mem(g, M, "trainable_weights"),
            }
            csv_rows.append(rec)
            cells.append(pm(*acc))
            if i == len(settings.datasets) - 1:
                mem_cells = [
                    f"{rec[f'sram_{R}'] / KB:.0f}",
                    f"{rec[f'sram_{M}'] / KB:.0f}",
                    f"{rec[f'arena_{M}'] / KB:.0f}",
                ]
        body.append(cells[:1] + mem_cells + cells[1:])
    last_ds = settings.datasets[-1]
    md = _md_table(
        ["scheme", f"SRAM @{R}×{R} (KB)", f"SRAM @{M}×{M} (KB)", f"arena @{M}×{M} (KB)"]
        + [f"{ds} acc (%)" for ds in settings.datasets],
        body,
    )
    md += (
        f"\nMemory: the compiler's plan for the `{settings.board}` board, total predicted SRAM (arena + "
        f"trainable copies + input + stack + runtime state), with the {last_ds} head; "
        "per-dataset figures in the CSV. Accuracies at the training resolution "
        f"{R}×{R}.\n"
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
                lr = _lr_of(settings, ds, "main") * factor
                g = _select(rows, ds, scheme=MAIN_SCHEME, engine="int8", qas=True, rule=rule, lr=lr)
                base = _select(rows, ds, scheme=MAIN_SCHEME, engine="int8", qas=True, rule="nearest", lr=lr)
                acc = _stats(r["accuracy"] for r in g)
                rec = {
                    "rule": rule,
                    "lr_factor": factor,
                    "dataset": ds,
                    "lr": lr,
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
                        f"{rec[f'sram_{M}'] / KB:.1f}",
                        f"{rec[f'extra_vs_nearest_{M}'] / KB:+.1f}",
                    ]
            body.append(cells + memcells)
    md = _md_table(
        ["rule", "lr"]
        + [f"{ds} acc (%)" for ds in settings.datasets]
        + [f"SRAM @{R} (KB)", f"SRAM @{M} (KB)", f"vs nearest @{M} (KB)"],
        body,
    )
    lrs = ", ".join(f"{ds} {_lr_of(settings, ds, 'main'):g}" for ds in settings.datasets)
    md += f"\nScheme `{MAIN_SCHEME}`, int8 with QAS; chosen lr: {lrs}.\n"
    return csv_rows, md


def sweep_md(table: list[Row]) -> str:
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for t in table:
        groups[(t["dataset"], t["family"])].append(t)
    lrs = sorted({t["lr"] for t in table})
    body = []
    for (ds, _fam), g in groups.items():
        by = {t["lr"]: t for t in g}
        cells = [ds, f"`{g[0]['scheme']}`", f"{g[0]['train_samples']}/{g[0]['val_samples']}"]
        for lr in lrs:
            t = by.get(lr)
            if t is None:
                cells.append("—")
            else:
                s = f"{100 * t['val_accuracy']:.1f} ({t['val_loss']:.2f})"
                cells.append(f"**{s}**" if t.get("chosen") else s)
        body.append(cells)
    return _md_table(["dataset", "scheme", "train/val"] + [f"lr {lr:g}" for lr in lrs], body) + (
        "\nValidation accuracy % (validation loss), int8 with QAS, nearest rounding; **bold**: chosen "
        "(best accuracy, ties: lower loss).\n"
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
            ax.axvline(320, color="k", ls="--", lw=0.8, label="320 KB (STM32F746 SRAM)")
            ax.axvline(256, color="k", ls=":", lw=0.8, label="256 KB")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_ylim(top=103)
            ax.set_xlabel(f"training memory, predicted SRAM at {res}×{res} (KB, log)")
            ax.set_ylabel(f"{ds} test accuracy (%) [trained at {R}×{R}]")
            ax.set_title(f"{ds}: accuracy vs memory @{res}×{res}")
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"MCUNet-5FPS, new head, int8 + QAS, {settings.epochs} epochs, mean ± std over "
        f"{len(settings.seeds)} seeds"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_curves(path: Path, rows: list[Row], settings: Settings) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nds = len(settings.datasets)
    fig, axes = plt.subplots(1, nds, figsize=(6 * nds, 4.2), squeeze=False)
    sel = [
        ("classifier only", {"scheme": "last", "engine": "int8", "qas": True, "rule": settings.rule}, "last"),
        ("fp32", {"scheme": MAIN_SCHEME, "engine": "fp32"}, "main"),
        ("int8 no QAS", {"scheme": MAIN_SCHEME, "engine": "int8", "qas": False, "rule": "nearest"}, "main"),
        (
            "int8 no QAS, shadow",
            {"scheme": MAIN_SCHEME, "engine": "int8", "qas": False, "rule": "shadow"},
            "main",
        ),
        ("int8 QAS", {"scheme": MAIN_SCHEME, "engine": "int8", "qas": True, "rule": settings.rule}, "main"),
    ]
    for j, ds in enumerate(settings.datasets):
        ax = axes[0][j]
        for name, kw, fam in sel:
            g = _select(rows, ds, lr=_lr_of(settings, ds, fam), **kw)
            curves = [r["loss_curve"] for r in g if r["loss_curve"]]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            c = np.mean([cc[:n] for cc in curves], axis=0)
            steps = g[0]["steps"]
            ax.plot(np.linspace(0, steps, n), c, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("training step (batch 1)")
        ax.set_ylabel("training loss (chunk mean, mean over seeds)")
        ax.set_title(f"{ds}: training loss, Table 1 methods")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
        md = sweep_md(sweep_table)
        (out / "lr_sweep.md").write_text("# Learning-rate sweep\n\n" + md)
        written.append(out / "lr_sweep.md")
        sections.append("## Learning-rate sweep\n\n" + md)
    if "table1" in suites:
        recs, md = table1(rows, settings)
        written.append(_write_csv(out / "table1.csv", recs))
        (out / "table1.md").write_text("# Table 1 shape: fp32 vs int8 without / with QAS\n\n" + md)
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
        (out / "fig9.md").write_text("# Fig. 9 shape: accuracy vs training memory\n\n" + md)
        written.append(out / "fig9.md")
        written.append(_plot_fig9(out / "fig9.png", recs, settings))
        sections.append("## Fig. 9 shape\n\n" + md)
    if "rounding" in suites:
        recs, md = rounding(rows, settings)
        written.append(_write_csv(out / "rounding.csv", recs))
        (out / "rounding.md").write_text("# Update rounding rule\n\n" + md)
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
    (out / "run_info.json").write_text(json.dumps(info, indent=1, default=str))
    written.append(out / "run_info.json")
    s = settings
    head = (
        f"# Accuracy evidence (generated by `tinytrain experiment`)\n\n"
        f"MCUNet-5FPS (ImageNet-pretrained int8) with a new head; datasets {', '.join(s.datasets)}; "
        f"seeds {', '.join(map(str, s.seeds))}; training at {s.resolution}×{s.resolution}, "
        f"{s.epochs} epochs, "
        f"batch 1, at most {s.max_train} training images per dataset (stratified), SGD, linear warmup "
        f"{100 * s.warmup_fraction:g}% then cosine decay to 0; learning rates "
        f"({info.get('lr_source')}): {json.dumps(s.lr)}. Test accuracy on the fixed test split, "
        f"mean ± std over seeds (%). Discussion: docs/evidence.md.\n\n"
    )
    (out / "README.md").write_text(head + "\n".join(sections))
    written.append(out / "README.md")
    return written
