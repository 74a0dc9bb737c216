"""Run a benchmark matrix: every row in its own process, through an executor (tinytrain.executor: `jobs`
at a time on this machine, or on Ray), each finished row cached by the driver.

Cache: `<out>/rows/<slug>.json` holds the row and its detail (per-kernel profile, MACs by kernel) plus the
*fingerprint* of the code that produced it (a hash of the compiler, firmware and emulation sources). A
later run reuses a cached row when the fingerprint still matches and the row is not a failure, so an
interrupted session resumes where it stopped; `fresh=True` re-runs everything. A row whose process
dies, hangs past its timeout or raises becomes a row with its error: nothing else is lost.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tinytrain import REPO_ROOT, children
from tinytrain.atomic import atomic_open, write_text
from tinytrain.bench.columns import FLOAT_COLUMNS, INT_COLUMNS, NAMES
from tinytrain.bench.config import BenchConfig, RowSpec, TorchSpec
from tinytrain.bench.paper import (
    HEADLINE_SCHEME,
    PAPER_BOARD,
    PAPER_RESOLUTION,
    PAPER_SOURCE,
    PUBLISHED,
    published_bytes,
    published_cycles,
)
from tinytrain.executor import EMULATION_TOOLS, Executor, Task
from tinytrain.executor.local import LocalExecutor
from tinytrain.progress import Tracker

Progress = Callable[[str], None]
#: Statuses that are final: a cached row with one of these is reused.
FINAL = {"ok", "does-not-fit"}
FINGERPRINT_GLOBS = (
    "tinytrain/**/*.py",
    "tinytrain/**/*.j2",
    "tinytrain/schemes/*.json",
    "firmware/**/*.c",
    "firmware/**/*.h",
    "firmware/**/*.ld",
    "firmware/**/*.json",
    "firmware/**/*.S",
    "emulation/**/*.py",
    "emulation/**/*.c",
)
#: The bench package's own reporting code does not change a row.
FINGERPRINT_SKIP = ("tinytrain/bench/report.py", "tinytrain/bench/gate.py", "tinytrain/cli/bench.py")


def code_fingerprint(root: Path = REPO_ROOT) -> str:
    h = hashlib.sha256()
    files: set[Path] = set()
    for pattern in FINGERPRINT_GLOBS:
        files.update(root.glob(pattern))
    for f in sorted(files):
        rel = f.relative_to(root).as_posix()
        if rel in FINGERPRINT_SKIP or "/tests/" in rel or f.is_dir():
            continue
        h.update(rel.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def paper_rows(models: Iterable[str]) -> list[dict[str, Any]]:
    """The published figures as labelled reference rows (not measurements)."""
    rows = []
    for m in models:
        if m not in PUBLISHED:
            continue
        kb, ms = PUBLISHED[m]
        rows.append(
            {
                "kind": "paper",
                "model": m,
                "scheme": f"published ({HEADLINE_SCHEME[m]})",
                "board": PAPER_BOARD,
                "resolution": PAPER_RESOLUTION,
                "status": "reference",
                "sram_total": published_bytes(m),
                "pred_arena": published_bytes(m),
                "est_cycles": published_cycles(m),
                "est_ms": ms,
                "clock_mhz": 216.0,
                "note": f"{PAPER_SOURCE}: {kb:g} KB peak memory (arena only), {ms:g} ms per image at 216 MHz",
            }
        )
    return rows


#: Worker processes alive now (each leads its own process group: QEMU and gcc go with it).
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def kill_workers() -> None:
    """Stop every running worker and its children (on an interrupt of the runner)."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        try:
            os.killpg(p.pid, 9)
        except ProcessLookupError:
            pass


