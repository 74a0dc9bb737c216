"""Child processes die with tinytrain: SIGINT, SIGTERM, SIGHUP (handled: QEMU killed, exit 128 + signal) and
SIGKILL (unhandled: the kernel's parent-death signal kills QEMU) to a running `tinytrain emulate`; a QEMU
killed from outside is reported as such (exit 4), not as a timeout; a timeout names its limit."""

from __future__ import annotations

import signal
import time

import pytest

from tests.emulation.conftest import needs_qemu

from .helpers import SHORT_JOB, alive, start, survivors, wait_for_child

pytestmark = [pytest.mark.qemu, needs_qemu]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
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


def test_qemu_killed_from_outside_is_not_a_timeout() -> None:
    proc = start([*SHORT_JOB, "--steps", "3000"])
    qemu = wait_for_child(proc.pid, "qemu-system-arm")
    assert qemu is not None, proc.communicate(timeout=60)
    time.sleep(0.3)
    import os

    os.kill(qemu, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    assert "killed from outside by SIGKILL" in err and "not a timeout" in err
    assert "did not finish in time" not in err and "Traceback" not in err


def test_timeout_names_its_limit() -> None:
    proc = start([*SHORT_JOB, "--steps", "3000", "--timeout", "1.5"])
    qemu = wait_for_child(proc.pid, "qemu-system-arm")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "timed out after 1.5 s" in err and "--timeout" in err and "Traceback" not in err
    assert qemu is None or not alive(qemu)
