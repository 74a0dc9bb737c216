"""`tinytrain emulate`: compile a model + update scheme into training firmware, run it on an emulated
board, compare it with the host reference, and return one run record.

Stages (each timed in the record's `wall_seconds`):

1. model: zoo model at the resolution, with a new N-class head when `classes` differs;
2. compile: IR + scheme -> training `Program` (tinytrain.compiler);
3. plan: arena placement and predicted SRAM (tinytrain.schedule); a plan larger than the board's SRAM
   stops here with the planner's breakdown, before anything is built;
4. job: dataset split, the training order (epochs, shuffled with the seed) and the per-step learning
   rates, packed into dataset.bin (tinytrain.codegen.datafile): host and device read the same stream;
5. generate + build: model.c/model.h (tinytrain.codegen) + firmware/app/train + firmware/runtime,
   for the board (emulation.build) or the host (gcc: backend "host");
6. run: QEMU (or the host binary) in the run directory; `TT {json}` lines stream to a progress
   callback as they arrive; a fault is reported with the kernel it happened in (symbol of the PC);
7. reference: the same Program on the host `Trainer` with the same samples and learning rates,
   meanwhile (the firmware runs in another process);
8. compare: per-step losses bit-equal (float32) and final trainable tensors identical -> `matched_reference`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import FIRMWARE_DIR, REPO_ROOT, RESULTS_DIR, TinytrainError
from tinytrain.codegen import datafile
from tinytrain.codegen.generate import generate_model
from tinytrain.program import Program

APP_DIR = FIRMWARE_DIR / "app" / "train"
RUNTIME_DIR = FIRMWARE_DIR / "runtime"
BUILD_ROOT = REPO_ROOT / "build" / "emulate"
RUNS_DIR = RESULTS_DIR / "runs"
RECORD_FORMAT = "tinytrain-run/1"
PHASES = ("forward", "loss", "backward", "update")

#: The embedded default job (`tinytrain emulate --defaults`, `tox -e emulate`).
DEFAULTS: dict[str, Any] = {
    "model": "mcunet-5fps",
    "scheme": "paper:99kb",
    "dataset": "faces",
    "classes": 2,
    "resolution": 80,
    "board": "m7",
    "epochs": 3,
    # the recipe of the accuracy evidence (docs/evidence.md): lr 0.001 with the new head at 30x, stochastic
    # rounding (the compiler default); results/evidence/main_job.md measures it at this job's settings
    "lr": 0.001,
    "head_lr_scale": 30.0,
    "baseline": "last",
}
#: Where `tinytrain emulate --defaults` writes its report.
MAIN_JOB_REPORT = RESULTS_DIR / "main-job"

Progress = Callable[[str], None]


class FirmwareFault(TinytrainError):
    """The firmware faulted (or exited non-zero) on the emulated board."""

    exit_code = 3


@dataclass
class EmulateConfig:
    model: str = "mcunet-5fps"
    scheme: str = "paper:99kb"
    dataset: str = "faces"
    classes: int | None = None  # None: the dataset's number of classes
    resolution: int = 64
    board: str = "m7"
    steps: int | None = None  # training steps; None: `epochs` epochs over the train split
    epochs: int = 1
    lr: float = 0.002
    update_rule: str = "stochastic"  # = tinytrain.compiler.DEFAULT_UPDATE_RULE (a test pins it)
    momentum: float = 0.0  # SGD momentum (CompileOptions.momentum)
    accumulate: int = 1  # samples per mini-batch (CompileOptions.accumulate)
    head_lr_scale: float = 1.0  # learning-rate multiplier of the classifier (CompileOptions.head_lr_scale)
    seed: int = 0
    rng_seed: int = 0x2545F491
    max_train: int | None = None  # cap on the train split (None: all)
    max_test: int | None = None  # cap on the test split (None: all)
    evaluate: bool = True
    backend: str = "qemu"  # "qemu" | "host" (host-native build of the same C, no instruction counts)
    source: str = "semihost"  # "semihost" | "flash" (the dataset embedded in the firmware image)
    check_reference: bool = True
    profile: bool = True  # load the ttprof plugin: exact counts, instruction classes -> the cycle estimate
    profile_calls: bool = True  # profiled: the first step counts every kernel call (per-layer breakdown)
    dump_params: str | None = None  # write the trained tensors to this .npz
    timeout: float = 3600.0
    build_dir: str | None = None  # default: build/emulate/<job key>
    save_record: bool = True  # write the record under results/runs/
    baseline: str | None = None  # also train this scheme on the host reference (same stream), e.g. "last"
    report_dir: str | None = None  # write report.html + plots + record.json here

    def key(self) -> str:
        m = Path(self.model).name if ("/" in self.model or os.sep in self.model) else self.model
        parts = [m, self.scheme.replace(":", "-"), self.dataset, f"r{self.resolution}", self.board]
        if self.momentum:
            parts.append(f"mom{self.momentum:g}")
        if self.accumulate != 1:
            parts.append(f"acc{self.accumulate}")
        if self.head_lr_scale != 1.0:
            parts.append(f"head{self.head_lr_scale:g}")
        if self.backend != "qemu":
            parts.append(self.backend)
        return "-".join(p.replace("/", "_") for p in parts)


@dataclass
class RunResult:
    record: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""


# ---- adapters to the other parts of tinytrain ---------------------------------------------------------


def load_graph(model: str, resolution: int, classes: int | None, seed: int) -> Any:
    """The model at `resolution`, with a new `classes`-way head if it has a different number."""
    from tinytrain.models import load_model, replace_head

    graph = load_model(model, resolution)
    if classes is not None and classes != graph.num_classes:
        graph = replace_head(graph, classes, seed=seed)
    return graph


def compile_program(
    graph: Any,
    scheme: str,
    update_rule: str,
    momentum: float = 0.0,
    accumulate: int = 1,
    head_lr_scale: float = 1.0,
) -> Program:
    from tinytrain.compiler import CompileOptions, compile_training

    return compile_training(
        graph,
        scheme,
        CompileOptions(
            update_rule=update_rule, momentum=momentum, accumulate=accumulate, head_lr_scale=head_lr_scale
        ),
    )


def plan_program(program: Program, board: str) -> Any:
    from tinytrain.schedule import plan_memory

    return plan_memory(program, board)


def check_plan_fits(plan: Any, board: str) -> None:
    from tinytrain.schedule import check_fits

    try:
        check_fits(plan, board)
    except TinytrainError as exc:
        raise TinytrainError(f"{exc}\n\n{plan.report()}") from None


class Reference:
    """The host reference `Trainer` on the same stream; filled in by `run_reference` (in a thread)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.preds_before: list[int] | None = None
        self.preds_after: list[int] | None = None
        self.params: dict[str, np.ndarray] = {}
        self.error: BaseException | None = None
        self.seconds = 0.0


def run_reference(program: Program, job: datafile.TrainingJob, evaluate: bool, ref: Reference) -> None:
    t0 = time.perf_counter()
    try:
        from tinytrain.reference.training import Trainer

        trainer = Trainer(program, seed=job.rng_seed)
        if evaluate:
            ref.preds_before = [trainer.predict(x) for x in job.x_test]
        for sample, label, lr in job.samples():
            ref.losses.append(float(np.float32(trainer.train_step(sample, label, lr))))
        if evaluate:
            ref.preds_after = [trainer.predict(x) for x in job.x_test]
        ref.params = {name: np.array(arr) for name, arr in trainer.parameters().items()}
    except BaseException as exc:  # reported in the record, never lost in the thread
        ref.error = exc
    ref.seconds = time.perf_counter() - t0


