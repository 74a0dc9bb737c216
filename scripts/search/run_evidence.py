"""Evidence for issue 8: searched schemes vs the published ones vs last-k-layers, at equal memory.

    nohup python scripts/search/run_evidence.py > results/search/evidence.log 2>&1 &   # from the repo root

Needs results/search/contributions.json (scripts/search/run_analysis.py). For each budget (= the exact
plan total of a published scheme, under today's compile defaults): search with evolution / random / greedy
at equal evaluation cost; train the published scheme, ours (evolution) and last-k (the deepest full update
of the last k convs that fits) on the host reference, several seeds, on test images the analysis never used.
Writes search_comparison.{csv,md}, evidence.{csv,md}, evidence.png, schemes/*.json.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

from emulation.boards import DEFAULT_BOARD
from tinytrain.job.prepare import load_graph
from tinytrain.sparse import resolve_scheme
from tinytrain.sparse.contrib import AnalysisSettings, Contributions, Workbench
from tinytrain.sparse.cost import CostModel
from tinytrain.sparse.search import METHODS, last_k_layers, search

OUT = Path("results/search")
MODEL, DATASET, RES, BOARD, CLASSES = "mcunet-5fps", "digits", 128, DEFAULT_BOARD, 10
PAPER = ["49kb", "99kb", "148kb"]  # tight, middle, generous
SEEDS = (0, 1)
EVALS = 120
# same training as the analysis, evaluated on held-out test images 200..539 (the analysis used 0..199)
TRAIN = AnalysisSettings(
    model=MODEL, dataset=DATASET, resolution=RES, lr=0.005, steps=200, test_images=340, test_skip=200
)

_BENCH: Workbench | None = None


def _init() -> None:
    global _BENCH
    _BENCH = Workbench(TRAIN)


def _run(job: tuple[str, int, str, dict, int]) -> tuple[str, int, str, dict, int, dict]:
    assert _BENCH is not None
    label, budget, method, spec, seed = job
    f = OUT / "cache" / "evidence_runs" / f"{label.replace(' ', '_')}-{method}-s{seed}.json"
    if f.exists():  # resumable
        return label, budget, method, spec, seed, json.loads(f.read_text())
    res = _BENCH.train(spec, seed)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(res))
    return label, budget, method, spec, seed, res


def describe(spec: dict) -> str:
    ws = " ".join(
        f"{w['layer'].replace('blocks.', 'b').replace('.pointwise', '.pw').replace('.depthwise', '.dw')}"
        f"x{w['input_channel_ratio']:g}"
        for w in spec["weights"]
        if w["input_channel_ratio"] > 0
    )
    return f"bias{spec['bias_last_n']} {ws}".strip()


def write_table(rows: list[dict], stem: str) -> None:
    keys = list(rows[0])
    with open(OUT / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append(
            "| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()) + " |"
        )
    (OUT / f"{stem}.md").write_text("\n".join(lines) + "\n")


def search_budget(pb, graph, cost, contrib, schemes_dir, comparison) -> list:
    paper_spec = resolve_scheme(f"paper:{pb}", graph)
    pspec = {
        "bias_last_n": paper_spec.bias_last_n,
        "weights": [
            {"layer": w.layer, "input_channel_ratio": w.ratio}
            for w in paper_spec.weights.values()
            if w.layer != paper_spec.classifier
        ],
    }
    budget = cost.exact(pspec)
    ours = None
    for m in METHODS:
        ts = time.time()
        r = search(contrib, cost, budget, m, max_evals=EVALS, seed=0)
        comparison.append(
            {
                "budget": f"paper:{pb}",
                "budget_bytes": budget,
                "method": m,
                "summed_gain": r.gain,
                "total_bytes": r.total,
                "evaluations": r.evaluations,
                "seconds": round(time.time() - ts, 1),
                "scheme": describe(r.spec),
            }
        )
        print(comparison[-1], flush=True)
        if m == "evolution":
            ours = r
    assert ours is not None
    lastk = last_k_layers(cost, budget)
    paper_gain = contrib.bias_gain(pspec["bias_last_n"]) + sum(
        contrib.weight_gain(w["layer"], w["input_channel_ratio"])
        for w in pspec["weights"]
        if w["layer"] in contrib.layers and w["input_channel_ratio"] in contrib.ratios
    )
    comparison.append(
        {
            "budget": f"paper:{pb}",
            "budget_bytes": budget,
            "method": "paper (published)",
            "summed_gain": paper_gain,
            "total_bytes": budget,
            "evaluations": 0,
            "seconds": 0.0,
            "scheme": describe(pspec),
        }
    )
    jobs = []
    for label, spec in (("paper", pspec), ("ours", ours.spec), ("last-k", lastk)):
        (schemes_dir / f"{label}-{pb}.json").write_text(
            json.dumps(
                {
                    "name": f"{label}-{pb}",
                    **spec,
                    "about": {"budget_bytes": budget, "predicted_total_bytes": cost.exact(spec)},
                },
                indent=1,
            )
        )
        jobs += [(label, budget, pb, spec, s) for s in SEEDS]
    return jobs


def contributions_table(contrib: Contributions, cost: CostModel) -> None:
    table = cost.component_table(sorted(contrib.bias_acc), contrib.layers, contrib.ratios, contrib.ref_bias)
    costs = {(r["layer"], r["ratio"], r["bias_last_n"]): r for r in table.rows()}
    crow = []
    for r in contrib.table_rows():
        c = costs[(r["layer"], r["ratio"], r["bias_last_n"])]
        crow.append({**r, "total_bytes": c["total"], "marginal_bytes": c["marginal"]})
    write_table(crow, "contributions")
    cost.save()


def main() -> None:
    t0 = time.time()
    contrib = Contributions.load(OUT / "contributions.json")
    graph = load_graph(MODEL, RES, CLASSES, fresh_head=True)
    cost = CostModel(graph, BOARD, cache_file=OUT / "cache" / f"costs-{MODEL}-r{RES}-c{CLASSES}-{BOARD}.json")
    schemes_dir = OUT / "schemes"
    schemes_dir.mkdir(parents=True, exist_ok=True)
    minimum = cost.minimum()
    print(f"minimum (last) {minimum} B", flush=True)
    if not (OUT / "contributions.csv").exists():
        contributions_table(contrib, cost)

    jobs: list = []
    plan_file = OUT / "evidence_plan.json"
    if plan_file.exists():  # resume: the searches are done, only training remains
        jobs = [tuple(j) for j in json.loads(plan_file.read_text())]
    else:
        comparison = []
        for pb in PAPER:
            jobs += search_budget(pb, graph, cost, contrib, schemes_dir, comparison)
            cost.save()
        write_table(comparison, "search_comparison")
        plan_file.write_text(json.dumps(jobs))
    jobs += [("classifier only", minimum, "-", {"bias_last_n": 0, "weights": []}, s) for s in SEEDS]
    print(f"{len(jobs)} training runs", flush=True)
    bench = Workbench(TRAIN)
    bench.workers = 2
    g0 = bench.graph(0)
    from tinytrain.sparse.contrib import cut_before, earliest_trained

    for index in sorted({cut_before(g0, earliest_trained(g0, j[3])) for j in jobs}):
        ts = time.time()
        bench.features(index)  # once, in parallel, before the training workers start
        print(f"features at {g0.ops[index].inputs[0]}: {time.time() - ts:.0f} s", flush=True)
    results = []
    with mp.get_context("fork").Pool(2, _init) as pool:
        for i, res in enumerate(pool.imap_unordered(_run, jobs), 1):
            results.append(res)
            print(
                f"[{i}/{len(jobs)}] {res[0]} {res[2]} seed {res[4]}: acc {res[5]['accuracy']:.4f} "
                f"({res[5]['seconds']} s)",
                flush=True,
            )
    saved = {}
    for f in schemes_dir.glob("*.json"):
        d = json.loads(f.read_text())
        saved[json.dumps({"b": d["bias_last_n"], "w": d["weights"]}, sort_keys=True)] = d["about"]

    def total_of(spec: dict) -> int:  # the plan total recorded when the scheme was searched
        key = json.dumps({"b": spec["bias_last_n"], "w": spec["weights"]}, sort_keys=True)
        return int(saved[key]["predicted_total_bytes"]) if key in saved else cost.exact(spec)

    rows = []
    keys = sorted({(r[2], r[0]) for r in results}, key=lambda x: (x[0] != "-", x[0], x[1]))
    order = {"-": 0, **{pb: i + 1 for i, pb in enumerate(PAPER)}}
    keys.sort(key=lambda x: (order.get(x[0], 99), ["classifier only", "last-k", "paper", "ours"].index(x[1])))
    for pb, label in keys:
        rs = [r for r in results if r[0] == label and r[2] == pb]
        accs = [r[5]["accuracy"] for r in sorted(rs, key=lambda r: r[4])]
        spec = rs[0][3]
        rows.append(
            {
                "budget": f"paper:{pb}" if pb != "-" else "-",
                "scheme": label,
                "total_KB": round(total_of(spec) / 1024, 1),
                "budget_KB": round(rs[0][1] / 1024, 1),
                "acc_mean": float(np.mean(accs)),
                "acc_std": float(np.std(accs)),
                "per_seed": " ".join(f"{a:.3f}" for a in accs),
                "updates": describe(spec),
            }
        )
    write_table(rows, "evidence")
    plot(rows)
    print(f"done in {(time.time() - t0) / 60:.1f} min; cost plans {cost.plans} ({cost.plan_seconds:.0f} s)")


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    styles = {
        "paper": ("s", "tab:blue"),
        "ours": ("o", "tab:red"),
        "last-k": ("^", "tab:gray"),
        "classifier only": ("x", "black"),
    }
    for label, (mk, col) in styles.items():
        rs = [r for r in rows if r["scheme"] == label]
        if rs:
            ax.errorbar(
                [r["total_KB"] for r in rs],
                [r["acc_mean"] * 100 for r in rs],
                yerr=[r["acc_std"] * 100 for r in rs],
                fmt=mk + "-",
                color=col,
                label=label,
                capsize=3,
            )
    ax.set_xlabel("predicted total SRAM (KB, exact plan)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{MODEL} on {DATASET} @ {RES}: {len(SEEDS)} seeds, held-out test")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "evidence.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