def _run_subprocess(
    cmd: list[str], out_file: Path, log_file: Path, timeout: float
) -> tuple[dict[str, Any] | None, str]:
    """Run a worker; -> (its result JSON or None, error text)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
    with log_file.open("w") as log:
        # its own process group (QEMU and gcc go with it), killed if this process dies (tinytrain.children)
        proc = children.spawn(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        with _LIVE_LOCK:
            _LIVE.add(proc)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            children.kill_group(proc)
            return None, f"timeout: the row did not finish within its limit of {timeout:.0f} s (killed)"
        except BaseException:
            children.kill_group(proc)
            raise
        finally:
            children.reap(proc)
            with _LIVE_LOCK:
                _LIVE.discard(proc)
    if out_file.exists():
        try:
            doc = json.loads(out_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return None, f"worker exited with status {rc} and an unreadable result {out_file}: {exc}"
        if valid_result(doc):
            return doc, ""
        return None, f"worker exited with status {rc} and a malformed result {out_file}"
    tail = "\n".join(log_file.read_text(errors="replace").strip().splitlines()[-6:])
    return None, f"worker exited with status {rc} and no result; last lines:\n{tail}"


def _failed_row(spec: RowSpec | TorchSpec, error: str, kind: str) -> dict[str, Any]:
    base = {"kind": kind, "model": spec.model, "scheme": spec.scheme, "resolution": spec.resolution}
    if isinstance(spec, RowSpec):
        base.update(
            board=spec.board,
            dataset=spec.dataset,
            classes=spec.classes,
            steps=spec.steps,
            options=spec.options,
        )
    status = "timeout" if error.startswith("timeout") else "failed"
    return {"row": {**base, "status": status, "error": error}, "detail": {}}


class Runner:
    def __init__(
        self,
        out_dir: Path,
        jobs: int = 1,
        fresh: bool = False,
        progress: Progress | None = None,
        work_dir: Path | None = None,
        use_cache: bool = True,
        fingerprint: str | None = None,
        executor: Executor | None = None,
        live: bool = False,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.rows_dir = self.out_dir / "rows"
        self.work_dir = Path(work_dir) if work_dir else REPO_ROOT / "build" / "bench"
        self.jobs = max(1, jobs)
        self.fresh = fresh
        self.use_cache = use_cache
        self.progress = progress or (lambda m: None)
        self.fingerprint = fingerprint or code_fingerprint()
        self.executor = executor  # None: the local one, `jobs` rows at a time
        self.live = live  # a live progress display on stderr (tinytrain.progress)
        self._lock = threading.Lock()

    def _cache_file(self, slug: str) -> Path:
        return self.rows_dir / f"{slug}.json"

    def _cached(self, slug: str) -> dict[str, Any] | None:
        """The cached result of a row, or None: absent, from other code, not final, or unreadable (a corrupt
        or truncated cache file is reported and the row re-run)."""
        f = self._cache_file(slug)
        if self.fresh or not self.use_cache or not f.exists():
            return None
        try:
            doc = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.progress(f"cached row {f} is corrupt ({type(exc).__name__}: {exc}); re-running it")
            return None
        if not valid_result(doc):
            self.progress(f"cached row {f} is malformed (no row with a status); re-running it")
            return None
        if doc.get("fingerprint") != self.fingerprint or doc["row"].get("status") not in FINAL:
            return None
        return doc

    def _store(self, slug: str, result: dict[str, Any]) -> None:
        if not self.use_cache:
            return
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        doc = {**result, "fingerprint": self.fingerprint, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_text(self._cache_file(slug), json.dumps(doc, indent=1, default=str))

    def run_row(self, spec: RowSpec) -> dict[str, Any]:
        """One device row here (cached or run in its own process), outside any executor."""
        slug = spec.slug()
        cached = self._cached(slug)
        if cached is not None:
            cached["cached"] = True
            return cached
        result = device_row(spec.to_dict(), str(self.work_dir))
        self._store(slug, result)
        return result

    def run_torch(self, spec: TorchSpec) -> dict[str, Any]:
        slug = spec.key().replace("|", "-").replace(":", "-")
        cached = self._cached(slug)
        if cached is not None:
            cached["cached"] = True
            return cached
        tmp = self.work_dir / "specs"
        tmp.mkdir(parents=True, exist_ok=True)
        spec_file, out_file = tmp / f"{slug}.json", tmp / f"{slug}.out.json"
        spec_file.write_text(json.dumps(spec.__dict__))
        cmd = [sys.executable, "-m", "tinytrain.bench.torch_anchor", str(spec_file), str(out_file)]
        result, err = _run_subprocess(cmd, out_file, self.work_dir / "logs" / f"{slug}.log", 1800)
        if result is None:
            result = _failed_row(spec, err, "pytorch")
        self._store(slug, result)
        return result

    def run(self, config: BenchConfig) -> list[dict[str, Any]]:
        """All rows of the config: the published reference rows, the PyTorch anchors (one at a time, so
        their step times are not disturbed by our own jobs), then the device rows `jobs` at a time."""
        results: list[dict[str, Any]] = []
        if config.paper:
            results += [
                {"row": r, "detail": {}} for r in paper_rows(dict.fromkeys(s.model for s in config.rows))
            ]
        for i, ts in enumerate(config.torch):
            r = self.run_torch(ts)
            row = r["row"]
            self.progress(
                f"[pytorch {i + 1}/{len(config.torch)}] {ts.model} {ts.scheme}: {row.get('status')}"
                + (
                    f", peak RSS {row['host_rss_peak'] / 2**20:.0f} MB, step {row['host_step_ms']:.0f} ms"
                    if row.get("status") == "ok"
                    else f" {row.get('error', '')[:200]}"
                )
                + (" (cached)" if r.get("cached") else "")
            )
            results.append(r)
        n = len(config.rows)
        device: list[dict[str, Any] | None] = [None] * n
        t0 = time.perf_counter()
        ex = self.executor
        width = f"{self.jobs} at a time" if ex is None else f"executor {ex.name}"
        self.progress(f"{n} device rows, {width} (fingerprint {self.fingerprint})")
        tasks: dict[str, tuple[int, RowSpec]] = {}
        with Tracker("bench rows", n, self.live, self.progress) as track:

            def finished(i: int, result: dict[str, Any]) -> None:
                device[i] = result
                ok = result["row"].get("status") in FINAL
                track.done(
                    ok, f"[{track.finished + 1}/{n} {time.perf_counter() - t0:.0f}s] {describe(result)}"
                )

            for i, spec in enumerate(config.rows):
                cached = self._cached(spec.slug())
                if cached is not None:
                    finished(i, {**cached, "cached": True})
                else:
                    tasks[spec.slug()] = (i, spec)
            if tasks:
                executor = ex or LocalExecutor(self.jobs, "thread")
                try:
                    with executor:
                        if ex is not None:
                            self.progress(
                                f"{ex.name}: {ex.workers} workers, started in {ex.startup_seconds:.1f} s"
                            )
                        todo = [
                            Task(ROW_TASK, (spec.to_dict(), str(self.work_dir)), slug, EMULATION_TOOLS)
                            for slug, (_, spec) in tasks.items()
                        ]
                        for out in executor.map(todo):
                            i, spec = tasks[out.task.key]
                            if out.ok:
                                result = out.value
                            else:  # the worker's toolchain, or the task failed twice
                                result = _failed_row(spec, out.error, "device")
                            self._store(spec.slug(), result)
                            finished(i, result)
                except BaseException:  # interrupted: stop the workers; what finished is cached
                    kill_workers()
                    raise
        results += [d for d in device if d is not None]
        return results


#: The task of a device row (tinytrain.executor): spec dict + work directory -> result dict.
ROW_TASK = "tinytrain.bench.runner:device_row"


class RowCrashed(RuntimeError):
    """The row's process died without a result (retried once by the executor)."""


