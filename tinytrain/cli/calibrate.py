"""`tinytrain calibrate`: CoreMark on the emulated boards against the published CoreMark/MHz, the check of the
cycle model (docs/emulation.md, "Calibration")."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "calibrate",
        help="check the cycle model: CoreMark in QEMU vs published CoreMark/MHz",
        description=__doc__,
    )
    p.add_argument("--board", action="append", help="board (repeatable; default: m4 and m7)")
    p.add_argument(
        "--iterations",
        nargs=2,
        type=int,
        default=[10, 30],
        metavar=("LOW", "HIGH"),
        help="the two iteration counts whose difference gives the per-iteration counts (default 10 30)",
    )
    p.add_argument(
        "--build",
        action="append",
        choices=("firmware", "reporting"),
        help="which CoreMark build (repeatable; default both): firmware = the board's flags (GCC -O2, as "
        "the training firmware), reporting = + the flags published GCC CoreMark results use (the model's "
        "error band)",
    )
    p.add_argument(
        "--cflags",
        default="",
        help="extra compiler flags after the build's; write --cflags=-O3 (with '=' when the value starts "
        "with '-')",
    )
    p.add_argument("--json", action="store_true", help="print the table as a JSON list")
    p.add_argument(
        "--holdout",
        action="store_true",
        help="only the hold-out check (crc32 and matmult-int against Embench IoT's published Cortex-M4 "
        "cycles; the text output shows it after the CoreMark table anyway)",
    )
    p.set_defaults(func=run)


def _print_table(rows: list[dict[str, Any]]) -> None:
    from tinytrain.cli.table import print_table

    print_table(
        ["board", "build", ("instr/iter", "right"), ("est cycles/iter", "right"),
         ("est CoreMark/MHz", "right"), ("model range", "right"), ("+CoreMark band", "right"),
         ("published", "right"), ("error", "right"), ("±10 %", "right")],
        [
            (r["board"], r["build"], f"{r['instructions_per_iteration']:.0f}",
             f"{r['est_cycles_per_iteration']:.0f}", f"{r['est_coremark_per_mhz']:.2f}",
             f"{r['est_coremark_per_mhz_model_low']:.2f}..{r['est_coremark_per_mhz_model_high']:.2f}",
             f"{r['est_coremark_per_mhz_low']:.2f}..{r['est_coremark_per_mhz_high']:.2f}",
             f"{r['published_coremark_per_mhz']:.2f}", f"{r['error_pct']:+.1f}%",
             "yes" if r["within_10pct"] else "no")
            for r in rows
        ],
        title="EEMBC CoreMark in QEMU: estimated vs published CoreMark/MHz",
        caption="estimate: exact QEMU instruction counts x the cycle model (emulation.cycles). model range: "
        "its "
        "documented best/worst case; +CoreMark band: widened by the CoreMark error stored in the model (the "
        "range every estimate carries), measured on the reporting build (GCC with the flags published GCC "
        "CoreMark results use); firmware = the training firmware's -O2. Published figures come from other "
        "compilers (docs/emulation.md)",
    )  # fmt: skip


def _print_holdout_table(rows: list[dict[str, Any]]) -> None:
    from tinytrain.cli.table import print_table

    def pub(r: dict[str, Any]) -> str:
        pairs = zip(r["published_cycles_per_rep"], r["scale_factors"], strict=True)
        return " / ".join(f"{p:.0f} ({f})" for p, f in pairs) or "-"

    print_table(
        ["hold-out", "board", ("instr/rep", "right"), ("est cycles/rep", "right"), ("model range", "right"),
         ("+CoreMark band", "right"), ("published (per scale factor)", "right"), ("error", "right")],
        [
            (r["workload"], r["board"], f"{r['instructions_per_rep']:.0f}", f"{r['est_cycles_per_rep']:.0f}",
             f"{r['est_cycles_model_low']:.0f}..{r['est_cycles_model_high']:.0f}",
             f"{r['est_cycles_low']:.0f}..{r['est_cycles_high']:.0f}", pub(r),
             " / ".join(f"{e:+.1f}%" for e in r["error_pct"]) or "-")
            for r in rows
        ],
        title="hold-out workloads (not used to choose any constant)",
        caption="hold-out: the computations of Embench IoT's crc32 and matmult-int (our code); published: "
        "its "
        "reference platform, a Cortex-M4 at 16 MHz, GCC 9.2 -O2, one figure per scale factor found in "
        "Embench's versions (no Cortex-M7 figure)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from emulation import holdout
    from emulation.coremark import calibrate

    boards = tuple(args.board or ("m4", "m7"))
    if args.holdout:
        ho = holdout.check(boards)
        if args.json:
            print(json.dumps(ho, indent=2))
        else:
            _print_holdout_table(ho)
        return 0
    builds = tuple(dict.fromkeys(args.build or ("firmware", "reporting")))
    rows = calibrate(boards, args.iterations[0], args.iterations[1], tuple(shlex.split(args.cflags)), builds)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
        print()
        _print_holdout_table(holdout.check(boards))
    return 0
