"""`tinytrain bench`: run a benchmark matrix (models x schemes x boards x resolutions, from a TOML file) in
parallel, one CSV row per run, with the PyTorch and published anchors, plots, an HTML report and a Markdown
summary; or check a baseline for regressions.

  tinytrain bench --config bench/matrix.toml                   # the whole matrix -> results/bench/
  tinytrain bench --config bench/matrix.toml --update-baseline # ... and write results/baseline.csv
  tinytrain bench --check results/baseline.csv                 # re-run the baseline's rows, compare
  tinytrain bench --check results/baseline.csv --config bench/ci.toml   # only the CI subset

Finished rows are cached in <out>/rows/ (keyed by the row and a fingerprint of the code), so an
interrupted run resumes; --fresh re-runs everything (whatever the executor: rows cached by a local run
are reused by a Ray run and back). --executor ray runs the rows on a local Ray runtime, --executor
ray://HOST:PORT on a Ray cluster (docs/scaling.md). A live progress display goes to stderr when it is a
terminal (not with --quiet). Exit status: 0 ok; 1 when a row failed (a fault, a
timeout, a reference mismatch; "does not fit" is a result, not a failure) or the check found a
regression; 2 for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from tinytrain import REPO_ROOT, TinytrainError

DEFAULT_OUT = REPO_ROOT / "results" / "bench"
DEFAULT_BASELINE = REPO_ROOT / "results" / "baseline.csv"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark matrix -> CSV, plots, HTML report; baseline regression gate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="matrix config (TOML), e.g. bench/matrix.toml")
    p.add_argument(
        "--jobs", "-j", type=int, help="rows run in parallel (default: [bench] jobs, else the cores)"
    )
    p.add_argument("--out", type=Path, default=None, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--check", type=Path, metavar="BASELINE", help="re-run the baseline's rows and compare")
    p.add_argument(
        "--update-baseline",
        nargs="?",
        const=DEFAULT_BASELINE,
        type=Path,
        metavar="FILE",
        help="merge this run's device rows into the baseline "
        f"(default {DEFAULT_BASELINE.relative_to(REPO_ROOT)})",
    )
    p.add_argument(
        "--work",
        type=Path,
        help="build directories and logs (default build/bench; build/bench-check for --check)",
    )
    p.add_argument("--fresh", action="store_true", help="ignore cached rows, re-run everything")
    p.add_argument("--no-report", action="store_true", help="CSV only: no plots, HTML or summary")
    p.add_argument("--no-reference", action="store_true", help="skip the host-reference comparison per row")
    p.add_argument("--instr-tolerance", type=float, default=0.01, help="check: instruction tolerance (0.01)")
    p.add_argument("--quiet", "-q", action="store_true", help="only the final lines")
    from tinytrain.executor import add_executor_flag

    add_executor_flag(p)
    p.set_defaults(func=run)


def _jobs(args: argparse.Namespace) -> int:
    if args.jobs:
        return args.jobs
    if args.config:
        from tinytrain.bench.config import config_jobs

        j = config_jobs(args.config)
        if j:
            return j
    return os.cpu_count() or 1


def _executor(args: argparse.Namespace) -> Any:
    """None for the local executor (the runner makes it, `--jobs` wide), else the Ray one."""
    if args.executor == "local":
        return None
    from tinytrain.bench.runner import code_fingerprint
    from tinytrain.executor import make_executor

    return make_executor(args.executor, _jobs(args), fingerprint=code_fingerprint())


def run(args: argparse.Namespace) -> int:
    # SIGTERM/SIGHUP raise children.Terminated (a KeyboardInterrupt, tinytrain.cli.main): the runner stops
    # its workers; finished rows stay cached
    if args.config is None and args.check is None:
        raise TinytrainError("give --config FILE (a matrix) and/or --check BASELINE")
    from tinytrain.cli import validate as v

    v.int_at_least("--jobs", args.jobs, 1)
    v.nonnegative_finite("--instr-tolerance", args.instr_tolerance)
    v.readable_file("--config", args.config)
    v.writable_dir("--out", args.out or DEFAULT_OUT)
    v.writable_dir("--work", args.work)
    v.writable_file("--update-baseline", args.update_baseline)
    from tinytrain.executor import parse_executor

    parse_executor(args.executor)  # a malformed --executor is refused before anything runs
    executor = _executor(args)
    if executor is None:
        return _run(args, None)
    with executor:  # Ray started (or the cluster reached) before any output; stopped at the end
        return _run(args, executor)


def _run(args: argparse.Namespace, executor: Any) -> int:
    from dataclasses import replace

    from tinytrain.bench.config import BenchConfig, load_config
    from tinytrain.bench.runner import Runner, spec_of_row, write_csv

    say = (lambda m: None) if args.quiet else (lambda m: print(m, flush=True))
    from tinytrain.progress import live_default

    live = live_default(args.quiet)
    out = args.out or DEFAULT_OUT
    t0 = time.perf_counter()
    command = "tinytrain bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:])

    if args.check is not None:
        from tinytrain.bench.gate import load_baseline

        baseline = load_baseline(args.check)  # refused before anything runs
        base_devices = [r for r in baseline if r.get("kind") == "device"]
        if args.config is not None:
            cfg = load_config(args.config)
            cfg = BenchConfig(cfg.rows, [], False, cfg.source)
        else:
            cfg = BenchConfig([spec_of_row(r) for r in base_devices], [], False, str(args.check))
        if args.no_reference:
            cfg.rows = [replace(s, check_reference=False) for s in cfg.rows]
        work = args.work or REPO_ROOT / "build" / "bench-check"
        runner = Runner(
            out,
            jobs=_jobs(args),
            progress=say,
            use_cache=False,
            work_dir=work,
            executor=executor,
            live=live,
        )
        results = runner.run(cfg)
        rows = [x["row"] for x in results]
        write_csv(rows, out / "check.csv")
        from tinytrain.bench.gate import compare

        res = compare(baseline, rows, instr_tolerance=args.instr_tolerance)
        print(res.report())
        print(f"check took {time.perf_counter() - t0:.0f} s; re-run rows in {out / 'check.csv'}")
        return 0 if res.ok else 1

    old_baseline: list[dict[str, Any]] = []
    if args.update_baseline is not None and args.update_baseline.exists():
        from tinytrain.bench.gate import load_baseline

        old_baseline = load_baseline(args.update_baseline)  # never merge into a damaged baseline
    cfg = load_config(args.config)
    if args.no_reference:
        cfg.rows = [replace(s, check_reference=False) for s in cfg.rows]
    runner = Runner(
        out,
        jobs=_jobs(args),
        fresh=args.fresh,
        progress=say,
        work_dir=args.work,
        executor=executor,
        live=live,
    )
    results = runner.run(cfg)
    rows = [x["row"] for x in results]
    write_csv(rows, out / "bench.csv")
    say(f"wrote {out / 'bench.csv'} ({len(rows)} rows)")
    if not args.no_report:
        from tinytrain.bench.report import write_report

        made = write_report(results, out, {"command": command, "fingerprint": runner.fingerprint})
        say(f"wrote {made['html']} and {made['summary']}")
    if args.update_baseline is not None:
        from tinytrain.bench.runner import merge_baseline

        write_csv(merge_baseline(old_baseline, rows), args.update_baseline)  # atomic: temporary + rename
        say(f"updated the baseline {args.update_baseline} (rows of this run replace the same rows)")
    failed = [r for r in rows if r.get("status") not in ("ok", "does-not-fit", "reference")]
    _final(rows, failed, time.perf_counter() - t0)
    return 1 if failed else 0


def _final(rows: list[dict[str, Any]], failed: list[dict[str, Any]], seconds: float) -> None:
    n = sum(1 for r in rows if r.get("kind") == "device")
    ok = sum(1 for r in rows if r.get("kind") == "device" and r.get("status") == "ok")
    dnf = sum(1 for r in rows if r.get("status") == "does-not-fit")
    print(
        f"tinytrain bench: {n} device rows: {ok} ok, {dnf} do not fit, {len(failed)} failed; {seconds:.0f} s"
    )
    for r in failed:
        err = str(r.get("error") or "").splitlines()
        print(
            f"  FAILED {r['model']} {r['scheme']} {r.get('board')} {r.get('resolution')}: {r['status']}: "
            f"{err[0][:200] if err else ''}"
        )