class Baseline:
    """Another scheme (the classifier-only `last` by default) trained on the host reference with the same
    samples, order and learning rates: the baseline the device run is compared with."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None


def run_baseline(
    graph: Any, cfg: EmulateConfig, job: datafile.TrainingJob, board: str, base: Baseline
) -> None:
    t0 = time.perf_counter()
    try:
        from tinytrain.reference.training import Trainer

        program = compile_program(
            graph, base.scheme, cfg.update_rule, cfg.momentum, cfg.accumulate, cfg.head_lr_scale
        )
        plan = plan_program(program, board)
        trainer = Trainer(program, seed=job.rng_seed)
        n = len(job.y_test)

        def acc() -> float | None:
            if not (cfg.evaluate and n):
                return None
            return (
                sum(int(trainer.predict(x) == int(y)) for x, y in zip(job.x_test, job.y_test, strict=True))
                / n
            )

        before = acc()
        losses = [float(np.float32(trainer.train_step(x, y, lr))) for x, y, lr in job.samples()]
        base.result = {
            "scheme": base.scheme,
            "where": "host reference (same samples, order and learning rates as the device run)",
            "accuracy_before": before,
            "accuracy_after": acc(),
            "losses": losses,
            "sram_predicted": int(plan.total),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    except BaseException as exc:  # reported in the record, never lost in the thread
        base.error = exc


# ---- building -----------------------------------------------------------------------------------------


def app_sources(source: str) -> list[Path]:
    src = {"semihost": "source_semihost.c", "flash": "source_flash.c"}.get(source)
    if src is None:
        raise TinytrainError(f"unknown sample source {source!r}: semihost or flash")
    return [APP_DIR / "main.c", APP_DIR / src]


def runtime_sources() -> list[Path]:
    srcs = sorted(RUNTIME_DIR.glob("*.c"))
    if not srcs:
        raise TinytrainError(f"no runtime kernels in {RUNTIME_DIR}")
    return srcs


def build_board(board: str, gen_dir: Path, out_dir: Path, source: str) -> Any:
    from emulation.build import build_firmware

    sources = [gen_dir / "model.c", *app_sources(source), *runtime_sources()]
    if source == "flash":
        sources.append(gen_dir / "dataset_blob.c")
    return build_firmware(
        board, sources, include_dirs=[gen_dir, APP_DIR, RUNTIME_DIR], out_dir=out_dir, name="train"
    )


HOST_CFLAGS = ("-O2", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wextra")


def build_host(gen_dir: Path, out_dir: Path, source: str = "semihost") -> Path:
    """The same training app, model and runtime built with the host gcc (tt_board.h on stdio)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise TinytrainError("no host C compiler (gcc) found; install it with: sudo apt-get install -y gcc")
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "train-host"
    sources = [gen_dir / "model.c", APP_DIR / "host_board.c", *app_sources(source), *runtime_sources()]
    if source == "flash":
        sources.append(gen_dir / "dataset_blob.c")
    objs = []
    for s in sources:
        obj = out_dir / (s.stem + ".o")
        defines = ["-Dmain=tt_app_main"] if s.name == "main.c" else []
        c = [
            gcc,
            *HOST_CFLAGS,
            "-DTT_NO_PHASE_COUNTERS",
            *defines,
            f"-I{gen_dir}",
            f"-I{APP_DIR}",
            f"-I{RUNTIME_DIR}",
            f"-I{FIRMWARE_DIR / 'include'}",
            "-c",
            str(s),
            "-o",
            str(obj),
        ]
        proc = subprocess.run(c, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TinytrainError(f"host build failed ({s.name}):\n{proc.stderr.strip()}")
        objs.append(str(obj))
    proc = subprocess.run([gcc, *objs, "-lm", "-o", str(exe)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinytrainError(f"host link failed:\n{proc.stderr.strip()}")
    return exe


# ---- running ------------------------------------------------------------------------------------------


def stream_process(
    cmd: list[str], cwd: Path, on_event: Callable[[dict[str, Any]], None], timeout: float
) -> tuple[int, str]:
    """Run `cmd`, parse its stdout line by line as it arrives (metrics protocol) and return
    (exit status, whole output). A timeout kills it (status -9)."""
    from emulation.protocol import parse_line

    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            ev = parse_line(line)
            if ev is not None:
                on_event(ev)
        status = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return status, "".join(lines)


def tail_events(path: Path, on_event: Callable[[dict[str, Any]], None], stop: threading.Event) -> None:
    """Follow a growing UART log and pass each protocol event to `on_event` as it arrives (progress)."""
    from emulation.protocol import parse_line

    while not path.exists():
        if stop.wait(0.05):
            return
    with path.open("r", errors="replace") as f:
        buf = ""
        while True:
            chunk = f.read()
            if chunk:
                buf += chunk
                *lines, buf = buf.split("\n")
                for line in lines:
                    ev = parse_line(line)
                    if ev is not None:
                        on_event(ev)
            elif stop.is_set():
                return
            else:
                time.sleep(0.1)


def run_qemu(
    elf: Path,
    board: str,
    run_dir: Path,
    on_event: Callable[[dict[str, Any]], None],
    timeout: float,
    profile: bool,
) -> Any:
    """emulation.runner.run_elf, with the UART log followed meanwhile for live progress."""
    from emulation.runner import run_elf

    uart = run_dir / "uart.log"
    uart.unlink(missing_ok=True)
    stop = threading.Event()
    follower = threading.Thread(target=tail_events, args=(uart, on_event, stop), daemon=True)
    follower.start()
    try:
        return run_elf(elf, board, timeout=timeout, run_dir=run_dir, profile=profile)
    finally:
        stop.set()
        follower.join(timeout=5)


def kernel_of(elf: Path, function: str, kernels: set[str], depth: int = 4) -> list[str]:
    """The kernels (`tt_<kernel>` functions) through which `function` can be reached, from the ELF's
    static call graph (arm-none-eabi-objdump): a fault in a kernel's helper still names the kernel."""
    if function in kernels:
        return [function]
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump is None:
        return []
    text = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", str(elf)], capture_output=True, text=True
    ).stdout
    callers: dict[str, set[str]] = {}
    current = ""
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <([\w.$]+)>:$", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(r"\s(?:bl|blx|b|b\.w|b\.n)\s+[0-9a-f]+ <([\w.$]+)>", line)
        if m and current and m.group(1) != current:
            callers.setdefault(m.group(1), set()).add(current)
    found: list[str] = []
    frontier, seen = {function}, {function}
    for _ in range(depth):
        nxt = set()
        for f in frontier:
            for caller in callers.get(f, ()):
                if caller in kernels and caller not in found:
                    found.append(caller)
                elif caller not in seen:
                    seen.add(caller)
                    nxt.add(caller)
        frontier = nxt
    return sorted(found)


def fault_message(
    events: list[dict[str, Any]],
    elf: Path | None,
    status: int,
    output: str,
    program: Program | None = None,
    run_rec: Any = None,
) -> str:
    """A readable report of a fault or failed run: the kernel the PC is in (ELF symbol), the layers whose
    step calls that kernel, the fault registers decoded, the last UART lines."""
    fault = next((e for e in reversed(events) if e.get("ev") == "fault"), None)
    errors = [e.get("msg", "") for e in events if e.get("ev") == "error"]
    tail = "\n".join("  | " + ln for ln in output.strip().splitlines()[-8:])
    if fault is not None:
        where, fn, caller = "?", "", ""
        if elf is not None and "pc" in fault:
            try:
                from emulation.elfinfo import ElfSymbols

                syms = ElfSymbols(elf)
                where = syms.symbolize(int(str(fault["pc"]), 16))
                sym = syms.function_at(int(str(fault["pc"]), 16))
                fn = sym.name if sym else ""
                lr_sym = syms.function_at(int(str(fault.get("lr", "0")), 16))
                caller = lr_sym.name if lr_sym else ""
            except Exception as exc:  # symbolisation is best effort; the raw PC is still shown
                where = f"(cannot symbolise: {exc})"
        steps = [e for e in events if e.get("ev") == "step"]
        evals = [e for e in events if e.get("ev") == "eval" and "correct" in e]
        job = next((e for e in events if e.get("ev") == "job"), None)
        if job is None:
            at = "at start-up"
        elif steps and len(steps) >= int(job.get("steps", 0)):
            at = "in the evaluation after training"
        elif steps or evals:
            at = f"in training step {len(steps)}"
        else:
            at = "in the evaluation before training"
        lines = [
            f"firmware fault ({fault.get('exception')}) {at}, in {where}"
            + (f" (called from {caller})" if caller else "")
        ]
        if program is not None and fn and elf is not None:
            kernels = {f"tt_{st.kernel}" for st in [*program.steps, *program.infer_steps]}
            for k in kernel_of(elf, fn, kernels):
                layers = [st.layer for st in program.steps if f"tt_{st.kernel}" == k]
                more = f" and {len(layers) - 6} more" if len(layers) > 6 else ""
                via = "" if k == fn else f" (through its helper {fn})"
                lines.append(
                    f"  kernel {k}{via}, called in the training step for layer(s): "
                    f"{', '.join(layers[:6])}{more}"
                )
        fr = getattr(run_rec, "fault", None)
        if fr is not None:
            lines.append(
                f"  CFSR=0x{fr.cfsr:08x} HFSR=0x{fr.hfsr:08x} MMFAR=0x{fr.mmfar:08x} BFAR=0x{fr.bfar:08x} "
                f"pc=0x{fr.pc:08x} lr=0x{fr.lr:08x} sp=0x{fr.sp:08x}"
            )
            lines += [f"  {r}" for r in fr.reasons]
        else:
            lines.append(
                f"  pc={fault.get('pc')} cfsr={fault.get('cfsr')} hfsr={fault.get('hfsr')} "
                f"bfar={fault.get('bfar')} mmfar={fault.get('mmfar')}"
            )
        lines.append("last UART lines:\n" + tail)
        return "\n".join(lines)
    if status == -9 or getattr(run_rec, "status", "") == "timeout":
        return f"the firmware did not finish in time (killed); last UART lines:\n{tail}"
    msg = getattr(run_rec, "message", "") or ""
    return (
        f"the firmware exited with status {status}"
        + (f": {'; '.join(errors)}" if errors else "")
        + (f"\n{msg}" if msg and not errors else f"\nlast UART lines:\n{tail}")
    )


# ---- the whole job ------------------------------------------------------------------------------------


def make_job(cfg: EmulateConfig, num_classes: int, input_shape: tuple[int, ...]) -> datafile.TrainingJob:
    from tinytrain.data import load_dataset

    ds = load_dataset(cfg.dataset, cfg.resolution, seed=cfg.seed)
    xs, ys, xt, yt = ds.train_x, ds.train_y, ds.test_x, ds.test_y
    if ds.classes != num_classes:
        if num_classes < ds.classes:  # keep the first `num_classes` classes
            keep_s, keep_t = ys < num_classes, yt < num_classes
            xs, ys, xt, yt = xs[keep_s], ys[keep_s], xt[keep_t], yt[keep_t]
        else:
            raise TinytrainError(
                f"dataset {cfg.dataset!r} has {ds.classes} classes; the model has {num_classes}"
            )
    if cfg.max_train:
        xs, ys = xs[: cfg.max_train], ys[: cfg.max_train]
    if cfg.max_test is not None:
        xt, yt = xt[: cfg.max_test], yt[: cfg.max_test]
    if tuple(xs.shape[1:]) != tuple(input_shape):
        raise TinytrainError(
            f"dataset samples are {tuple(xs.shape[1:])}, the model's input is {tuple(input_shape)}"
        )
    steps = cfg.steps if cfg.steps is not None else cfg.epochs * len(xs)
    if steps < 0:
        raise TinytrainError("steps must be >= 0")
    order = datafile.make_order(len(xs), steps, cfg.seed)
    flags = datafile.TEST_PREDS | (datafile.EVAL_BEFORE | datafile.EVAL_AFTER if cfg.evaluate else 0)
    flags |= datafile.DUMP_PARAMS
    if cfg.profile_calls and cfg.profile and cfg.backend == "qemu" and steps >= 2:
        flags |= datafile.PROFILE_CALLS
    return datafile.TrainingJob(
        xs,
        ys,
        xt,
        yt,
        order,
        np.full(steps, cfg.lr, np.float32),
        num_classes,
        rng_seed=cfg.rng_seed,
        flags=flags,
        meta={"dataset": cfg.dataset, "seed": cfg.seed},
    )


def _board_attr(board: str, name: str) -> Any:
    from emulation.boards import get_board

    return getattr(get_board(board), name)


def _clock(seconds: float) -> str:
    m, sec = divmod(int(round(seconds)), 60)
    return f"{m}:{sec:02d}"


def _say(progress: Progress | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


def _decode_preds(s: str | None) -> list[int] | None:
    if s is None:
        return None
    return [int(s[i : i + 2], 16) for i in range(0, len(s), 2)]


def measured_sram(elf: Path, memory: Any, stack_hw: int, board: str) -> dict[str, Any]:
    """Measured SRAM: ELF static (.data + .bss), by symbol, plus the stack high-water mark. `trainable` is
    every SRAM copy the generated code declares (tt_p_*: updated weights, biases, shadow copies)."""
    from emulation.boards import get_board
    from emulation.elfinfo import ElfSymbols

    b = get_board(board)
    static = int(memory.sram_static)
    objs = {s.name: s.size for s in ElfSymbols(elf).objects_in(b.sram_origin, b.sram_origin + b.sram_size)}
    arena = objs.get("tt_arena", 0)
    trainable = sum(v for k, v in objs.items() if k.startswith("tt_p_"))
    inp = objs.get("tt_sample", 0)
    breakdown = {
        "arena": arena,
        "trainable": trainable,
        "input": inp,
        "other_static": static - arena - trainable - inp,
        "stack_high_water": int(stack_hw),
    }
    return {
        "total": static + int(stack_hw),
        "static": static,
        "breakdown": breakdown,
        "largest_objects": dict(sorted(objs.items(), key=lambda kv: -kv[1])[:8]),
    }


#: The committed accuracy evidence (docs/evidence.md, `tinytrain experiment`): Fig. 9's table.
EVIDENCE_FIG9 = RESULTS_DIR / "evidence" / "fig9.csv"


def evidence_quote(scheme: str, baseline: str, path: Path = EVIDENCE_FIG9) -> str | None:
    """`scheme` vs the `baseline` scheme in the committed evidence, per dataset (mean ± std over seeds),
    read from results/evidence/fig9.csv; None when the file or a row is missing. A task where both
    saturate (faces) cannot show the difference; the evidence on the other dataset can."""
    import csv

    if scheme == baseline:
        return None  # nothing to compare
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    acc = {(r["scheme"], r["dataset"]): r for r in rows}
    parts = []
    for ds in sorted({r["dataset"] for r in rows}):
        a, b = acc.get((scheme, ds)), acc.get((baseline, ds))
        if a and b:
            parts.append(
                f"{ds} {100 * float(a['acc_mean']):.1f} ± {100 * float(a['acc_std']):.1f}% vs "
                f"{100 * float(b['acc_mean']):.1f} ± {100 * float(b['acc_std']):.1f}%"
            )
    if not parts:
        return None
    seeds = rows[0].get("seeds", "?")
    head = f"{scheme} vs {baseline} on the host reference ({seeds} seeds, docs/evidence.md): "
    return head + "; ".join(parts)


def emulate(cfg: EmulateConfig, progress: Progress | None = None) -> RunResult:
    """Run one training job end to end (see the module doc) and return its run record.

    Two runs of the same job would share one build directory (generated C, dataset, params dump): the run
    holds an exclusive lock on it, so a second one waits instead of mixing files with the first."""
    build_dir = Path(cfg.build_dir) if cfg.build_dir else BUILD_ROOT / cfg.key()
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    # beside the directory, not in it: a run refused before it builds anything leaves no build directory
    with open(build_dir.parent / f"{build_dir.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(progress, f"another run is using {build_dir}; waiting for it to finish ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _emulate_locked(cfg, build_dir, progress)


def _emulate_locked(cfg: EmulateConfig, build_dir: Path, progress: Progress | None) -> RunResult:
    wall: dict[str, float] = {}
    t_start = time.perf_counter()

    def lap(name: str, t0: float) -> float:
        wall[name] = round(time.perf_counter() - t0, 3)
        return time.perf_counter()

    if cfg.backend not in ("qemu", "host"):
        raise TinytrainError(f"unknown backend {cfg.backend!r}: qemu or host")
    from tinytrain.compiler import check_optimizer

    check_optimizer(cfg.momentum, cfg.accumulate)  # bad input fails before the model is loaded
    t = time.perf_counter()
    _say(progress, f"model {cfg.model} at {cfg.resolution}x{cfg.resolution}")
    graph = load_graph(cfg.model, cfg.resolution, cfg.classes, cfg.seed)
    t = lap("model", t)
    program = compile_program(
        graph, cfg.scheme, cfg.update_rule, cfg.momentum, cfg.accumulate, cfg.head_lr_scale
    )
    t = lap("compile", t)
    plan = plan_program(program, cfg.board if cfg.backend == "qemu" else "m7")
    if cfg.backend == "qemu":
        check_plan_fits(plan, cfg.board)
    t = lap("plan", t)
    _say(
        progress,
        f"scheme {cfg.scheme}: {len(program.steps)} kernel calls per step; predicted SRAM "
        f"{plan.total / 1024:.1f} KB (arena {plan.arena / 1024:.1f} KB)"
        + (f" of {plan.sram_budget / 1024:.0f} KB on {cfg.board}" if plan.sram_budget else ""),
    )

    inp = program.buffers[program.input_buffer]
    job = make_job(cfg, program.num_classes, tuple(inp.shape))
    t = lap("dataset", t)
    unapplied = job.steps % cfg.accumulate
    if unapplied:
        _say(
            progress,
            f"warning: {job.steps} steps is not a multiple of the mini-batch ({cfg.accumulate} samples): the "
            f"last {unapplied} sample(s) are accumulated but never applied (on the device as on the host)",
        )

    gen_dir, run_dir = build_dir / "gen", build_dir / "run"
    gen = generate_model(program, plan.offsets, plan.arena)
    gen.write(gen_dir)
    if cfg.source == "flash":
        (gen_dir / "dataset_blob.c").write_text(datafile.blob_c(job))
    run_dir.mkdir(parents=True, exist_ok=True)
    datafile.write(job, run_dir / "dataset.bin")
    (run_dir / "params.bin").unlink(missing_ok=True)
    t = lap("generate", t)

    _say(progress, f"building for {cfg.board if cfg.backend == 'qemu' else 'the host'} ...")
    elf: Path | None = None
    memory = None
    if cfg.backend == "qemu":
        built = build_board(cfg.board, gen_dir, build_dir / "bin", cfg.source)
        elf, memory = built.elf, built.memory
        cmd = []
    else:
        cmd = [str(build_host(gen_dir, build_dir / "host", cfg.source))]
    t = lap("build", t)

    ref = Reference()
    base = Baseline(cfg.baseline) if cfg.baseline else None
    host_thread = None
    if cfg.check_reference or base is not None:
        # the host reference (then the baseline scheme) meanwhile, in one thread: QEMU has the other core
        def host_work() -> None:
            if cfg.check_reference:
                run_reference(program, job, cfg.evaluate, ref)
            if base is not None:
                run_baseline(graph, cfg, job, cfg.board if cfg.backend == "qemu" else "m7", base)

        host_thread = threading.Thread(target=host_work, daemon=True)
        host_thread.start()

    events: list[dict[str, Any]] = []
    n_steps = job.steps
    n_train = max(1, len(job.y_train))
    every = max(1, n_steps // 20)  # about 20 progress lines
    recent: list[float] = []
    t_run = time.perf_counter()
    t_steps = [t_run]  # when training started (after the evaluation before it): the rate for the estimate

    def on_event(ev: dict[str, Any]) -> None:
        events.append(ev)
        kind = ev.get("ev")
        if kind == "step":
            i = int(ev["i"])
            recent.append(float(ev["loss"]))
            if progress is not None and (i == 0 or (i + 1) % every == 0 or i == n_steps - 1):
                now = time.perf_counter()
                elapsed = now - t_run
                left = (now - t_steps[0]) / (i + 1) * (n_steps - i - 1)
                epochs = -(-n_steps // n_train)
                progress(
                    f"  step {i + 1:>{len(str(n_steps))}}/{n_steps}  epoch {i // n_train + 1}/{epochs}  "
                    f"loss {recent[-1]:.4f}  mean of last {len(recent):>3} {np.mean(recent):.4f}  "
                    f"{_clock(elapsed)} elapsed" + (f", ~{_clock(left)} left" if 1 < i + 1 < n_steps else "")
                )
                recent.clear()
        elif kind == "eval" and "correct" in ev:
            if ev.get("when") == "before":
                t_steps[0] = time.perf_counter()
            _say(
                progress,
                f"  held-out accuracy {ev['when']} training: {int(ev['correct'])}/{int(ev['n'])} "
                f"({100 * int(ev['correct']) / max(1, int(ev['n'])):.1f}%)",
            )
        elif kind == "fault":
            _say(progress, "  FAULT")

    _say(
        progress,
        f"running {n_steps} training steps on {cfg.board if cfg.backend == 'qemu' else 'the host'}"
        + (f" ({len(job.x_test)} test images before and after)" if cfg.evaluate else ""),
    )
    run_rec = None
    if elf is not None:
        run_rec = run_qemu(elf, cfg.board, run_dir, on_event, cfg.timeout, cfg.profile)
        events = list(run_rec.events)
        output = Path(run_rec.uart_log).read_text(errors="replace") if Path(run_rec.uart_log).exists() else ""
        status = 0 if run_rec.ok else (run_rec.exit_code if run_rec.exit_code not in (None, 0) else 1)
    else:
        status, output = stream_process(cmd, run_dir, on_event, cfg.timeout)
        (run_dir / "uart.log").write_text(output)
    t = lap("run", t)
    exit_ev = next((e for e in reversed(events) if e.get("ev") == "exit"), None)
    if status != 0 or exit_ev is None or int(exit_ev.get("status", 1)) != 0:
        raise FirmwareFault(fault_message(events, elf, status, output, program, run_rec))

    if host_thread is not None:
        if host_thread.is_alive():
            _say(progress, "waiting for the host reference" + (" and the baseline ..." if base else " ..."))
        host_thread.join()
        t = lap("reference_wait", t)

    # ---- the record ----
    steps_ev = [e for e in events if e.get("ev") == "step"]
    losses = [
        float(np.frombuffer(int(e["loss_bits"], 16).to_bytes(4, "little"), np.float32)[0]) for e in steps_ev
    ]
    loss_bits = [str(e["loss_bits"]) for e in steps_ev]
    evals = {e["when"]: e for e in events if e.get("ev") == "eval" and "correct" in e}
    preds = {
        e["when"]: _decode_preds(e.get("preds")) for e in events if e.get("ev") == "eval" and "preds" in e
    }
    n_test = len(job.y_test)

    counts = step_instructions(events, run_rec.phases if run_rec is not None else [], list(program.steps))
    instr = counts["per_step"]
    est = None
    if cfg.backend == "qemu":
        est = estimate_step_cycles(cfg.board, counts, run_rec.profile if run_rec else None, gen.kernels)

    device_params: dict[str, np.ndarray] = {}
    pfile = run_dir / "params.bin"
    if pfile.exists():
        device_params = gen.read_params(pfile.read_bytes())
    if cfg.dump_params:
        np.savez(cfg.dump_params, **device_params)

    match: dict[str, Any] = {"checked": cfg.check_reference}
    matched: bool | None = None
    if cfg.check_reference:
        if ref.error is not None:
            match["error"] = f"{type(ref.error).__name__}: {ref.error}"
            matched = False
        else:
            ref_bits = [f"0x{int(np.float32(v).view(np.uint32)):08x}" for v in ref.losses]
            bad = [i for i, (a, b) in enumerate(zip(loss_bits, ref_bits, strict=False)) if a != b]
            match["losses"] = len(ref_bits) == len(loss_bits) and not bad
            match["first_loss_mismatch"] = bad[0] if bad else None
            bad_params = sorted(
                k
                for k in ref.params
                if k not in device_params or not np.array_equal(ref.params[k], device_params[k])
            )
            match["params"] = not bad_params and set(ref.params) == set(device_params)
            match["params_mismatched"] = bad_params[:10]
            match["predictions"] = (
                preds.get("before") == ref.preds_before and preds.get("after") == ref.preds_after
            )
            match["reference_losses"] = [float(v) for v in ref.losses]
            match["reference_seconds"] = round(ref.seconds, 3)
            matched = bool(match["losses"] and match["params"])

    stack_hw = int(exit_ev.get("stack_hw", 0))
    sram = measured_sram(elf, memory, stack_hw, cfg.board) if elf is not None else None
    boot = next((e for e in events if e.get("ev") == "boot"), {})
    infer_instr = None
    if evals and n_test:
        infer_instr = int(np.mean([int(e.get("instr", 0)) for e in evals.values()]) / n_test)

    record: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": cfg.backend,
        "board": cfg.board if cfg.backend == "qemu" else "host",
        "model": cfg.model,
        "scheme": cfg.scheme,
        "dataset": cfg.dataset,
        "classes": program.num_classes,
        "resolution": cfg.resolution,
        "update_rule": cfg.update_rule,
        "momentum": cfg.momentum,
        "accumulate": cfg.accumulate,
        "head_lr_scale": cfg.head_lr_scale,
        "unapplied_samples": unapplied,  # a trailing partial mini-batch: accumulated, never applied
        "lr": cfg.lr,
        "seed": cfg.seed,
        "steps": len(steps_ev),
        "epochs": round(len(steps_ev) / max(1, len(job.y_train)), 3),
        "n_train": int(len(job.y_train)),
        "n_test": n_test,
        "losses": losses,
        "loss_bits": loss_bits,
        "labels": [int(e.get("label", -1)) for e in steps_ev],
        "accuracy_before": (int(evals["before"]["correct"]) / n_test)
        if "before" in evals and n_test
        else None,
        "accuracy_after": (int(evals["after"]["correct"]) / n_test) if "after" in evals and n_test else None,
        "instructions_per_step": instr if cfg.backend == "qemu" else None,
        "instructions_source": counts["source"] if cfg.backend == "qemu" else None,
        "instructions_per_step_all": counts["totals"] if cfg.backend == "qemu" else None,
        "instructions_per_step_call_systick": counts["call_systick"] if cfg.backend == "qemu" else None,
        "instructions_per_inference": infer_instr if cfg.backend == "qemu" else None,
        "instruction_counter": {
            "source": counts["source"] if cfg.backend == "qemu" else None,
            "instr_per_tick": boot.get("instr_per_tick"),
            "note": counts["note"],
        },
        "phase_events_per_step": counts["phase_events_per_step"] if cfg.backend == "qemu" else None,
        "layers_per_step": layers_per_step(counts["calls"]) if counts["calls"] else None,
        "calls_first_step": counts["calls"] or None,
        "profile_phase_alignment": (run_rec.profile or {}).get("phase_alignment") if run_rec else None,
        "kernels_per_step": kernels_per_step(run_rec.profile, counts["mean_over"])
        if run_rec is not None and run_rec.profile
        else None,
        "est_cycles_per_step": est["cycles"] if est else None,
        "est_cycles_range_per_step": [est["cycles_low"], est["cycles_high"]]
        if est and "cycles_low" in est
        else None,
        "est_ms_per_step": est["ms"] if est else None,
        "est_cpi": est["cpi"] if est else None,
        "estimate_note": est["note"] if est else None,
        "profile": _profile_summary(run_rec.profile, gen.kernels)
        if run_rec is not None and run_rec.profile
        else None,
        "clock_hz": boot.get("clock_hz"),
        "qemu_machine": _board_attr(cfg.board, "qemu_machine") if cfg.backend == "qemu" else None,
        "flash_budget": _board_attr(cfg.board, "flash_size") if cfg.backend == "qemu" else None,
        "sram": sram,
        "sram_budget": plan.sram_budget,
        "sram_predicted": {
            "total": plan.total,
            "breakdown": dict(plan.breakdown),
            "arena": plan.arena,
            "strategy": plan.strategy,
        },
        "flash_bytes": int(memory.flash) if memory is not None else None,
        "flash": memory.to_dict() if memory is not None else None,
        "codegen": {
            "kernel_calls": len(program.steps),
            "infer_calls": len(program.infer_steps),
            "trainable_bytes": gen.sram_param_bytes,
            "constant_bytes": gen.flash_bytes,
            "kernels": gen.kernels,
        },
        "matched_reference": matched,
        "match": match,
        "evidence": evidence_quote(cfg.scheme, cfg.baseline) if cfg.baseline else None,
        "baseline": (
            base.result
            if base is not None and base.result is not None
            else (
                {"scheme": base.scheme, "error": f"{type(base.error).__name__}: {base.error}"}
                if base
                else None
            )
        ),
        "exit_status": int(exit_ev.get("status", 0)),
        "elf": str(elf) if elf else None,
        "run_dir": str(run_dir),
        "wall_seconds": wall,
        "config": asdict(cfg),
    }
    if cfg.report_dir:
        from tinytrain.report import write_run_report

        record["report"] = str(Path(cfg.report_dir) / "report.html")
        wall["total"] = round(time.perf_counter() - t_start, 3)
        write_run_report(record, cfg.report_dir)
        t = lap("report", t)
    wall["total"] = round(time.perf_counter() - t_start, 3)
    if cfg.save_record:
        RUNS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = RUNS_DIR / f"{stamp}-{cfg.key()}.json"
        path.write_text(json.dumps(record, indent=1))
        record["record_file"] = str(path)
    return RunResult(record, events, output)


def step_instructions(
    events: list[dict[str, Any]], phases: list[dict[str, Any]], steps: list[Any] | None = None
) -> dict[str, Any]:
    """Instructions per training step by phase. The generated step brackets each run of consecutive steps
    of one phase with tt_phase_begin/tt_phase_end (flat); each end prints a phase event, paired in order
    with `phases` (the runner's list: exact counts, `source` "plugin", when profiled). A step's phases are
    the phase events since the previous step event. `total` is the sum of the step's phases (exact when
    profiled): the step's own work, without the instrumentation (the phase events' SysTick bookkeeping and
    UART lines, between phases); `call_systick` is the SysTick count of the whole tt_train_step call,
    instrumentation included.

    A step run as tt_train_step_calls (the first, with TT_DS_PROFILE_CALLS) has one phase "c<i>" per kernel
    call i of `steps` (the Program's step list): its calls are returned in `calls` and summed into its
    phases; the means leave it out when other steps exist (its per-call brackets add a few instructions)."""
    call_of = {f"c{i}": st for i, st in enumerate(steps or [])}
    per: list[dict[str, int]] = []
    by_calls: list[bool] = []
    systick_totals: list[int] = []
    cur = {p: 0 for p in PHASES}
    cur_calls: list[dict[str, Any]] = []
    first_calls: list[dict[str, Any]] = []
    k, sources, n_events = 0, set(), []
    for ev in events:
        kind = ev.get("ev")
        if kind == "phase":
            ph = phases[k] if k < len(phases) else {**ev, "source": "systick"}
            k += 1
            name = str(ph.get("name"))
            n = int(ph.get("instr", 0))
            if name in cur:
                n_events.append(len(per))
                cur[name] += n
                sources.add(str(ph.get("source", "systick")))
            elif name in call_of:
                st = call_of[name]
                cur[st.phase] += n
                sources.add(str(ph.get("source", "systick")))
                cur_calls.append(
                    {
                        "i": int(name[1:]),
                        "kernel": st.kernel,
                        "layer": st.layer,
                        "phase": st.phase,
                        "instr": n,
                    }
                )
        elif kind == "step":
            if not any(cur.values()):  # a firmware without phase events: the step event's own SysTick counts
                cur = {p: int(ev.get("phases", {}).get(p, 0)) for p in PHASES}
                sources.add("systick")
            per.append(cur)
            by_calls.append(bool(cur_calls))
            if cur_calls and not first_calls:
                first_calls = cur_calls
            systick_totals.append(int(ev.get("instr", 0)))
            cur, cur_calls = {p: 0 for p in PHASES}, []
    totals = [sum(d.values()) for d in per]
    keep = [i for i in range(len(per)) if not by_calls[i]] or list(range(len(per)))
    mean = {p: (int(round(np.mean([per[i][p] for i in keep]))) if keep else 0) for p in PHASES}
    # The total is the sum of the (rounded) phase means, as documented: rounding the mean of the step
    # totals separately can differ from it by a few instructions.
    mean["total"] = sum(mean[p] for p in PHASES)
    source = "plugin" if sources == {"plugin"} else ("systick" if sources else None)
    kept_systick = [systick_totals[i] for i in keep]
    call = int(round(np.mean(kept_systick))) if kept_systick else 0
    note = (
        "exact (ttprof plugin, phase markers): per phase, mean over steps; total = sum of the phases"
        if source == "plugin"
        else "SysTick counts (one tick = 40 instructions on mps2; run with the plugin for exact counts)"
    )
    if first_calls and len(keep) < len(per):
        note += "; the first step (every kernel call its own phase, for the per-layer breakdown) left out"
    return {
        "per_step": mean,
        "steps": per,
        "totals": totals,
        "call_systick": call,
        "phase_events_per_step": n_events.count(keep[0]) if keep else 0,
        "calls": first_calls,
        "mean_over": len(keep),
        "source": source,
        "note": note + f"; the whole tt_train_step call incl. the phase events: {call} (SysTick)",
    }


def layers_per_step(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instructions of each layer by phase in one step (from the per-call counts), largest first."""
    layers: dict[str, dict[str, Any]] = {}
    for c in calls:
        d = layers.setdefault(c["layer"] or "-", {"layer": c["layer"] or "-", **{p: 0 for p in PHASES}})
        d[c["phase"]] += int(c["instr"])
    for d in layers.values():
        d["total"] = sum(d[p] for p in PHASES)
    return sorted(layers.values(), key=lambda d: -d["total"])


def kernels_per_step(profile: dict[str, Any], n_steps: int, top: int = 12) -> dict[str, dict[str, int]]:
    """Instructions per training step of each function, by phase (plugin; all steps merged / n_steps)."""
    out: dict[str, dict[str, int]] = {}
    for name, ph in (profile.get("phases") or {}).items():
        if name not in PHASES or not n_steps:
            continue
        syms = sorted(ph.get("symbols", {}).items(), key=lambda kv: -int(kv[1]["total"]))
        out[name] = {fn: int(round(int(c["total"]) / n_steps)) for fn, c in syms[:top]}
    return {p: out[p] for p in PHASES if p in out}


def estimate_step_cycles(
    board: str, counts: dict[str, Any], profile: dict[str, Any] | None, kernels: list[str]
) -> dict[str, Any] | None:
    """Cycles per step: from the plugin's per-phase instruction classes when the phases were counted exactly
    (the cycle model on exactly the step's instructions), else `estimate_cycles` on the total."""
    total = int(counts["per_step"]["total"])
    phases = (profile or {}).get("phases") or {}
    steps = int(counts["mean_over"])  # the steps counted under the four phase names
    if counts["source"] == "plugin" and steps and all(p in phases for p in PHASES if counts["per_step"][p]):
        from emulation.boards import get_board

        b = get_board(board)
        cyc = sum(float(phases[p]["cycle_estimate"]["cycles"]) for p in PHASES if p in phases) / steps
        instr = sum(int(phases[p]["all"]["total"]) for p in PHASES if p in phases) / steps
        cpi = cyc / instr if instr else 1.0
        ests = [phases[p]["cycle_estimate"] for p in PHASES if p in phases]
        low = sum(float(e.get("cycles_low") or e["cycles"]) for e in ests) / steps
        high = sum(float(e.get("cycles_high") or e["cycles"]) for e in ests) / steps
        scale = total * cpi / cyc if cyc else 0.0  # the model's best/worst case, scaled like the point
        return {
            "cycles": int(round(total * cpi)),
            "cycles_low": int(round(low * scale)),
            "cycles_high": int(round(high * scale)),
            "ms": round(1000.0 * total * cpi / b.clock_hz, 3),
            "cpi": round(cpi, 4),
            "note": f"estimate: {total} instructions/step x {cpi:.3f} cycles/instruction from the exact "
            f"instruction-class mix of the step's phases (plugin, {b.cycle_core} model), at "
            f"{b.clock_hz / 1e6:.0f} MHz; QEMU counts instructions, not cycles",
        }
    return estimate_cycles(board, total, profile, kernels)


#: Cycles per instruction assumed when no plugin profile was taken (`--profile` measures the mix):
#: kernels are load/MAC loops, close to the per-class costs of emulation.cycles for such loops.
FALLBACK_CPI = {"m4": 1.5, "m7": 1.0}


def estimate_cycles(
    board: str, instructions: int, profile: dict[str, Any] | None = None, kernels: list[str] | None = None
) -> dict[str, Any] | None:
    """Cycles and milliseconds per step at the board's nominal clock: an ESTIMATE. With a plugin profile,
    cycles per instruction come from the instruction-class mix of the kernels (emulation.cycles);
    without one, from FALLBACK_CPI."""
    try:
        from emulation.boards import get_board
    except ImportError:
        return None
    b = get_board(board)
    cpi, source = None, ""
    if profile:
        syms = profile.get("symbols", {})
        names = [f"tt_{k}" for k in (kernels or [])]
        instr = sum(syms[n]["total"] for n in names if n in syms)
        cyc = sum(syms[n].get("cycles_estimate", 0.0) for n in names if n in syms)
        if instr:
            cpi, source = (
                cyc / instr,
                f"instruction-class mix of the kernels (plugin profile, {b.cycle_core} model)",
            )
    if cpi is None:
        cpi, source = (
            FALLBACK_CPI.get(b.cycle_core, 1.0),
            "an assumed average (no plugin profile; use --profile)",
        )
    c = int(round(instructions * cpi))
    return {
        "cycles": c,
        "ms": round(1000.0 * c / b.clock_hz, 3),
        "cpi": round(cpi, 4),
        "note": f"estimate: {instructions} instructions/step x {cpi:.3f} cycles/instruction from {source}, "
        f"at {b.clock_hz / 1e6:.0f} MHz; QEMU counts instructions, not cycles",
    }


def _profile_summary(profile: dict[str, Any], kernels: list[str]) -> dict[str, Any]:
    """Per-kernel instruction counts and cycle estimates over the whole run (from the plugin)."""
    syms = profile.get("symbols", {})
    per = {
        k: {
            "instructions": syms[f"tt_{k}"]["total"],
            "cycles_estimate": syms[f"tt_{k}"].get("cycles_estimate"),
        }
        for k in kernels
        if f"tt_{k}" in syms
    }
    return {"all": profile.get("all"), "kernels": per, "cycle_estimate": profile.get("cycle_estimate")}


def _range_ms(r: dict[str, Any]) -> str:
    """ "; model range A-B ms" from the cycle model's best/worst case, or "" without one."""
    rng, hz = r.get("est_cycles_range_per_step"), r.get("clock_hz")
    if not rng or not hz:
        return ""
    return f"; model range {1e3 * rng[0] / hz:.0f}-{1e3 * rng[1] / hz:.0f} ms, docs/emulation.md"


def _kb(v: float) -> str:
    return f"{v / 1024:.1f}"


def _mi(v: float) -> str:
    return f"{v / 1e6:.2f} M" if v >= 10_000 else str(int(v))


def summary(record: dict[str, Any]) -> str:
    """The short human summary `tinytrain emulate` prints at the end."""
    r = record
    where = f"board {r['board']}" + (f" (QEMU {r['qemu_machine']})" if r.get("qemu_machine") else "")
    lines = [
        f"tinytrain emulate: {r['model']} + {r['scheme']} on {r['dataset']} ({r['classes']} classes, "
        f"{r['resolution']}x{r['resolution']}), {where}, {r['steps']} training steps ({r['epochs']} epochs)"
    ]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label:<13} {text}")

    if r.get("momentum") or int(r.get("accumulate") or 1) > 1:
        n = int(r.get("accumulate") or 1)
        left = int(r.get("unapplied_samples") or 0)
        row(
            "optimizer",
            f"SGD momentum {r.get('momentum') or 0:g}, mini-batches of {n} sample(s)"
            + (f"; the last {left} sample(s) never applied" if left else ""),
        )
    if float(r.get("head_lr_scale") or 1.0) != 1.0:
        row("head lr", f"x{float(r['head_lr_scale']):g} the learning rate for the classifier (head_lr_scale)")
    sram, pred = r.get("sram"), r.get("sram_predicted") or {}
    budget = r.get("sram_budget")
    if sram:
        b = sram["breakdown"]
        row(
            "SRAM",
            f"{_kb(sram['total'])} KB measured"
            + (f" of {budget / 1024:.0f} KB on {r['board']}" if budget else "")
            + (" (paper target 256 KB)" if budget != 256 * 1024 else "")
            + (f"; predicted {_kb(pred['total'])} KB" if pred.get("total") else ""),
        )
        row(
            "",
            f"measured:  arena {_kb(b['arena'])} + trainable {_kb(b['trainable'])} + input {_kb(b['input'])}"
            f" + other {_kb(b['other_static'])} + stack {_kb(b['stack_high_water'])} KB",
        )
        g = pred.get("breakdown") or {}
        if g:
            train = sum(
                g.get(k, 0)
                for k in (
                    "trainable_weights",
                    "trainable_biases",
                    "shadow_copies",
                    "optimizer_state",
                    "momentum",
                )
            )
            other = sum(g.get(k, 0) for k in ("sram_tables", "sram_other", "runtime_state"))
            row(
                "",
                f"predicted: arena {_kb(g.get('arena', 0))} + trainable {_kb(train)} + input "
                f"{_kb(g.get('input', 0))} + other {_kb(other)} + stack {_kb(g.get('stack', 0))} KB",
            )
    elif pred.get("total"):
        row("SRAM", f"predicted {_kb(pred['total'])} KB (not measured: host-native run)")
    if r.get("flash_bytes"):
        fb = r.get("flash_budget")
        row("flash", f"{_kb(r['flash_bytes'])} KB" + (f" of {fb / 1024:.0f} KB" if fb else ""))
    ips = r.get("instructions_per_step")
    if ips:
        src = {"plugin": "exact, plugin", "systick": "SysTick"}.get(str(r.get("instructions_source")), "?")
        row(
            "instructions",
            f"{_mi(ips['total'])} per training step ({src}): "
            + ", ".join(f"{p} {_mi(ips[p])}" for p in PHASES if p in ips)
            + (
                f"; one inference {_mi(r['instructions_per_inference'])}"
                if r.get("instructions_per_inference")
                else ""
            ),
        )
    if r.get("est_ms_per_step") is not None:
        how = "the exact instruction mix" if r.get("instructions_source") == "plugin" else "an assumed mix"
        row(
            "time/step",
            f"~{r['est_ms_per_step']:.0f} ms at {(r.get('clock_hz') or 0) / 1e6:.0f} MHz "
            f"(ESTIMATE, not measured: {r.get('est_cpi')} cycles/instruction from {how}{_range_ms(r)})",
        )
    ab, aa = r.get("accuracy_before"), r.get("accuracy_after")
    if ab is not None and aa is not None:
        chance = f" (chance {100 / r['classes']:.0f}%)" if r.get("classes") else ""
        row("accuracy", f"{100 * ab:.1f}% -> {100 * aa:.1f}% on {r['n_test']} held-out images{chance}")
    base = r.get("baseline") or {}
    if base.get("accuracy_after") is not None:
        row(
            "baseline",
            f"classifier only ({base['scheme']}, host reference, same stream): "
            f"{100 * base['accuracy_before']:.1f}% -> {100 * base['accuracy_after']:.1f}%"
            + (f", planned SRAM {_kb(base['sram_predicted'])} KB" if base.get("sram_predicted") else ""),
        )
    elif base.get("error"):
        row("baseline", f"{base['scheme']} failed: {base['error']}")
    ev = r.get("evidence")
    if ev:
        row("evidence", ev)
    losses = r.get("losses") or []
    if losses:
        k = max(1, len(losses) // 10)
        row(
            "loss",
            f"{np.mean(losses[:k]):.4f} -> {np.mean(losses[-k:]):.4f} (mean of the first/last {k} steps)",
        )
    m = r.get("matched_reference")
    match = r.get("match") or {}
    if m is True:
        n = len(losses)
        row(
            "host match",
            f"yes: all {n} per-step losses bit-equal to the host reference, trained parameters identical"
            + (", test predictions identical" if match.get("predictions") else ""),
        )
    elif m is False:
        row("host match", "NO: " + json.dumps({k: v for k, v in match.items() if k != "reference_losses"}))
    else:
        row("host match", "not checked")
    if r.get("report"):
        row("report", str(_rel(r["report"])))
    if r.get("record_file"):
        row("record", str(_rel(r["record_file"])))
    row("wall time", f"{r['wall_seconds'].get('total', 0):.0f} s")
    return "\n".join(lines)


def _rel(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def config_from_defaults(**overrides: Any) -> EmulateConfig:
    d = {**DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    return EmulateConfig(**d)


class TrainingLibrary:
    """Robot Framework keywords for training runs (robot_tests/training.robot):

    Library    tinytrain.emulate.TrainingLibrary
    Train On Board    m7    model=mcunet-5fps    scheme=paper:99kb    resolution=64    steps=140
    Measured SRAM Should Be At Most    262144
    """

    ROBOT_LIBRARY_SCOPE = "SUITE"

    def __init__(self) -> None:
        self.record: dict[str, Any] | None = None

    def _rec(self) -> dict[str, Any]:
        if self.record is None:
            raise AssertionError("no training run yet: use Train On Board first")
        return self.record

    def train_on_board(
        self,
        board: str,
        model: str = "mcunet-5fps",
        scheme: str = "paper:99kb",
        dataset: str = "faces",
        classes: int = 2,
        resolution: int = 64,
        steps: int | None = None,
        epochs: int = 1,
        lr: float = 0.002,
        max_test: int | None = None,
    ) -> dict[str, Any]:
        """Compile, build, run in QEMU, compare with the host reference; returns the run record."""
        from robot.api import logger

        cfg = EmulateConfig(
            model=model,
            scheme=scheme,
            dataset=dataset,
            classes=int(classes),
            resolution=int(resolution),
            board=board,
            steps=None if steps is None else int(steps),
            epochs=int(epochs),
            lr=float(lr),
            max_test=None if max_test is None else int(max_test),
            save_record=False,
        )
        self.record = emulate(cfg, progress=logger.info).record
        logger.info(summary(self.record))
        logger.info(json.dumps(self.record, indent=1))
        return self.record

    def plan_should_not_fit(
        self,
        board: str,
        model: str = "mcunet-5fps",
        scheme: str = "paper:99kb",
        resolution: int = 224,
        classes: int = 2,
    ) -> str:
        """Emulating this job fails before anything is built, with the planner's breakdown."""
        cfg = EmulateConfig(
            model=model,
            scheme=scheme,
            classes=int(classes),
            resolution=int(resolution),
            board=board,
            steps=1,
            save_record=False,
        )
        try:
            emulate(cfg)
        except FirmwareFault as exc:
            raise AssertionError(f"expected a planning error, got a firmware fault: {exc}") from None
        except TinytrainError as exc:
            msg = str(exc)
            if "does not fit" not in msg or "arena" not in msg:
                raise AssertionError(f"error without the breakdown: {msg}") from None
            return msg
        raise AssertionError("the job unexpectedly fit the board")

    def measured_sram_should_be_at_most(self, limit: int) -> int:
        total = int(self._rec()["sram"]["total"])
        if total > int(limit):
            raise AssertionError(
                f"measured SRAM {total} B > {int(limit)} B: {self._rec()['sram']['breakdown']}"
            )
        return total

    def measured_sram_should_be_close_to_predicted(self, tolerance: int = 8192) -> None:
        r = self._rec()
        meas, pred = int(r["sram"]["total"]), int(r["sram_predicted"]["total"])
        if abs(meas - pred) > int(tolerance):
            raise AssertionError(f"measured {meas} B vs predicted {pred} B differ by more than {tolerance} B")

    def loss_should_decrease(self) -> None:
        """The mean loss of the last third of the steps is below that of the first third."""
        losses = self._rec()["losses"]
        k = max(1, len(losses) // 3)
        first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
        if not last < first:
            raise AssertionError(f"loss did not decrease: first third {first:.4f}, last third {last:.4f}")

    def accuracy_should_not_drop(self) -> None:
        r = self._rec()
        if r["accuracy_after"] is None or r["accuracy_after"] < r["accuracy_before"]:
            raise AssertionError(f"accuracy {r['accuracy_before']} -> {r['accuracy_after']}")

    def run_should_match_the_host_reference(self) -> None:
        r = self._rec()
        if r["matched_reference"] is not True:
            raise AssertionError(
                f"device and host reference differ: "
                f"{ {k: v for k, v in r['match'].items() if k != 'reference_losses'} }"
            )

    def instructions_per_step_should_be_exact(self) -> dict[str, int]:
        """Per-phase counts from the plugin (flat phase markers), adding up to the step total."""
        r = self._rec()
        ips = r["instructions_per_step"]
        if r.get("instructions_source") != "plugin":
            raise AssertionError(f"instruction counts are not exact: source {r.get('instructions_source')}")
        if sum(ips[p] for p in PHASES) != ips["total"]:
            raise AssertionError(f"the phases do not add up to the total: {ips}")
        return ips

    def instructions_per_step_should_be_reported(self) -> dict[str, int]:
        ips = self._rec()["instructions_per_step"]
        if not ips or not all(ips.get(p, 0) > 0 for p in ("forward", "backward", "update", "total")):
            raise AssertionError(f"missing per-phase instruction counts: {ips}")
        return ips


if __name__ == "__main__":  # pragma: no cover
    res = emulate(config_from_defaults(), progress=print)
    print(summary(res.record))
    sys.exit(0 if res.record["matched_reference"] else 1)
