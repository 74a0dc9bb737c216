"""`emulate(cfg)`: one training job through its stages, each timed in the record's `wall_seconds`:

0. data (tinytrain.job.prepare.load_job_data): the dataset loaded for the model's input before anything
   else, so a bad dataset fails first (one line, exit 2) and leaves no build directory; its identity (a
   path's name + content hash) is part of the job key, so two datasets never share a build directory;
1. prepare (tinytrain.job.prepare): model at the resolution with a new N-class head, compile (IR + scheme +
   CompileOptions -> Program), plan (arena, predicted SRAM; a plan larger than the board's SRAM stops
   here with the planner's breakdown, before anything is built), the dataset stream (dataset.bin);
2. firmware (tinytrain.job.firmware): model.c/model.h + the training app + the runtime, built for the
   board or the host;
3. target (tinytrain.job.target): QEMU or the host binary in the run directory, events streamed to the
   progress callback; a fault is reported with the kernel it happened in;
4. reference (tinytrain.job.reference): the same Program on the host `Trainer` with the same samples and
   learning rates, meanwhile (and the baseline scheme); per-step losses bit-equal and final trainable
   tensors identical -> `matched_reference`;
5. record (tinytrain.job.record): SRAM, instructions, cycles -> the run record; the report
   (tinytrain.report) is written from the record.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.job import paths
from tinytrain.job.config import FirmwareFault, JobConfig
from tinytrain.job.firmware import build_board, build_host, generate
from tinytrain.job.prepare import (
    JobData,
    check_plan_fits,
    compile_program,
    load_job_data,
    make_job,
    plan_program,
    with_head,
)
from tinytrain.job.record import build_record, device_results, save_record
from tinytrain.job.reference import Baseline, Reference, baseline_entry, compare, run_baseline, run_reference
from tinytrain.job.target import EventLog, StepHook, fault_message, run_qemu, stream_process

Progress = Callable[[str], None]


@dataclass
class RunResult:
    record: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""


def _say(progress: Progress | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


def emulate(cfg: JobConfig, progress: Progress | None = None, on_step: StepHook | None = None) -> RunResult:
    """Run one training job end to end (see the module doc) and return its run record. `progress` gets the
    text lines; `on_step(done, total)` every training step the target reports (a live display).

    Two runs of the same job would share one build directory (generated C, dataset, params dump): the run
    holds an exclusive lock on it, so a second one waits instead of mixing files with the first. The data
    are loaded first: a bad dataset is refused before the build directory (or its lock) exists."""
    t0 = time.perf_counter()
    if cfg.backend not in ("qemu", "host"):
        raise TinytrainError(f"unknown backend {cfg.backend!r}: qemu or host")
    r = cfg.resolution
    _say(progress, f"model {cfg.model}" + (f" at {r}x{r}" if r else " at its own input size"))
    data = load_job_data(cfg.model, cfg.dataset, cfg.resolution, cfg.classes, cfg.seed, cfg.data_options())
    _say(progress, data.dataset.summary())
    data_seconds = round(time.perf_counter() - t0, 3)
    build_dir = Path(cfg.build_dir) if cfg.build_dir else paths.build_root() / cfg.key()
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    # beside the directory, not in it: a run refused before it builds anything leaves no build directory
    with open(build_dir.parent / f"{build_dir.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(progress, f"another run is using {build_dir}; waiting for it to finish ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _emulate_locked(cfg, build_dir, progress, data, data_seconds, on_step)


def _emulate_locked(
    cfg: JobConfig,
    build_dir: Path,
    progress: Progress | None,
    data: JobData,
    data_seconds: float,
    on_step: StepHook | None = None,
) -> RunResult:
    from emulation.boards import DEFAULT_BOARD, get_board

    wall: dict[str, float] = {"data": data_seconds}
    t = time.perf_counter()
    t_start = t - data_seconds

    def lap(name: str, t0: float) -> float:
        wall[name] = round(time.perf_counter() - t0, 3)
        return time.perf_counter()

    qemu = cfg.backend == "qemu"
    # the board, resolved once; a host run is planned for the default board
    board = get_board(cfg.board if qemu else DEFAULT_BOARD)
    where = board.name if qemu else "the host"

    # ---- prepare ----
    graph = with_head(data.base, data.classes, cfg.seed)
    t = lap("model", t)
    program = compile_program(graph, cfg.scheme, cfg.options, board=board)
    t = lap("compile", t)
    plan = plan_program(program, board)
    if qemu:
        check_plan_fits(plan, board)
    t = lap("plan", t)
    _say(
        progress,
        f"scheme {cfg.scheme}: {len(program.steps)} kernel calls per step; predicted SRAM "
        f"{plan.total / 1024:.1f} KB (arena {plan.arena / 1024:.1f} KB)"
        + (f" of {plan.sram_budget / 1024:.0f} KB on {cfg.board}" if plan.sram_budget else ""),
    )
    job = make_job(cfg, program.num_classes, tuple(program.buffers[program.input_buffer].shape), data.dataset)
    t = lap("dataset", t)
    unapplied = job.steps % cfg.accumulate
    if unapplied:
        _say(
            progress,
            f"warning: {job.steps} steps is not a multiple of the mini-batch ({cfg.accumulate} samples): the "
            f"last {unapplied} sample(s) are accumulated but never applied (on the device as on the host)",
        )

    # ---- firmware ----
    run_dir = build_dir / "run"
    gen = generate(program, plan, job, build_dir, cfg.source)
    t = lap("generate", t)
    _say(progress, f"building for {where} ...")
    elf: Path | None = None
    memory = None
    if qemu:
        built = build_board(board, build_dir / "gen", build_dir / "bin", cfg.source)
        elf, memory = built.elf, built.memory
    else:
        exe = build_host(build_dir / "gen", build_dir / "host", cfg.source)
    t = lap("build", t)

    # ---- the host reference (then the baseline scheme) meanwhile, in one thread: QEMU has the other core
    ref = Reference()
    base = Baseline(cfg.baseline) if cfg.baseline else None
    host_thread = None
    if cfg.check_reference or base is not None:

        def host_work() -> None:
            if cfg.check_reference:
                run_reference(program, job, cfg.evaluate, ref)
            if base is not None:
                run_baseline(graph, cfg, job, board, base)

        host_thread = threading.Thread(target=host_work, daemon=True)
        host_thread.start()

    # ---- run on the target ----
    collect = EventLog(progress, job.steps, len(job.y_train), on_step)
    _say(
        progress,
        f"running {job.steps} training steps on {where}"
        + (f" ({len(job.x_test)} test images before and after)" if cfg.evaluate else ""),
    )
    run_rec = None
    if elf is not None:
        run_rec = run_qemu(elf, board, run_dir, collect, cfg.timeout, cfg.profile)
        if run_rec.status in ("killed", "timeout"):  # not a firmware fault; the message names the cause
            from emulation.runner import EmulatorKilled

            raise (EmulatorKilled if run_rec.status == "killed" else FirmwareFault)(run_rec.message)
        events = list(run_rec.events)
        output = Path(run_rec.uart_log).read_text(errors="replace") if Path(run_rec.uart_log).exists() else ""
        status = 0 if run_rec.ok else (run_rec.exit_code if run_rec.exit_code not in (None, 0) else 1)
    else:
        status, output = stream_process([str(exe)], run_dir, collect, cfg.timeout)
        events = collect.events
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

    # ---- compare, account, record ----
    dev = device_results(events)
    device_params: dict[str, np.ndarray] = {}
    pfile = run_dir / "params.bin"
    if pfile.exists():
        device_params = gen.read_params(pfile.read_bytes())
    if cfg.dump_params:
        from tinytrain.atomic import atomic_open

        dump = cfg.dump_params if str(cfg.dump_params).endswith(".npz") else f"{cfg.dump_params}.npz"
        with atomic_open(dump, "wb") as f:
            np.savez(f, **device_params)
    if cfg.save_model:
        from tinytrain.export.model_out import save_model

        save_model(cfg.save_model, graph, device_params, model_dir=cfg.model)
    match: dict[str, Any] = {"checked": False}
    matched: bool | None = None
    if cfg.check_reference:
        match, matched = compare(ref, dev["loss_bits"], device_params, dev["preds"])
    record = build_record(
        cfg,
        board,
        program,
        plan,
        gen,
        job,
        events,
        dev,
        run_rec,
        elf,
        memory,
        match,
        matched,
        baseline_entry(base),
        unapplied,
        run_dir,
        wall,
    )
    record["dataset_provenance"] = data.provenance()
    record["dataset_summary"] = data.dataset.summary()
    if cfg.report_dir:
        from tinytrain.report import write_run_report

        record["report"] = str(Path(cfg.report_dir) / "report.html")
        wall["total"] = round(time.perf_counter() - t_start, 3)
        write_run_report(record, cfg.report_dir)
        t = lap("report", t)
    wall["total"] = round(time.perf_counter() - t_start, 3)
    if cfg.save_record:
        record["record_file"] = str(save_record(record, paths.runs_dir(), cfg.key()))
    return RunResult(record, events, output)