def device_row(spec: dict[str, Any], work_dir: str) -> dict[str, Any]:
    """One device row in its own process (`python -m tinytrain.bench.row`): -> {"row", "detail"}. A
    timeout is a failed row; a process that dies without a result raises RowCrashed."""
    rs = RowSpec(**spec)
    work = Path(work_dir)
    slug = rs.slug()
    tmp = work / "specs"
    tmp.mkdir(parents=True, exist_ok=True)
    spec_file, out_file = tmp / f"{slug}.json", tmp / f"{slug}.out.json"
    spec_file.write_text(json.dumps(rs.to_dict()))
    cmd = [sys.executable, "-m", "tinytrain.bench.row", str(spec_file), str(out_file), str(work)]
    result, err = _run_subprocess(cmd, out_file, work / "logs" / f"{slug}.log", rs.timeout + 900)
    if result is None:
        if err.startswith("timeout"):
            return _failed_row(rs, err, "device")
        raise RowCrashed(err)
    return result


def describe(result: dict[str, Any]) -> str:
    r = result["row"]
    res = r.get("resolution")
    opts = f" [{r['options']}]" if r.get("options") else ""
    head = f"{r['model']} {r['scheme']} {r.get('board')} {res}x{res}{opts}: {r['status']}"
    if r["status"] == "ok":
        head += (
            f", SRAM {r['sram_total'] / 1024:.1f} KB (pred {r['pred_total'] / 1024:.1f}), "
            f"{r['instr_total'] / 1e6:.1f} M instr/step, est {r.get('est_ms') or 0:.0f} ms"
        )
    elif r["status"] == "does-not-fit":
        head += f" ({r['pred_total'] / 1024:.1f} KB predicted)"
    else:
        head += f": {str(r.get('error', '')).splitlines()[0][:160] if r.get('error') else ''}"
    if result.get("cached"):
        head += " (cached)"
    if r.get("wall_s") is not None and not result.get("cached"):
        head += f" [{r['wall_s']:.0f}s]"
    return head


