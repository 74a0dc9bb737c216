"""Random kills: interrupt a writer at a random moment with SIGINT, SIGTERM or SIGKILL, then check that no
output file is truncated or half-written and that no child process survived. Used by test_kills.py (a
modest number in the default run) and by the slow campaign (>= 100 kills, numbers in docs/reliability.md)."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinytrain.atomic import leftover_temporaries

from .helpers import SHORT_JOB, alive, comm, descendants, env, start, survivors

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


@dataclass
class Tally:
    kills: int = 0
    by_signal: dict[str, int] = field(default_factory=dict)
    files_checked: int = 0
    truncated: list[str] = field(default_factory=list)
    survivors: list[str] = field(default_factory=list)
    leftover_temporaries: int = 0
    finished_before_kill: int = 0
    compilers_finishing: int = 0  # a compiler pass running at a SIGKILL, alive > 5 s (exits by itself)
    calibration_s: float = 0.0  # one uninterrupted run: kills are spread over [0.3 s, 1.05 x this]

    def add(self, sig: signal.Signals) -> None:
        self.kills += 1
        self.by_signal[sig.name] = self.by_signal.get(sig.name, 0) + 1

    def merge(self, other: Tally) -> None:
        self.kills += other.kills
        for k, v in other.by_signal.items():
            self.by_signal[k] = self.by_signal.get(k, 0) + v
        self.files_checked += other.files_checked
        self.truncated += other.truncated
        self.survivors += other.survivors
        self.leftover_temporaries += other.leftover_temporaries
        self.finished_before_kill += other.finished_before_kill
        self.compilers_finishing += other.compilers_finishing


# ---- the atomic writer alone (fast: many kills per second) -------------------------------------------------

WRITER = textwrap.dedent(
    """
    import hashlib, sys
    from pathlib import Path
    from tinytrain.atomic import write_text
    from tinytrain.bench.runner import write_csv
    out = Path(sys.argv[1])
    i = 0
    while True:
        i += 1
        body = f"version {i}\\n" + ("x" * 97 + "\\n") * (2000 + i % 500)
        write_text(out / "record.json", body + "END " + hashlib.sha256(body.encode()).hexdigest() + "\\n")
        write_csv([{"kind": "device", "model": f"m{i}", "sram_total": i}] * 300, out / "bench.csv")
    """
)


def check_writer_outputs(out: Path, tally: Tally) -> None:
    rec = out / "record.json"
    if rec.exists():
        text = rec.read_text()
        body, _, tail = text.rpartition("END ")
        tally.files_checked += 1
        if tail.strip() != hashlib.sha256(body.encode()).hexdigest():
            tally.truncated.append(f"{rec}: {len(text)} bytes, hash mismatch")
    csv_file = out / "bench.csv"
    if csv_file.exists():
        from tinytrain.bench.runner import read_csv

        rows = read_csv(csv_file)
        tally.files_checked += 1
        if len(rows) != 300 or len({r["model"] for r in rows}) != 1:
            tally.truncated.append(f"{csv_file}: {len(rows)} rows")


def kill_atomic_writer(tmp: Path, kills: int, rng: random.Random) -> Tally:
    tally = Tally()
    out = tmp / "atomic"
    out.mkdir(parents=True, exist_ok=True)
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(out)], env=env(), stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.15, 0.6))  # past the imports, inside the write loop
        sig = rng.choice(SIGNALS)
        proc.send_signal(sig)
        proc.wait(timeout=30)
        tally.add(sig)
        check_writer_outputs(out, tally)
    tally.leftover_temporaries += len(leftover_temporaries(out))
    return tally


# ---- tinytrain emulate and tinytrain bench ----------------------------------------------------------------


def _watch(proc: subprocess.Popen[str], seconds: float) -> set[int]:
    """Every descendant seen while waiting `seconds` (or until `proc` ends)."""
    seen: set[int] = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds and proc.poll() is None:
        seen.update(c for c in descendants(proc.pid) if comm(c) not in ("", "sh"))
        time.sleep(0.05)
    return seen


COMPILERS = ("cc1", "cc1plus", "as", "ld", "collect2", "lto-wrapper", "gcc")


def check_children(seen: set[int], sig: signal.Signals, tally: Tally) -> None:
    """QEMU, workers and anything long-running must be gone within 5 s; a compiler pass already running when
    tinytrain was SIGKILLed (its driver got the parent-death signal) may finish its file: within 60 s."""
    compilers = {p for p in seen if comm(p) in COMPILERS or comm(p).startswith("arm-none-eabi")}
    left = survivors(sorted(seen - compilers))
    late = survivors(sorted(compilers))
    tally.compilers_finishing += len(late)
    late = survivors(late, grace=60.0)
    tally.survivors += [f"{p} ({comm(p)}) after {sig.name}" for p in left + late]


def check_report_dir(d: Path, tally: Tally) -> None:
    for f in sorted(d.glob("*")) if d.exists() else []:
        if f.name.startswith(".") or f.is_dir():
            continue
        tally.files_checked += 1
        data = f.read_bytes()
        ok = True
        if f.suffix == ".json":
            try:
                json.loads(data)
            except ValueError:
                ok = False
        elif f.suffix == ".html":
            ok = data.rstrip().endswith(b"</html>")
        elif f.suffix == ".png":
            ok = data.startswith(b"\x89PNG") and data[-12:-4] == b"\x00\x00\x00\x00IEND"
        elif f.suffix == ".npz":
            try:
                with np.load(f, allow_pickle=False) as z:
                    for k in z.files:
                        z[k]
            except Exception:
                ok = False
        elif f.suffix == ".csv":
            from tinytrain.bench.runner import read_csv

            try:
                rows = read_csv(f)
                ok = bool(rows) and all(r.get("status") for r in rows) and data.endswith(b"\n")
            except Exception:
                ok = False
        if not ok:
            tally.truncated.append(f"{f}: {len(data)} bytes, incomplete")
    tally.leftover_temporaries += len(leftover_temporaries(d)) if d.exists() else 0


def _calibrate(argv: list[str], tally: Tally, check: Callable[[], None]) -> float:
    """Seconds one uninterrupted run takes (its outputs checked too): kills are spread over all of it,
    the final writes included."""
    t0 = time.monotonic()
    proc = start(argv)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-2000:]
    check()
    tally.calibration_s = round(time.monotonic() - t0, 1)
    return time.monotonic() - t0


def kill_emulate(tmp: Path, kills: int, rng: random.Random, max_delay: float | None = None) -> Tally:
    tally = Tally()
    tmp.mkdir(parents=True, exist_ok=True)
    report, dump = tmp / "report", tmp / "params.npz"
    argv = [*SHORT_JOB, "--steps", "30", "--report", str(report), "--dump-params", str(dump)]
    if max_delay is None:
        max_delay = 1.05 * _calibrate(argv, tally, lambda: check_report_dir(report, tally))
    attempts = 0
    while tally.kills < kills and attempts < 3 * kills:  # a run that finished first is not a kill: go on
        attempts += 1
        proc = start(argv)
        seen = _watch(proc, rng.uniform(0.3, max_delay))
        sig = rng.choice(SIGNALS)
        if proc.poll() is None:
            proc.send_signal(sig)
            tally.add(sig)
        else:
            tally.finished_before_kill += 1
        proc.communicate(timeout=120)
        check_children(seen, sig, tally)
        check_report_dir(report, tally)
        if dump.exists():
            check_report_dir(tmp, tally)  # the .npz beside the report folder
    return tally


BENCH_TOML = """[bench]
dataset = "digits"
classes = 10
steps = 2
timeout = 300
check_reference = false

