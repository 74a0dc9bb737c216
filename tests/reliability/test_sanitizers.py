"""The host-native C (firmware/runtime kernels, the training app, generated model code) under
AddressSanitizer + UndefinedBehaviorSanitizer (gcc -fsanitize=address,undefined): the kernel tests against
the numpy reference, and a few training steps of the real app, must run without a sanitizer report.

No code changes are needed for it: a `gcc` wrapper first on PATH adds the flags to every compile and link
(tinytrain.native and the host build of `tinytrain emulate --host` both call `gcc`), TINYTRAIN_CACHE points
the native library cache at a fresh directory, and the Python process preloads libasan."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinytrain import REPO_ROOT

from .fuzz import sanitizer_gcc

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")

SAN_REPORT = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "ERROR: LeakSanitizer",
    "SUMMARY: UndefinedBehavior",
)


def _env(tmp: Path, preload: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{sanitizer_gcc(tmp)}:{os.environ['PATH']}",
        "TINYTRAIN_CACHE": str(tmp / "cache"),
        "PYTHONPATH": str(REPO_ROOT),
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "ASAN_OPTIONS": "detect_leaks=0" if preload else "detect_leaks=1",
        "MPLBACKEND": "Agg",
    }
    if preload:
        lib = subprocess.run(
            ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True
        ).stdout.strip()
        env["LD_PRELOAD"] = lib
    return env


def test_kernel_tests_under_asan_and_ubsan(tmp_path: Path) -> None:
    tests = ["tests/kernels/test_native_vs_reference.py", "tests/kernels/test_memory_ops.py",
             "tests/kernels/test_saturated_bias.py"]  # fmt: skip
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow", *tests],
        cwd=REPO_ROOT, env=_env(tmp_path, preload=True), capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert not any(s in out for s in SAN_REPORT), out[-4000:]
    libs = list((tmp_path / "cache" / "native").glob("*.so"))
    assert libs, "the native kernels were not rebuilt"
    syms = subprocess.run(["nm", "-D", str(libs[0])], capture_output=True, text=True).stdout
    assert "__asan_report" in syms and "__ubsan_handle" in syms  # really instrumented


@pytest.mark.parametrize(
    "extra",
    [
        ["--scheme", "paper:99kb", "--resolution", "48"],
        ["--scheme", "full", "--resolution", "32", "--update-rule", "shadow"],
        ["--scheme", "bias", "--resolution", "32", "--momentum", "0.9", "--accumulate", "2"],
    ],
)
def test_training_steps_under_asan_and_ubsan(tmp_path: Path, extra: list[str]) -> None:
    argv = [
        "emulate", "--host", "--model", "mcunet-5fps", "--dataset", "digits", "--classes", "10",
        "--board", "m7", "--steps", "4", "--max-test", "4", "--no-baseline", "--no-save", *extra,
    ]  # fmt: skip
    p = subprocess.run(
        [sys.executable, "-c", "import sys; from tinytrain.cli import main; sys.exit(main())", *argv],
        cwd=REPO_ROOT, env=_env(tmp_path, preload=False), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert not any(s in out for s in SAN_REPORT), out[-4000:]
    assert "host match    yes" in out, out[-2000:]
    exe = max(
        (REPO_ROOT / "build" / "emulate").glob("*-host/host/train-host"), key=lambda f: f.stat().st_mtime
    )
    assert "__asan_report" in subprocess.run(["nm", str(exe)], capture_output=True, text=True).stdout
