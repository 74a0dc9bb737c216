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
    p.add_argument("--cflags", default="", help='extra compiler flags after the board\'s (e.g. "-O3")')
    p.add_argument("--json", action="store_true", help="print the table as a JSON list")
    p.set_defaults(func=run)


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'board':<6} {'instr/iter':>11} {'est cycles/iter (low..high)':>30} "
        f"{'est CoreMark/MHz (low..high)':>29} {'published':>9} {'error':>7}"
    )
    lines = [head]
    for r in rows:
        cyc = f"{r['est_cycles_per_iteration']:.0f} ({r['est_cycles_low']:.0f}..{r['est_cycles_high']:.0f})"
        cm = (
            f"{r['est_coremark_per_mhz']:.2f} ({r['est_coremark_per_mhz_low']:.2f}.."
            f"{r['est_coremark_per_mhz_high']:.2f})"
        )
        lines.append(
            f"{r['board']:<6} {r['instructions_per_iteration']:>11.0f} {cyc:>30} {cm:>29} "
            f"{r['published_coremark_per_mhz']:>9.2f} {r['error_pct']:>+6.1f}%"
        )
    lines.append(
        "estimate: exact QEMU instruction counts x the cycle model (emulation.cycles); "
        "published figures come from other compilers (see docs/emulation.md)"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from emulation.coremark import calibrate

    boards = tuple(args.board or ("m4", "m7"))
    rows = calibrate(boards, args.iterations[0], args.iterations[1], tuple(shlex.split(args.cflags)))
    print(json.dumps(rows, indent=2) if args.json else _table(rows))
    return 0