[[matrix]]
models = ["mcunet-5fps"]
schemes = ["last"]
boards = ["m7", "m4"]
resolutions = [32]

[paper]
include = false
"""


def kill_bench(tmp: Path, kills: int, rng: random.Random, max_delay: float | None = None) -> Tally:
    tally = Tally()
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "tiny.toml"
    cfg.write_text(BENCH_TOML)
    out, work = tmp / "bench-out", tmp / "bench-work"
    argv = ["bench", "--config", str(cfg), "--out", str(out), "--work", str(work), "-j", "1", "--fresh"]
    if max_delay is None:
        max_delay = 1.05 * _calibrate(argv, tally, lambda: check_report_dir(out, tally))
    attempts = 0
    while tally.kills < kills and attempts < 3 * kills:  # a run that finished first is not a kill: go on
        attempts += 1
        proc = start(argv)
        seen = _watch(proc, rng.uniform(0.5, max_delay))
        sig = rng.choice(SIGNALS)
        if proc.poll() is None:
            proc.send_signal(sig)
            tally.add(sig)
        else:
            tally.finished_before_kill += 1
        proc.communicate(timeout=300)
        check_children(seen, sig, tally)
        check_report_dir(out, tally)
        check_report_dir(out / "rows", tally)
    return tally


__all__ = ["Tally", "alive", "kill_atomic_writer", "kill_bench", "kill_emulate"]
