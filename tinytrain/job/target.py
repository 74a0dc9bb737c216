"""Run the built firmware on a target, QEMU (emulation.runner) or the host binary, streaming its `TT {json}`
events as they arrive, and explain a fault: the kernel the PC was in, the layers calling it, the fault
registers, the last UART lines."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain.program import Program

Progress = Callable[[str], None]
StepHook = Callable[[int, int], None]


def _clock(seconds: float) -> str:
    m, sec = divmod(int(round(seconds)), 60)
    return f"{m}:{sec:02d}"


class EventLog:
    """Collects the firmware's events and prints about 20 progress lines over the training steps; `on_step`
    (done, total) hears of every step (a live display, tinytrain.progress.Tracker.hook)."""

    def __init__(
        self, progress: Progress | None, n_steps: int, n_train: int, on_step: StepHook | None = None
    ) -> None:
        self.progress, self.n_steps, self.n_train = progress, n_steps, max(1, n_train)
        self.on_step = on_step
        self.events: list[dict[str, Any]] = []
        self.every = max(1, n_steps // 20)
        self.recent: list[float] = []
        self.t_run = time.perf_counter()
        self.t_steps = self.t_run  # when training started (after the evaluation before it)

    def _say(self, msg: str) -> None:
        if self.progress is not None:
            self.progress(msg)

    def __call__(self, ev: dict[str, Any]) -> None:
        self.events.append(ev)
        kind, n_steps = ev.get("ev"), self.n_steps
        if kind == "step":
            i = int(ev["i"])
            self.recent.append(float(ev["loss"]))
            if self.on_step is not None:
                self.on_step(i + 1, n_steps)
            if self.progress is not None and (i == 0 or (i + 1) % self.every == 0 or i == n_steps - 1):
                now, recent = time.perf_counter(), self.recent
                left = (now - self.t_steps) / (i + 1) * (n_steps - i - 1)
                epochs = -(-n_steps // self.n_train)
                self.progress(
                    f"  step {i + 1:>{len(str(n_steps))}}/{n_steps}  epoch {i // self.n_train + 1}/{epochs}  "
                    f"loss {recent[-1]:.4f}  mean of last {len(recent):>3} {np.mean(recent):.4f}  "
                    f"{_clock(now - self.t_run)} elapsed"
                    + (f", ~{_clock(left)} left" if 1 < i + 1 < n_steps else "")
                )
                self.recent.clear()
        elif kind == "eval" and "correct" in ev:
            if ev.get("when") == "before":
                self.t_steps = time.perf_counter()
            self._say(
                f"  held-out accuracy {ev['when']} training: {int(ev['correct'])}/{int(ev['n'])} "
                f"({100 * int(ev['correct']) / max(1, int(ev['n'])):.1f}%)",
            )
        elif kind == "fault":
            self._say("  FAULT")


def stream_process(
    cmd: list[str], cwd: Path, on_event: Callable[[dict[str, Any]], None], timeout: float
) -> tuple[int, str]:
    """Run `cmd`, parse its stdout line by line as it arrives (metrics protocol) and return
    (exit status, whole output). A timeout kills it (FirmwareFault naming the limit); a kill from outside
    is EmulatorKilled."""
    from emulation.protocol import parse_line
    from tinytrain import children
    from tinytrain.job.config import FirmwareFault

    proc = children.spawn(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
    )
    fired = threading.Event()
    timer = threading.Timer(timeout, lambda: (fired.set(), proc.kill()))
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
            children.kill_group(proc)
        children.reap(proc)
    if status < 0:
        from emulation.runner import EmulatorKilled

        if fired.is_set():
            raise FirmwareFault(
                f"timed out after {timeout:g} s (the --timeout limit): the host binary did not finish in time"
            )
        raise EmulatorKilled(f"the host binary was killed from outside by signal {-status} (not a timeout)")
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
    static call graph (emulation.elfinfo.call_graph): a fault in a kernel's helper still names the kernel."""
    from emulation.elfinfo import call_graph, reaching

    if function in kernels:
        return [function]
    return sorted(reaching(function, kernels, call_graph(elf), depth))


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