# ---- CSV ---------------------------------------------------------------------------------------------


def valid_result(doc: Any) -> bool:
    """A worker's result or a cached row: {"row": {..., "status": str, "model": str}, "detail": {...}}."""
    if not isinstance(doc, dict) or not isinstance(doc.get("row"), dict):
        return False
    row = doc["row"]
    return isinstance(row.get("status"), str) and isinstance(row.get("model"), str)


def write_csv(rows: Iterable[dict[str, Any]], path: Path) -> None:
    """Written atomically (a temporary file renamed over `path`): never half a CSV."""
    with atomic_open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=NAMES, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in NAMES})


def _parse(col: str, v: str) -> Any:
    if v == "":
        return None
    if col in INT_COLUMNS:
        return int(float(v))
    if col in FLOAT_COLUMNS:
        return float(v)
    if col == "matched_reference":
        return {"True": True, "False": False}.get(v, v)
    return v


def read_csv(path: Path) -> list[dict[str, Any]]:
    with Path(path).open(newline="") as f:
        return [{k: _parse(k, v or "") for k, v in r.items() if k is not None} for r in csv.DictReader(f)]


def spec_of_row(row: dict[str, Any], timeout: float = 1800.0, check_reference: bool = True) -> RowSpec:
    """The RowSpec that re-runs a device row of a CSV."""
    return RowSpec(
        model=str(row["model"]),
        scheme=str(row["scheme"]),
        board=str(row["board"]),
        resolution=int(row["resolution"]),
        dataset=str(row.get("dataset") or "faces"),
        classes=int(row.get("classes") or 2),
        steps=int(row.get("steps") or 2),
        options=str(row.get("options") or ""),
        timeout=timeout,
        check_reference=check_reference,
    )


def row_key(row: dict[str, Any]) -> str:
    return spec_of_row(row).key()


def merge_baseline(existing: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The baseline after an update: the new device rows replace rows with the same key, the others stay
    (so updating from the CI subset does not drop the full matrix)."""
    fresh = {row_key(r): r for r in new if r.get("kind") == "device"}
    out = [fresh.pop(row_key(r), r) for r in existing if r.get("kind") == "device"]
    return out + list(fresh.values())
