from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emulation import selftest
from emulation.build import BuildResult

HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None

needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc not installed (run tinytrain doctor)")
needs_qemu = pytest.mark.skipif(not (HAVE_ARM and HAVE_QEMU), reason="QEMU / arm toolchain not installed")


@pytest.fixture(scope="session")
def selftest_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuildResult]:
    """The self-test built once per session for each board (normal mode)."""
    if not HAVE_ARM:
        pytest.skip("arm-none-eabi-gcc not installed")
    root: Path = tmp_path_factory.mktemp("fw")
    return {b: selftest.build(b, "normal", out_dir=root / b) for b in ("m7", "m4", "stm32f405")}
