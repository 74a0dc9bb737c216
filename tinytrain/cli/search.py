"""`tinytrain search`: find a sparse-update scheme for a model, dataset and memory budget.

The budget is the predicted total SRAM in KB (1024 bytes): the same number `tinytrain compile` reports
for the written scheme (same model, resolution, classes = the dataset's, board). Gains come from a
contribution analysis (`--contrib FILE`, or run here: cached and resumable under ./results/search/cache/
of the current directory, progress on stderr); costs from the compiler's exact memory plan. Writes a
scheme file (`--out FILE.json`) that `tinytrain compile --scheme FILE` and `tinytrain emulate --scheme
FILE` accept. A budget below the `last` scheme's total (frozen forward pass + classifier update) is
refused with that minimum (exit 2).

Any model `emulate` takes (a zoo model, or an imported one: `tinytrain import` writes its directory; an
imported or 1-D model runs at its own input, no --resolution) and any dataset it takes (faces, digits, an
image folder, an .npz, a long-format CSV or .ts series; --window/--stride/--normalize/--layout).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emulation.boards import DEFAULT_BOARD
from tinytrain.atomic import write_text
from tinytrain.data.options import DATASET_HELP, add_dataset_options, dataset_options
from tinytrain.sparse.schemes import SCHEME_FORMAT_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="search a sparse-update scheme under a memory budget",
        description=__doc__,
        epilog=SCHEME_FORMAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        required=True,
        help="zoo model (mcunet-5fps, mbv2-w0.35, proxyless-w0.3, sensor-conv1d) or a model directory "
        "(`tinytrain import` writes one)",
    )
    p.add_argument("--dataset", default="digits", metavar="NAME|PATH", help=DATASET_HELP + "; default digits")
    p.add_argument("--budget", required=True, type=float, help="predicted total SRAM budget, KB (1024 B)")
    p.add_argument(
        "--board", default=DEFAULT_BOARD, help=f"board profile: m7, m4, stm32f405 (default {DEFAULT_BOARD})"
    )
    p.add_argument(
        "--resolution",
        type=int,
        help="input resolution of a zoo image model (default 128); an imported or 1-D model: its own input",
    )
    p.add_argument("--out", required=True, metavar="FILE.json", help="write the scheme here")
    p.add_argument(
        "--contrib",
        metavar="FILE.json",
        help="contribution table (tinytrain.sparse.contrib); default: run the analysis",
    )
    p.add_argument("--method", default="evolution", choices=("evolution", "random", "greedy"))
    p.add_argument("--evals", type=int, default=300, help="exact plans the search may compute (default 300)")
    p.add_argument("--seed", type=int, default=0, help="search seed")
    g = p.add_argument_group("contribution analysis (when --contrib is not given)")
    g.add_argument("--steps", type=int, default=400, help="training steps per measurement (default 400)")
    g.add_argument("--lr", type=float, default=0.005, help="learning rate (default 0.005)")
    g.add_argument("--test-images", type=int, default=300, help="test images per measurement (0: all)")
    g.add_argument("--last-blocks", type=int, default=8, help="candidate layers: the last N blocks")
    g.add_argument(
        "--kinds",
        help="candidate conv kinds: pointwise,depthwise,regular (default: pointwise for a zoo image model, "
        "all three for another model)",
    )
    g.add_argument("--seeds", type=int, default=1, help="seeds per measurement (default 1)")
    g.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    from tinytrain.executor import add_executor_flag

    add_executor_flag(g)
    g.add_argument(
        "--analysis-resolution", type=int, help="resolution of the analysis (shortcut; default: --resolution)"
    )
    add_dataset_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinytrain.cli import validate as v
    from tinytrain.job.prepare import load_job_data, with_head
    from tinytrain.schedule import board_sram_bytes
    from tinytrain.sparse.contrib import AnalysisSettings, Contributions, analyze
    from tinytrain.sparse.cost import CostModel
    from tinytrain.sparse.search import search

    v.positive_finite("--budget", args.budget)
    v.resolution("--resolution", args.resolution)
    v.resolution("--analysis-resolution", args.analysis_resolution)
    v.int_at_least("--evals", args.evals, 1)
    v.int_at_least("--steps", args.steps, 1)
    v.positive_finite("--lr", args.lr)
    v.int_at_least("--test-images", args.test_images, 0)
    v.int_at_least("--last-blocks", args.last_blocks, 1)
    v.int_at_least("--seeds", args.seeds, 1)
    v.int_at_least("--workers", args.workers, 1)
    v.writable_dir("--out (its directory)", Path(args.out).parent)
    v.writable_file("--out", args.out)
    from tinytrain.executor import make_executor, parse_executor
    from tinytrain.progress import live_default

    parse_executor(args.executor)  # a malformed --executor is refused before anything runs
    from tinytrain.job.resolution import job_resolution, model_input_of
    from tinytrain.sparse.contrib import data_options_of

    own_input = model_input_of(args.model) is not None
    resolution = job_resolution(args.model, args.resolution if own_input else (args.resolution or 128))
    analysis_resolution = (
        job_resolution(args.model, args.analysis_resolution, "--analysis-resolution")
        if args.analysis_resolution
        else None
    )
    kinds = args.kinds or ("pointwise,depthwise,regular" if own_input else "pointwise")
    # the data first: a bad dataset is refused (one line, exit 2) before any analysis or cache directory;
    # any dataset emulate takes (image folder, .npz, CSV / .ts series), as the model's input
    data = load_job_data(args.model, args.dataset, resolution, None, 0, dataset_options(args))
    ds = data.dataset
    graph = with_head(data.base, data.classes, fresh_head=True)
    cost = CostModel(graph, args.board)
    budget = int(round(args.budget * 1024))
    sram = board_sram_bytes(args.board)
    minimum = cost.minimum()
    if budget > sram:
        print(
            f"note: budget {args.budget:g} KB is above board {args.board}'s SRAM ({sram / 1024:g} KB); "
            f"searching under {sram / 1024:g} KB"
        )
        budget = sram
    if budget >= minimum:
        if args.contrib:
            contrib = Contributions.load(args.contrib)
        else:
            settings = AnalysisSettings(
                model=args.model,
                dataset=args.dataset,
                resolution=analysis_resolution or resolution,
                lr=args.lr,
                steps=args.steps,
                test_images=args.test_images,
                seeds=tuple(range(args.seeds)),
                last_blocks=args.last_blocks,
                kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
                data_options=data_options_of(dataset_options(args)),
            )
            executor = None if args.executor == "local" else make_executor(args.executor, args.workers)
            contrib = analyze(settings, workers=args.workers, executor=executor, live=live_default())
    else:
        contrib = None  # search() refuses with the minimum
    result = search(contrib, cost, budget, args.method, args.evals, args.seed)  # type: ignore[arg-type]
    doc = {
        "name": Path(args.out).stem,
        "bias_last_n": result.spec["bias_last_n"],
        "weights": result.spec["weights"],
        "about": {
            "found_by": f"tinytrain search --method {args.method}",
            "model": args.model,
            "dataset": args.dataset,
            "dataset_identity": data.identity,
            "classes": ds.classes,
            "resolution": resolution,
            "board": args.board,
            "budget_bytes": budget,
            "predicted_total_bytes": result.total,
            "minimum_bytes": minimum,
            "summed_gain": result.gain,
            "evaluations": result.evaluations,
            "contributions": contrib.settings if contrib else None,
        },
    }
    out = Path(args.out)
    write_text(out, json.dumps(doc, indent=1) + "\n")  # atomic; creates the directory
    ws = ", ".join(f"{w['layer']} x{w['input_channel_ratio']:g}" for w in result.spec["weights"]) or "none"
    at = f"{resolution}x{resolution}" if resolution else "its own input"
    print(
        f"{args.model} @ {at}, {ds.classes} classes, board {args.board}: budget "
        f"{budget / 1024:.1f} KB (minimum {minimum / 1024:.1f} KB)"
    )
    print(
        f"found ({args.method}, {result.evaluations} exact plans): biases of the last "
        f"{result.spec['bias_last_n']} convs, weights {ws}"
    )
    print(
        f"predicted total {result.total:,} B = {result.total / 1024:.1f} KB, summed gain "
        f"{result.gain * 100:+.1f} points"
    )
    res = f" --resolution {resolution}" if resolution else ""
    print(
        f"wrote {out}  (tinytrain compile --model {args.model} --classes {ds.classes}{res} --board "
        f"{args.board} --scheme {out})"
    )
    return 0
