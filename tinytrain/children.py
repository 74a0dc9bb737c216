"""Child processes die with their parent.

Every long-running child (QEMU, the host-native training binary, a bench row worker) is started with
`spawn()`:

- in its own process group (its own session), so `kill_group()` stops it and everything it started, and a
  terminal's Ctrl-C does not reach it behind tinytrain's back;
- with the Linux parent-death signal set to SIGKILL (`prctl(PR_SET_PDEATHSIG)`), so even when tinytrain is
  killed with SIGKILL (no handler runs) the kernel kills the child; the child checks after the call that its
  parent is still the one that started it (a parent that died in between is caught too);
- registered until it is reaped: `kill_all()` kills every registered group; it runs at interpreter exit
  (atexit) and from the SIGTERM/SIGHUP handlers `install_signal_handlers()` sets, which raise `Terminated`
  (a KeyboardInterrupt) in the main thread so `finally` blocks run and the CLI exits 128 + signal.

The parent-death signal fires when the *thread* that started the child ends: spawn from a thread that waits
for the child (as the QEMU runner and the bench pool do).
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import signal
import subprocess
import threading
from typing import Any

PR_SET_PDEATHSIG = 1

_LIVE: set[subprocess.Popen[Any]] = set()
_LOCK = threading.RLock()  # re-entrant: the signal handler may run while the main thread holds it

try:
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: process groups and handlers still apply
    _prctl = None


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C (finally blocks run, children are killed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _die_with_parent(parent: int) -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(137)


def spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen(cmd, **kwargs)` in a new session, killed when this process dies; registered until
    `reap()`."""
    proc = subprocess.Popen(
        cmd, start_new_session=True, preexec_fn=functools.partial(_die_with_parent, os.getpid()), **kwargs
    )
    with _LOCK:
        _LIVE.add(proc)
    return proc


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the child's process group (the child and whatever it started), then reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
        pass


def reap(proc: subprocess.Popen[Any]) -> None:
    """Forget a child that has exited (or was killed)."""
    with _LOCK:
        _LIVE.discard(proc)


def live() -> list[subprocess.Popen[Any]]:
    with _LOCK:
        return list(_LIVE)


def kill_all() -> None:
    """Kill every registered child's process group."""
    for proc in live():
        if proc.poll() is None:
            kill_group(proc)
        reap(proc)


def _on_signal(signum: int, frame: Any) -> None:
    kill_all()
    raise Terminated(signum)


_installed = False


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP raise `Terminated` after killing the children (unless inherited as ignored, as
    under nohup); atexit kills any left. Call from the main thread (the CLI does); SIGINT keeps Python's
    KeyboardInterrupt, whose unwinding kills them."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_IGN:  # e.g. nohup: the caller wants it ignored
            continue
        signal.signal(sig, _on_signal)
    atexit.register(kill_all)
    _installed = True


def run(cmd: list[str], *, timeout: float | None = None, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run(cmd, capture_output=True, ...)` through `spawn`: a compiler or tool call that is killed
    with its process group when tinytrain is interrupted, and gets the parent-death signal (a compiler pass
    it already started finishes its file and exits on its own)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    kwargs.pop("capture_output", None)
    proc = spawn(cmd, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        kill_group(proc)
        raise
    finally:
        reap(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
