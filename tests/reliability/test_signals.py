"""Child processes die with tinytrain even on SIGKILL (no handler runs: the kernel's parent-death signal kills
QEMU). SIGINT, SIGTERM, SIGHUP, a QEMU killed from outside and a timeout are cases of test_catalog.py."""

from __future__ import annotations

import signal
import time

import pytest

from tests.emulation.conftest import needs_qemu

from .helpers import SHORT_JOB, start, survivors, wait_for_child

pytestmark = [pytest.mark.qemu, needs_qemu]


# SIGINT, SIGTERM, SIGHUP and a QEMU killed from outside are cases of the catalogue (test_catalog.py)
@pytest.mark.parametrize("sig", [signal.SIGKILL])
def test_signal_to_emulate_kills_qemu(sig: signal.Signals) -> None:
    proc = start([*SHORT_JOB, "--steps", "3000"])
    qemu = wait_for_child(proc.pid, "qemu-system-arm")
    assert qemu is not None, proc.communicate(timeout=60)
    time.sleep(0.3)  # QEMU is training
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert survivors([qemu]) == [], f"qemu-system-arm {qemu} survived {sig.name}"
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + sig, err
        assert f"interrupted ({sig.name})" in err and "Traceback" not in err
