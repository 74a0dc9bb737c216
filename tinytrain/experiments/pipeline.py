"""The evidence pipeline: run what is not cached yet (in parallel worker processes), choose the learning
rates on the validation split, and write the tables and plots.

Cache: one JSON file per finished run, `<out>/runs/<RunSpec.key()>.json`, written atomically when the run
ends. A rerun (same settings) loads those and runs only the missing ones, so an interrupted evidence run
resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from emulation.boards import DEFAULT_BOARD
from tinytrain.executor import Executor, Task, TasksFailed, make_executor
from tinytrain.experiments.config import (
    FAMILIES,
    MAIN_HEAD1,
    RunSpec,
    Settings,
    dedupe,
    family,
    suite_specs,
    sweep_specs,
)
from tinytrain.progress import Tracker

Row = dict[str, Any]
SUITE_PRIORITY = ("table1", "rounding", "fig9")


class Store:
    """Finished runs as JSON rows under `<out>/runs/`."""

    def __init__(self, out: Path) -> None:
        self.dir = Path(out) / "runs"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, sp: RunSpec) -> Path:
        return self.dir / f"{sp.key()}.json"

    def get(self, sp: RunSpec) -> Row | None:
        p = self.path(sp)
        if not p.exists():
            return None
        try:
            row: Row = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # a damaged row is rerun
        return row if row.get("key") == sp.key() else None

    def put(self, row: Row) -> None:
        p = self.dir / f"{row['key']}.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(row, indent=1))
        os.replace(tmp, p)


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _work(sp: RunSpec, board: str, memory_resolution: int) -> Row:
    from tinytrain.experiments.runner import run

    return run(sp, board=board, memory_resolution=memory_resolution, with_memory=sp.split == "test")


def _cost(sp: RunSpec) -> float:
    """Rough relative cost, to start long runs first (better packing on few workers)."""
    per = {"last": 1.0, "bias": 4.0, "full": 7.0}.get(sp.scheme, 3.0)
    if sp.engine == "fp32":
        per = 0.6
    return per * (140 if sp.dataset == "faces" else sp.max_train)


def execute(
    specs: Iterable[RunSpec],
    store: Store,
    jobs: int = 2,
    board: str = DEFAULT_BOARD,
    memory_resolution: int = 128,
    log: Callable[[str], None] = print,
    longest_first: bool = True,
    executor: Executor | None = None,
    live: bool = False,
) -> list[Row]:
    """Rows of all `specs`: cached ones loaded, the others run through `executor` (default: the local one,
    `jobs` processes; 1 = in this process), the longest first (or in the given order). A run that fails
    twice is reported when the others have finished (TinytrainError)."""
    specs = dedupe(list(specs))
    rows: dict[str, Row] = {}
    todo = []
    for sp in specs:
        row = store.get(sp)
        if row is None:
            todo.append(sp)
        else:
            rows[sp.key()] = row
    where = f"{jobs} worker{'s' if jobs > 1 else ''}" if executor is None else f"executor {executor.name}"
    log(f"{len(specs)} runs: {len(rows)} cached, {len(todo)} to run ({where})")
    if longest_first:
        todo.sort(key=_cost, reverse=True)
    t0 = time.perf_counter()
    failed: list[str] = []
    if executor is None:
        executor = make_executor("local", jobs, "process", "spawn", _worker_init)
    tasks = {sp.key(): Task(RUN_TASK, (sp, board, memory_resolution), sp.key()) for sp in todo}
    with Tracker("evidence runs", len(todo), live, log) as track:

        def finished(row: Row) -> None:
            store.put(row)
            rows[row["key"]] = row
            done = track.finished + 1
            el = time.perf_counter() - t0
            eta = el / done * (len(todo) - done)
            track.done(
                True,
                f"[{done:3d}/{len(todo)}] {row['split']:4s} {row['dataset']:6s} seed {row['seed']} "
                f"{row['label']:32s} lr {row['lr']:<7g} acc {100 * row['accuracy']:5.1f}%  "
                f"loss {row['eval_loss']:.3f}  {row['seconds']:6.1f}s   elapsed {el / 60:5.1f} min, "
                f"~{eta / 60:4.1f} min left",
            )

        if tasks:
            with executor:
                for out in executor.map(tasks.values()):
                    if out.ok:
                        finished(out.value)
                    else:
                        failed.append(f"{out.task.key}: {out.error}")
                        track.done(False, f"FAILED {out.task.key}: {out.error.splitlines()[0][:300]}")
    if failed:
        raise TasksFailed(
            f"{len(failed)} of {len(todo)} runs failed (the others are cached; run again to retry them): "
            + failed[0].splitlines()[0][:500]
        )
    return [rows[sp.key()] for sp in specs]


#: The task of one evidence run (tinytrain.executor): (RunSpec, board, memory resolution) -> row.
RUN_TASK = "tinytrain.experiments.pipeline:_work"


def choose_lrs(
    rows: list[Row], datasets: Iterable[str], main_family: str = "main"
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]], list[Row]]:
    """Per dataset and family, the grid (lr, head multiplier) with the best validation accuracy, averaged
    over the sweep seeds (ties: lower mean validation loss). Returns the chosen lrs (plus, under
    `MAIN_HEAD1`, the main scheme's best lr among its head-x1 runs), the chosen head multipliers and a
    summary table (one row per dataset/family/lr/head multiplier)."""
    groups: dict[tuple[str, str, float, float], list[Row]] = defaultdict(list)
    for r in rows:
        fam = family(r["scheme"])
        groups[(r["dataset"], fam, float(r["lr"]), float(r.get("head_lr_scale", 1.0)))].append(r)
    chosen: dict[str, dict[str, float]] = {}
    heads: dict[str, dict[str, float]] = {}
    table: list[Row] = []
    for ds in datasets:
        for fam in FAMILIES:
            cands = []
            for (gds, gfam, lr, hs), g in sorted(groups.items()):
                if gds != ds or gfam != fam:
                    continue
                acc = float(np.mean([r["accuracy"] for r in g]))
                loss = float(np.mean([r["eval_loss"] for r in g]))
                cands.append((acc, -loss, lr, hs))
                table.append(
                    {
                        "dataset": ds,
                        "family": fam,
                        "scheme": FAMILIES[fam],
                        "lr": lr,
                        "head_lr_scale": hs,
                        "val_accuracy": acc,
                        "val_accuracy_min": float(min(r["accuracy"] for r in g)),
                        "val_loss": loss,
                        "seeds": len(g),
                        "val_samples": g[0]["eval_samples"],
                        "train_samples": g[0]["train_samples"],
                    }
                )
            if cands:
                _, _, lr, hs = max(cands)
                chosen.setdefault(ds, {})[fam] = lr
                heads.setdefault(ds, {})[fam] = hs
                head1 = [c for c in cands if c[3] == 1.0]
                if fam == main_family and head1:
                    chosen[ds][MAIN_HEAD1] = max(head1)[2]
                for t in table:
                    if t["dataset"] == ds and t["family"] == fam:
                        t["chosen"] = t["lr"] == lr and t["head_lr_scale"] == hs
    return chosen, heads, table


def refresh_memory(
    rows: list[Row], board: str, memory_resolution: int | None
) -> tuple[list[Row], dict[str, Any]]:
    """Copies of the rows whose `memory` is recomputed now, once per (dataset, scheme, rule, QAS), so every
    figure of a report comes from one compiler version (the compile options' defaults change as memory
    optimizations land; a row's own `memory` is what the compiler said when the run finished)."""
    from tinytrain.experiments.runner import _dataset, data_options, memory

    plans: dict[tuple[Any, ...], dict[str, Any]] = {}
    out: list[Row] = []
    options: dict[str, Any] = {}
    for r in rows:
        if r["split"] != "test":
            out.append(r)
            continue
        # the head multiplier does not change the memory (it scales tables that live in flash)
        k = (
            r["dataset"],
            r["scheme"],
            r["rule"],
            r["qas"],
            r["resolution"],
            r["model"],
            str(r.get("data_options")),
        )
        if k not in plans:
            sp = RunSpec(**{f: r[f] for f in RunSpec.__dataclass_fields__ if f in r})
            sp = replace(sp, data_options=data_options(r.get("data_options")))
            classes = _dataset(sp.model, sp.dataset, sp.resolution, sp.split_seed, sp.data_options).classes
            plans[k] = {
                str(res): memory(sp, res, classes, board)
                for res in sorted({r["resolution"], memory_resolution})
            }
            options = plans[k][str(memory_resolution)]["options"]
        out.append(dict(r, memory=plans[k], run_memory=r.get("memory")))
    return out, options


def evidence(
    settings: Settings,
    suites: Iterable[str],
    out: Path,
    jobs: int = 2,
    log: Callable[[str], None] = print,
    executor: Executor | None = None,
    live: bool = False,
) -> dict[str, Any]:
    """Run the suites (lr sweep first unless `settings.lr` fixes the rates), then write the report. The
    runs go through `executor` (default: `jobs` local processes), started once for both phases."""
    if executor is not None:
        with executor:
            return _evidence(settings, suites, out, jobs, log, executor, live)
    return _evidence(settings, suites, out, jobs, log, None, live)


def _evidence(
    settings: Settings,
    suites: Iterable[str],
    out: Path,
    jobs: int,
    log: Callable[[str], None],
    executor: Executor | None,
    live: bool,
) -> dict[str, Any]:
    from tinytrain.experiments import report

    out = Path(out)
    store = Store(out)
    suites = list(suites)
    t0 = time.perf_counter()
    info: dict[str, Any] = {"settings": asdict(settings), "suites": suites}
    sweep_table: list[Row] = []
    if not settings.lr:
        log("== learning-rate sweep (validation split of the training set)")
        sweep_rows = execute(
            sweep_specs(settings),
            store,
            jobs,
            settings.board,
            settings.memory_resolution,
            log,
            executor=executor,
            live=live,
        )
        chosen, heads, sweep_table = choose_lrs(sweep_rows, settings.datasets, family(settings.main_scheme))
        settings = replace(settings, lr=chosen, head=heads)
        log(f"chosen learning rates: {json.dumps(chosen)}; head multipliers: {json.dumps(heads)}")
        info["lr_source"] = "sweep"
    else:
        info["lr_source"] = "given"
    info["lr"] = settings.lr
    info["head_lr_scale"] = settings.head
    specs: list[RunSpec] = []
    for s in sorted((s for s in suites if s != "lr"), key=SUITE_PRIORITY.index):
        # suite by suite (Table 1 and rounding first: if time runs short, Fig. 9 is the partial one),
        # longest runs first within a suite
        specs += sorted(suite_specs(settings, s), key=_cost, reverse=True)
    rows: list[Row] = []
    if specs:
        log(f"== evidence runs: {', '.join(s for s in suites if s != 'lr')}")
        rows = execute(
            specs,
            store,
            jobs,
            settings.board,
            settings.memory_resolution,
            log,
            longest_first=False,
            executor=executor,
            live=live,
        )
    if rows:
        at = (
            f"{settings.resolution} and {settings.memory_resolution} pixels"
            if settings.resolution
            else "the model's own input"
        )
        log(f"== memory plans (current compiler defaults) at {at}")
        rows, info["compile_options"] = refresh_memory(rows, settings.board, settings.memory_resolution)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    info["python"] = sys.version.split()[0]
    written = report.write_all(out, settings, suites, rows, sweep_table, info)
    for p in written:
        log(f"wrote {p}")
    return info
