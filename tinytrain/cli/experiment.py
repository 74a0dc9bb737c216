"""`tinytrain experiment`: the accuracy evidence on the host training reference (bit-exact with the
device), both shipped datasets, several seeds, mean ± std.

Suites: `table1` (fp32 vs int8 without QAS vs int8 with QAS, same scheme and steps, plus the
classifier-only baseline), `fig9` (accuracy vs training memory: last, bias, last-k blocks, the five
published sparse budgets, full), `rounding` (nearest vs stochastic vs shadow updates), `lr` (the
learning-rate sweep on a validation split of the training set; it runs first whenever `--lr` is not
given), `all` (everything). Every finished run is cached as a JSON row in `<out>/runs/`, so a rerun skips
finished runs and an interrupted one resumes. Tables (CSV + Markdown) and plots (PNG) go to `--out`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tinytrain import REPO_ROOT, TinytrainError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="accuracy evidence: Table 1, Fig. 9, update rounding (host reference, several seeds)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("suite", nargs="?", default="all", choices=("table1", "fig9", "rounding", "lr", "all"))
    p.add_argument("--datasets", default="faces,digits", help="comma-separated (default faces,digits)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..N-1 (default 3)")
    p.add_argument("--resolution", type=int, default=64, help="training resolution (default 64)")
    p.add_argument("--epochs", type=int, default=2, help="epochs over the training set (default 2)")
    p.add_argument(
        "--max-train",
        type=int,
        default=200,
        help="stratified cap on training images per dataset (default 200: digits 1257 -> 200; faces has 140)",
    )
    p.add_argument(
        "--lr",
        type=float,
        help="one learning rate for every run (skips the sweep; default: chosen by the sweep)",
    )
    p.add_argument(
        "--rule",
        default="nearest",
        choices=("nearest", "stochastic", "shadow"),
        help="update rule of the int8 runs of the sweep, table1 and fig9 (default nearest)",
    )
    p.add_argument("--sweep-seeds", type=int, default=1, help="seeds of the lr sweep (default 1)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--out",
        default=str(REPO_ROOT / "results" / "evidence"),
        help="output directory (default results/evidence)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinytrain.data import DATASETS
    from tinytrain.experiments.config import FAMILIES, Settings
    from tinytrain.experiments.pipeline import evidence

    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())
    for d in datasets:
        if d not in DATASETS:
            raise TinytrainError(f"unknown dataset {d!r}: choose from {', '.join(DATASETS)}")
    if args.seeds < 1 or args.epochs < 1 or args.resolution < 32 or args.jobs < 1 or args.sweep_seeds < 1:
        raise TinytrainError("--seeds, --epochs, --jobs, --sweep-seeds must be >= 1 and --resolution >= 32")
    lr = {d: {f: args.lr for f in FAMILIES} for d in datasets} if args.lr else {}
    settings = Settings(
        datasets=datasets,
        seeds=tuple(range(args.seeds)),
        resolution=args.resolution,
        epochs=args.epochs,
        max_train=args.max_train,
        sweep_seeds=tuple(range(args.sweep_seeds)),
        lr=lr,
        rule=args.rule,
    )
    suites = ["lr", "table1", "fig9", "rounding"] if args.suite == "all" else [args.suite]
    t0 = time.perf_counter()
    print(
        f"tinytrain experiment {args.suite}: mcunet-5fps, {','.join(datasets)}, seeds {args.seeds}, "
        f"{args.resolution}x{args.resolution}, {args.epochs} epochs, max {args.max_train} training images, "
        f"out {args.out}",
        flush=True,
    )
    evidence(settings, suites, Path(args.out), jobs=args.jobs, log=lambda m: print(m, flush=True))
    print(f"done in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    return 0
