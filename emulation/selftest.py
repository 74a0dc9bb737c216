"""The self-test firmware (firmware/app/selftest): what `tox -e emulate` runs until the training firmware
exists, and the fixtures of the acceptance tests (a fault, a hang, an SRAM overflow, ...)."""

from __future__ import annotations

from pathlib import Path

from tinytrain import FIRMWARE_DIR, TinytrainError

from .boards import DEFAULT_BOARD, Board, get_board
from .build import BUILD_DIR, BuildResult, build_firmware
from .runner import RUNS_DIR, RunRecord, run_elf

SELFTEST_DIR = FIRMWARE_DIR / "app" / "selftest"

#: name -> TT_SELFTEST_MODE (see firmware/app/selftest/main.c)
MODES = {
    "normal": 0,
    "fault": 1,
    "hang": 2,
    "too-big": 3,
    "exit7": 4,
    "busfault": 5,
    "file-io": 6,
    "phases": 7,
}

FILE_IO_INPUT = bytes(range(200))


def build(
    board: str | Board = DEFAULT_BOARD, mode: str = "normal", out_dir: str | Path | None = None
) -> BuildResult:
    b = get_board(board)
    if mode not in MODES:
        raise TinytrainError(f"unknown self-test mode `{mode}`; valid: {', '.join(MODES)}")
    out = Path(out_dir) if out_dir is not None else BUILD_DIR / f"selftest-{mode}-{b.name}"
    return build_firmware(
        b, [SELFTEST_DIR / "main.c"], out_dir=out, defines={"TT_SELFTEST_MODE": MODES[mode]}, name="selftest"
    )


def run(
    board: str | Board = DEFAULT_BOARD,
    mode: str = "normal",
    *,
    timeout: float = 30.0,
    profile: bool | None = None,
    run_dir: str | Path | None = None,
) -> RunRecord:
    """Build and run the self-test on `board`; the RunRecord is also saved as <run_dir>/record.json."""
    b = get_board(board)
    res = build(b, mode)
    rd = Path(run_dir) if run_dir is not None else RUNS_DIR / f"selftest-{mode}-{b.name}"
    rd.mkdir(parents=True, exist_ok=True)
    if mode == "file-io":
        (rd / "selftest_in.bin").write_bytes(FILE_IO_INPUT)
    return run_elf(res.elf, b, timeout=timeout, profile=profile, run_dir=rd)
