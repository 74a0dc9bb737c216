"""Power cuts in QEMU at a deterministic instruction count (the ttcut TCG plugin, plugin/ttcut.c).

`run_until(elf, board, run_dir, trigger=..., after=K)` runs the firmware with `-icount` and the plugin,
which ends QEMU abruptly (_exit, status CUT_STATUS) just before the K-th instruction counted from the first
execution of the `trigger` address: nothing the guest had not yet handed to the host survives, like a power
cut. Files the firmware wrote through semihosting before that instruction are on the host's disk (QEMU
writes them with write(2) at once). `after=0` never cuts and measures the window from `trigger` to `end`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinytrain import TinytrainError

from .boards import get_board
from .elfinfo import ElfSymbols
from .plugin import cache_dir
from .protocol import parse_line
from .runner import ICOUNT
from .toolchain import HOST_CC, QEMU, find_tool

PLUGIN_SOURCE = Path(__file__).parent / "plugin" / "ttcut.c"
CUT_STATUS = 86


def cut_plugin_path() -> Path:
    """The built ttcut plugin (host gcc, cached by a hash of its source like ttprof)."""
    src = PLUGIN_SOURCE.read_bytes()
    out = cache_dir() / f"ttcut-{hashlib.sha256(src).hexdigest()[:12]}.so"
    if out.exists():
        return out
    gcc = find_tool(HOST_CC)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(PLUGIN_SOURCE)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise TinytrainError(f"building the ttcut QEMU plugin failed:\n{proc.stderr.strip()}")
    tmp.replace(out)
    return out


@dataclass
class CutRun:
    status: str  # "cut" (stopped by the plugin), "exited" (the firmware exited), "timeout"
    exit_code: int | None  # the firmware's exit status when "exited"
    count: int  # instructions counted since the trigger (0 if it never ran)
    window: int | None  # instructions from trigger to end, when end was reached
    uart: str
    events: list[dict[str, Any]] = field(default_factory=list)


def symbol_address(elf: Path, name: str) -> int:
    addr = ElfSymbols(elf).address_of(name)
    if addr is None:
        raise TinytrainError(f"{elf}: no symbol {name!r}")
    return addr


def run_until(
    elf: str | Path,
    board: str,
    run_dir: str | Path,
    *,
    trigger: int,
    after: int,
    end: int | None = None,
    timeout: float = 120.0,
) -> CutRun:
    """Run `elf` on `board` in `run_dir` (QEMU's working directory: semihosting files live there), cutting
    the power `after` instructions into the window that starts at `trigger` (0: never)."""
    b = get_board(board)
    rd = Path(run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    uart, report = rd / "uart.log", rd / "cut.json"
    uart.unlink(missing_ok=True)
    report.unlink(missing_ok=True)
    args = [f"trigger={trigger:x}", f"after={int(after)}", f"out={report}"]
    if end is not None:
        args.append(f"end={end:x}")
    cmd = [
        find_tool(QEMU),
        "-M",
        b.qemu_machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        f"file:{uart}",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        ICOUNT,
        "-plugin",
        ",".join([str(cut_plugin_path()), *args]),
        "-kernel",
        str(Path(elf).resolve()),
    ]
    try:
        proc = subprocess.run(
            cmd, cwd=rd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        rc = None
    text = uart.read_text(errors="replace") if uart.exists() else ""
    events = [e for e in (parse_line(ln) for ln in text.splitlines()) if e is not None]
    rep = json.loads(report.read_text()) if report.exists() else {}
    if rc is None:
        status = "timeout"
    elif rc == CUT_STATUS and rep.get("cut") == 1:
        status = "cut"
    else:
        status = "exited"
        if not any(e.get("ev") == "exit" for e in events):
            raise TinytrainError(
                f"QEMU exited with {rc} before the firmware did:\n{proc.stderr.strip()}\n{text}"
            )
    return CutRun(
        status=status,
        exit_code=rc if status == "exited" else None,
        count=int(rep.get("count", 0)),
        window=rep.get("window"),
        uart=text,
        events=events,
    )
