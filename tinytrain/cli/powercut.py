"""`tinytrain powercut`: cut the power N times during saves of the learned state (QEMU stopped at a
deterministic instruction count), reboot, and check that every boot loads the previous or the new state
bit for bit; flip bits in a slot and check it is rejected; check that another model's or format's state is
refused. docs/export.md, "Power cuts".

The last line reads `N cuts: X lost, Y corrupt loads`. Exit status: 0 when nothing was lost or corrupt and
every flipped slot and foreign state was refused; 1 otherwise; 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys

from tinytrain.cli.export import add_model_options, config_from_args
from tinytrain.export.config import BOARD_CPUS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "powercut",
        help="power-cut fault injection on the saved learned state (QEMU)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(p)
    p.add_argument("--board", choices=sorted(BOARD_CPUS), default="m4", help="emulated board (default m4)")
    p.add_argument("--cuts", type=int, default=50, help="power cuts during saves (default 50)")
    p.add_argument("--flips", type=int, default=8, help="slots with a flipped bit to reject (default 8)")
    p.add_argument("--build-dir", metavar="DIR", help="where to build and run (default build/powercut/<job>)")
    p.set_defaults(func=run, steps=3)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tinytrain.export.powercut import powercut

    cfg = config_from_args(args, BOARD_CPUS[args.board])

    def say(msg: str) -> None:
        print(msg, flush=True)

    camp = powercut(
        cfg, args.board, args.cuts, args.flips, say, Path(args.build_dir) if args.build_dir else None
    )
    outcomes = ", ".join(f"{v} {k}" for k, v in sorted(camp.outcomes.items()))
    say(
        f"cut boots: {outcomes} (previous: the save was lost, the last good state kept; "
        "new: the save had completed)"
    )
    say(f"bit flips: {camp.flips_rejected}/{camp.flips} slots rejected, the other slot loaded bit-exactly")
    for kind, ok in camp.refusals.items():
        say(f"foreign state ({kind}): {'refused, built-in weights kept' if ok else 'NOT REFUSED'}")
    for p in camp.problems[:20]:
        print(f"problem: {p}", file=sys.stderr)
    per = camp.boot_seconds / max(1, camp.runs) * 1000
    say(
        f"{camp.runs} QEMU boots in {camp.boot_seconds:.1f} s ({per:.0f} ms each); "
        f"{camp.seconds:.1f} s with the build"
    )
    print(f"{camp.cuts} cuts: {camp.lost} lost, {camp.corrupt} corrupt loads", flush=True)
    return 0 if camp.ok else 1
