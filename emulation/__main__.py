"""`python -m emulation [BOARD ...] [--no-profile] [--mode MODE]`: build and run the self-test firmware,
print one summary line per board, its phases (exact counts) and the top functions overall and per phase."""

from __future__ import annotations

import argparse
import sys

from tinytrain import TinytrainError

from . import selftest
from .boards import board_names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulation", description=__doc__.splitlines()[0])
    p.add_argument("boards", nargs="*", help=f"boards (default: all of {', '.join(board_names())})")
    p.add_argument("--mode", default="normal", choices=list(selftest.MODES))
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="load the ttprof plugin (default: when it can be built)",
    )
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    worst = 0
    try:
        for b in args.boards or board_names():
            rec = selftest.run(b, args.mode, timeout=args.timeout, profile=args.profile)
            print(rec.summary())
            for ph in rec.phases:
                src = "exact" if ph.get("source") == "plugin" else "SysTick"
                print(f"  phase {ph['name']:<16} {ph['instr']:>10} instructions ({src})")
            if rec.profile:
                est = rec.profile["cycle_estimate"]
                print(f"  {est['cycles']:.0f} cycles ({est['label']})")
                for name, c in list(rec.profile["symbols"].items())[:8]:
                    print(f"  {name:<28} {c['total']:>10} instr  ~{c['cycles_estimate']:>10.0f} cycles")
                for phase, ph in rec.profile.get("phases", {}).items():
                    top = ", ".join(f"{k} {v['total']}" for k, v in list(ph["symbols"].items())[:4])
                    print(f"  in {phase}: {top}")
            print(f"  record: {rec.run_dir}/record.json")
            worst = max(worst, 0 if rec.ok else 1)
    except TinytrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return worst


if __name__ == "__main__":
    sys.exit(main())
