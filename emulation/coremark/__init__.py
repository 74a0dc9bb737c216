"""EEMBC CoreMark 1.0 on the emulated boards: the check of the cycle model (emulation.cycles) against
published CoreMark/MHz figures.

The core files are compiled unmodified from the shared third-party copy ($TT_COREMARK_DIR, else
`../shared/third_party/coremark` next to the repository or one level above it); only the port
(core_portme.c/.h, in this folder) is ours. The build is `emulation.build.build_firmware` with the board's
flags (the same flags as the training firmware). The timed region is the firmware phase "coremark", so
the ttprof plugin counts it exactly, by instruction class; CoreMark's own output validates the run (the
"2K performance run" seeds and no list/matrix/state CRC error).

Exact instructions per iteration = (count at n_hi iterations - count at n_lo) / (n_hi - n_lo): the
set-up inside the timed region cancels.

Two builds per board (`BUILDS`): "firmware" (the board's flags: GCC 12 -O2, what the training firmware
runs) and "reporting" (the board's flags + REPORTING_CFLAGS, the GCC flags printed with published GCC
CoreMark results). The published figures were produced with compilers tuned for CoreMark, so the model's
error is measured on the "reporting" build (COREMARK_ERROR in emulation.cycles); the "firmware" row shows
how much of the gap is the instruction stream (docs/emulation.md, "Calibration")."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinytrain import REPO_ROOT, TinytrainError

from ..boards import Board, get_board
from ..build import BUILD_DIR, build_firmware
from ..cycles import LABEL, estimate_cycles
from ..plugin import ClassCounts
from ..runner import RUNS_DIR, run_elf

PORT_DIR = Path(__file__).parent
CORE_FILES = ("core_list_join.c", "core_main.c", "core_matrix.c", "core_state.c", "core_util.c")
PHASE = "coremark"

#: Published CoreMark/MHz (EEMBC CoreMark 1.0) the estimates are compared with.
PUBLISHED: dict[str, tuple[float, str]] = {
    "m4": (3.40, "Arm: Cortex-M4 3.40 CoreMark/MHz (Cortex-M4 product page / processor comparison)"),
    "m7": (5.01, "ST STM32F746: 1082 CoreMark at 216 MHz = 5.01 CoreMark/MHz (STM32F7 datasheet)"),
}

#: GCC flags of a published GCC CoreMark result, taken as printed in the CoreMark report of the HPMicro SDK
#: (hpm_sdk, samples/coremark/README.md: "Compiler flags : ... -O3 -funroll-all-loops -finline-limit=600
#: -ftree-dominator-opts -fno-if-conversion2 -fselective-scheduling -fno-code-hoisting ..."), minus the
#: ones that do not change code generation here (-Wall, -g, section flags; -mstrict-align is RISC-V only).
#: Not chosen by their effect on this model: the whole printed set, unmodified.
REPORTING_CFLAGS = (
    "-O3",
    "-funroll-all-loops",
    "-finline-limit=600",
    "-ftree-dominator-opts",
    "-fno-if-conversion2",
    "-fselective-scheduling",
    "-fno-code-hoisting",
)
#: build name -> extra flags after the board's
BUILDS: dict[str, tuple[str, ...]] = {"firmware": (), "reporting": REPORTING_CFLAGS}

_CRC_ERROR = re.compile(r"ERROR! (list|matrix|state) crc")
_CRC_LINE = re.compile(r"\[0\]crc(list|matrix|state|final)\s*:\s*0x([0-9a-f]{4})")


def coremark_dir() -> Path:
    """Where the CoreMark sources are; a TinytrainError says how to point at them."""
    candidates = []
    if os.environ.get("TT_COREMARK_DIR"):
        candidates.append(Path(os.environ["TT_COREMARK_DIR"]))
    candidates += [
        REPO_ROOT.parent / "shared/third_party/coremark",
        REPO_ROOT.parent.parent / "shared/third_party/coremark",
    ]
    for c in candidates:
        if all((c / f).is_file() for f in (*CORE_FILES, "coremark.h")):
            return c
    raise TinytrainError(
        "CoreMark sources not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set TT_COREMARK_DIR to a checkout of github.com/eembc/coremark"
    )


def _tag(extra_cflags: tuple[str, ...]) -> str:
    return "" if not extra_cflags else "-" + hashlib.sha256(" ".join(extra_cflags).encode()).hexdigest()[:8]


def build(
    board: str | Board, iterations: int, out_dir: Path | None = None, extra_cflags: tuple[str, ...] = ()
) -> Path:
    """Build CoreMark for `board` running `iterations` iterations (the board's flags, then `extra_cflags`);
    returns the ELF."""
    b = get_board(board)
    src = coremark_dir()
    out = out_dir or BUILD_DIR / f"coremark-{iterations}-{b.name}{_tag(extra_cflags)}"
    res = build_firmware(
        b,
        [*(src / f for f in CORE_FILES), PORT_DIR / "core_portme.c"],
        include_dirs=[PORT_DIR, src],
        out_dir=out,
        defines={"ITERATIONS": iterations, "TT_SYSTICK_HZ": f"{b.counter_hz}u"},
        extra_cflags=(
            "-Wno-unused-parameter",
            "-Wno-sign-compare",
            "-Wno-implicit-fallthrough",
            *extra_cflags,
        ),
        name="coremark",
    )
    return res.elf


@dataclass
class CoreMarkRun:
    board: str
    iterations: int
    counts: ClassCounts  # the timed region, exact (plugin)
    crcs: dict[str, int]


def run(
    board: str | Board, iterations: int, *, extra_cflags: tuple[str, ...] = (), timeout: float = 120.0
) -> CoreMarkRun:
    """Build and run CoreMark; a TinytrainError unless CoreMark validated its own results."""
    b = get_board(board)
    elf = build(b, iterations, extra_cflags=extra_cflags)
    rd = RUNS_DIR / f"coremark-{iterations}-{b.name}{_tag(extra_cflags)}"
    rec = run_elf(elf, b, profile=True, timeout=timeout, run_dir=rd)
    log = Path(rec.uart_log).read_text(errors="replace") if rec.uart_log else ""
    if not rec.ok:
        raise TinytrainError(f"CoreMark on `{b.name}`: {rec.status}: {rec.message or log[-500:]}")
    if "2K performance run parameters for coremark." not in log or _CRC_ERROR.search(log):
        raise TinytrainError(f"CoreMark on `{b.name}` did not validate its results:\n{log[-1500:]}")
    crcs = {k: int(v, 16) for k, v in _CRC_LINE.findall(log)}
    if set(crcs) != {"list", "matrix", "state", "final"}:
        raise TinytrainError(f"CoreMark on `{b.name}`: CRC lines missing from the output:\n{log[-1500:]}")
    phase = rec.phase_profile(PHASE)
    if phase.get("occurrences") != 1:
        raise TinytrainError(f"CoreMark on `{b.name}`: the timed phase was not counted exactly once")
    return CoreMarkRun(b.name, iterations, ClassCounts.from_json(phase["all"]), crcs)


def per_iteration(
    board: str | Board, n_lo: int = 10, n_hi: int = 30, extra_cflags: tuple[str, ...] = ()
) -> tuple[dict[str, float], dict[str, float]]:
    """Exact instruction classes and extra counters per CoreMark iteration: the difference of two runs."""
    if not 0 < n_lo < n_hi:
        raise TinytrainError(f"CoreMark iterations: need 0 < low < high, got {n_lo} and {n_hi}")
    lo = run(board, n_lo, extra_cflags=extra_cflags)
    hi = run(board, n_hi, extra_cflags=extra_cflags)
    n = n_hi - n_lo
    classes = {k: (hi.counts.classes[k] - lo.counts.classes[k]) / n for k in hi.counts.classes}
    extra = {k: (hi.counts.extra[k] - lo.counts.extra[k]) / n for k in hi.counts.extra}
    return classes, extra


def _per_mhz(cycles_per_iteration: float) -> float:
    return round(1e6 / cycles_per_iteration, 3)


def calibrate(
    boards: tuple[str, ...] = ("m4", "m7"),
    n_lo: int = 10,
    n_hi: int = 30,
    extra_cflags: tuple[str, ...] = (),
    builds: tuple[str, ...] = ("firmware", "reporting"),
) -> list[dict[str, Any]]:
    """The calibration table: per board and build (`BUILDS`), exact instructions per CoreMark iteration, the
    cycle model's estimate (point and range) and the estimated CoreMark/MHz next to the published figure.
    `extra_cflags` go after each build's flags."""
    unknown = [x for x in builds if x not in BUILDS]
    if unknown:
        raise TinytrainError(f"CoreMark build `{unknown[0]}` unknown; have {', '.join(BUILDS)}")
    rows = []
    for name, build_name in ((n, x) for n in boards for x in builds):
        b = get_board(name)
        flags = (*BUILDS[build_name], *extra_cflags)
        classes, extra = per_iteration(b, n_lo, n_hi, flags)
        est = estimate_cycles(classes, b.cycle_core, extra)
        pub, source = PUBLISHED[b.cycle_core]
        cm = 1e6 / est.cycles
        err = (cm - pub) / pub
        lo, hi = est.cycles_low or est.cycles, est.cycles_high or est.cycles
        m_lo, m_hi = est.model_low or est.cycles, est.model_high or est.cycles
        rows.append(
            {
                "board": b.name,
                "build": build_name,
                "core": b.core,
                "instructions_per_iteration": round(sum(classes.values()), 1),
                "est_cycles_per_iteration": round(est.cycles, 1),
                "est_cycles_low": round(lo, 1),
                "est_cycles_high": round(hi, 1),
                "est_cycles_model_low": round(m_lo, 1),
                "est_cycles_model_high": round(m_hi, 1),
                "est_coremark_per_mhz": round(cm, 3),
                "est_coremark_per_mhz_low": _per_mhz(hi),
                "est_coremark_per_mhz_high": _per_mhz(lo),
                "est_coremark_per_mhz_model_low": _per_mhz(m_hi),
                "est_coremark_per_mhz_model_high": _per_mhz(m_lo),
                "published_coremark_per_mhz": pub,
                "error_pct": round(100.0 * err, 1),
                "within_10pct": abs(err) <= 0.10,
                "published_in_model_range": _per_mhz(m_hi) <= pub <= _per_mhz(m_lo),
                "published_in_range": _per_mhz(hi) <= pub <= _per_mhz(lo),
                "coremark_error_in_model": est.coremark_error,
                "range": est.range_kind,
                "model": est.model,
                "published_source": source,
                "iterations": [n_lo, n_hi],
                "extra_cflags": list(flags),
                "classes_per_iteration": {k: round(v, 1) for k, v in classes.items()},
                "extra_per_iteration": {k: round(v, 1) for k, v in extra.items()},
                "label": LABEL,
            }
        )
    return rows
