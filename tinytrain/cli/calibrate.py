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


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'board':<6} {'build':<9} {'instr/iter':>10} {'est cycles/iter':>15} {'est CoreMark/MHz':>16} "
        f"{'model range':>11} {'+CoreMark band':>14} {'published':>9} {'error':>7} {'±10 %':>5}"
    )
    lines = [head]
    for r in rows:
        model = f"{r['est_coremark_per_mhz_model_low']:.2f}..{r['est_coremark_per_mhz_model_high']:.2f}"
        band = f"{r['est_coremark_per_mhz_low']:.2f}..{r['est_coremark_per_mhz_high']:.2f}"
        ok = "yes" if r["within_10pct"] else "no"
        lines.append(
            f"{r['board']:<6} {r['build']:<9} {r['instructions_per_iteration']:>10.0f} "
            f"{r['est_cycles_per_iteration']:>15.0f} {r['est_coremark_per_mhz']:>16.2f} "
            f"{model:>11} {band:>14} "
            f"{r['published_coremark_per_mhz']:>9.2f} {r['error_pct']:>+6.1f}% {ok:>5}"
        )
    lines.append(
        "estimate: exact QEMU instruction counts x the cycle model (emulation.cycles). model range: its "
        "documented best/worst case; +CoreMark band: widened by the CoreMark error stored in the model (the "
        "range every estimate carries), measured on the reporting build (GCC with the flags published GCC "
        "CoreMark results use); firmware = the training firmware's -O2. Published figures come from other "
        "compilers (docs/emulation.md)"
    )
    return "\n".join(lines)


def _holdout_table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'hold-out':<12} {'board':<6} {'instr/rep':>9} {'est cycles/rep':>14} {'model range':>15} "
        f"{'+CoreMark band':>15} {'published (per scale factor)':>28} {'error':>13}"
    )
    lines = [head]
    for r in rows:
        model = f"{r['est_cycles_model_low']:.0f}..{r['est_cycles_model_high']:.0f}"
        band = f"{r['est_cycles_low']:.0f}..{r['est_cycles_high']:.0f}"
        pubs = r["published_cycles_per_rep"]
        pub = " / ".join(f"{p:.0f} ({f})" for p, f in zip(pubs, r["scale_factors"], strict=True)) or "-"
        err = " / ".join(f"{e:+.1f}%" for e in r["error_pct"]) or "-"
        lines.append(
            f"{r['workload']:<12} {r['board']:<6} {r['instructions_per_rep']:>9.0f} "
            f"{r['est_cycles_per_rep']:>14.0f} {model:>15} {band:>15} {pub:>28} {err:>13}"
        )
    lines.append(
        "hold-out: the computations of Embench IoT's crc32 and matmult-int (our code); published: its "
        "reference platform, a Cortex-M4 at 16 MHz, GCC 9.2 -O2, one figure per scale factor found in "
        "Embench's versions (no Cortex-M7 figure). Not used to choose any constant"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from emulation import holdout
    from emulation.coremark import calibrate

    boards = tuple(args.board or ("m4", "m7"))
    if args.holdout:
        ho = holdout.check(boards)
        print(json.dumps(ho, indent=2) if args.json else _holdout_table(ho))
        return 0
    builds = tuple(dict.fromkeys(args.build or ("firmware", "reporting")))
    rows = calibrate(boards, args.iterations[0], args.iterations[1], tuple(shlex.split(args.cflags)), builds)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_table(rows))
        print()
        print(_holdout_table(holdout.check(boards)))
    return 0
