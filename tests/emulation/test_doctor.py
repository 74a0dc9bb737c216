from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import HAVE_ARM, HAVE_QEMU


def _doctor(env_path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": env_path}
    code = "import sys; from tinytrain.cli import main; sys.exit(main(['doctor']))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_doctor_without_qemu_prints_the_install_command(tmp_path: Path) -> None:
    # A PATH with only the Arm toolchain and gcc (if present), no qemu-system-arm.
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("arm-none-eabi-gcc", "gcc"):
        for d in os.environ.get("PATH", "").split(os.pathsep):
            if (Path(d) / tool).exists():
                (fake / tool).symlink_to(Path(d) / tool)
                break
    r = _doctor(str(fake))
    assert r.returncode != 0
    assert "qemu-system-arm" in r.stdout and "MISSING" in r.stdout
    assert "apt-get install -y --no-install-recommends qemu-system-arm" in r.stdout


def test_doctor_with_nothing_installed(tmp_path: Path) -> None:
    r = _doctor(str(tmp_path))
    assert r.returncode != 0
    assert "qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi gcc" in r.stdout


@pytest.mark.skipif(not (HAVE_ARM and HAVE_QEMU), reason="toolchain not installed")
def test_doctor_passes_when_everything_is_there() -> None:
    r = _doctor(os.environ["PATH"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "QEMU emulator version" in r.stdout and "all good" in r.stdout
