"""Helpers of the export tests: run an exported folder's builds outside the repository (PATH without the
project's Python) and read the example's per-step losses."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

HAVE_TOOLS = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make", "cmake"))
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="arm toolchain / QEMU / make / cmake not installed")
CLEAN_ENV = {"PATH": "/usr/bin:/bin"}
STEP = re.compile(r"^step (\d+)/(\d+): label (\d+) loss \S+ \((0x[0-9a-f]{8})\)", re.M)


def bits(x: float) -> str:
    """The float32 bits of `x` as the example prints them."""
    return f"0x{struct.unpack('<I', struct.pack('<f', x))[0]:08x}"


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True, timeout=600)


def make_qemu(folder: Path, board: str) -> subprocess.CompletedProcess[str]:
    return run(["make", f"BOARD={board}", "qemu"], folder)


def cmake_qemu(folder: Path, board: str, build: Path) -> subprocess.CompletedProcess[str]:
    """Configure with the folder's arm-none-eabi toolchain file, build, run the example (target qemu)."""
    cfg = run(
        [
            "cmake",
            "-S",
            ".",
            "-B",
            str(build),
            "-DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake",
            f"-DTINYTRAIN_BOARD={board}",
        ],
        folder,
    )
    if cfg.returncode != 0:
        return cfg
    return run(["cmake", "--build", str(build), "--target", "qemu"], folder)


def step_bits(stdout: str) -> list[str]:
    """The float32 bits of the losses the example printed, in step order."""
    return [s[3] for s in STEP.findall(stdout)]
