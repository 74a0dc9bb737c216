"""One execution seam for the long commands (`bench`, `experiment`, `search`): a list of tasks in, one
outcome per task out, in completion order, whatever runs them.

A `Task` is plain picklable inputs: the dotted name of a function (imported on the worker), its arguments
and the tools the worker must have. The function returns a result dict. Backends:

- `local` (the default): in this process one at a time (`jobs` 1), or `jobs` threads / processes on this
  machine (tinytrain.executor.local);
- `ray` / `ray://HOST:PORT`: a local Ray runtime started on demand, or an existing cluster
  (tinytrain.executor.ray; the optional extra `pip install tinytrain[ray]`).

Every backend runs a task through `run_task`: the worker first checks its toolchain (the `doctor` checks
for the tools the task needs) and, on a cluster, that its tinytrain code is the driver's (the code
fingerprint); a task that raises or whose worker dies is retried once, then ends as a failed `Outcome`
with its reason and the node it ran on, and the others go on. A worker with other code stops the whole run
(`VersionMismatch`, exit 2). Leaving the `with` block early (Ctrl-C, an error) cancels what is still
running; what finished has been handed out already.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import socket
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tinytrain import TinytrainError

#: The tools an emulated benchmark row needs on its worker (the `doctor` checks).
EMULATION_TOOLS = ("qemu-system-arm", "arm-none-eabi-gcc")
#: Attempts of a task that raises or whose worker dies (one retry).
ATTEMPTS = 2


class VersionMismatch(TinytrainError):
    """A worker runs other tinytrain code than the driver (exit 2; nothing is written)."""


class TasksFailed(TinytrainError):
    """Some tasks failed twice; the others finished and are cached (exit 1: not bad input)."""

    exit_code = 1


@dataclass(frozen=True)
class Task:
    """One unit of work: `fn` ("package.module:function") applied to `args` on a worker."""

    fn: str
    args: tuple[Any, ...]
    key: str  # names the task in progress lines and failures
    needs: tuple[str, ...] = ()  # tools the worker must have (EMULATION_TOOLS for a device row)


@dataclass
class Outcome:
    task: Task
    value: Any = None  # the function's result when ok
    error: str = ""  # why it failed (after the retry), naming the node
    node: str = ""
    attempts: int = 1
    kind: str = "ok"  # ok | error (raised) | crashed (worker died) | toolchain

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


# ---- worker side ------------------------------------------------------------------------------------------


def node_name() -> str:
    return socket.gethostname()


@functools.lru_cache(maxsize=32)
def _tool_problem(tool: str, path_env: str) -> str:
    """'' when `tool` is usable on this worker, else what is wrong (the `doctor` checks, cached per PATH)."""
    from emulation import toolchain

    if shutil.which(tool, path=path_env) is None:
        return f"{tool} is not on PATH"
    if tool == toolchain.ARM_GCC:
        from emulation.boards import DEFAULT_BOARD, get_board

        if toolchain.newlib_libc(get_board(DEFAULT_BOARD).cflags) is None:
            return "newlib (libc.a for arm-none-eabi) is not installed"
    return ""


def missing_tools(needs: Iterable[str]) -> list[str]:
    """What is wrong with the tools a task needs on this worker, one entry per missing tool."""
    path_env = os.environ.get("PATH", "")
    return [p for p in (_tool_problem(t, path_env) for t in needs) if p]


@functools.lru_cache(maxsize=1)
def worker_fingerprint() -> str:
    from tinytrain.bench.runner import code_fingerprint

    return code_fingerprint()


def resolve(fn: str) -> Any:
    module, _, name = fn.partition(":")
    return getattr(importlib.import_module(module), name)


def run_task(task: Task, fingerprint: str | None = None) -> dict[str, Any]:
    """Run one task on this worker: -> {"kind": ok|error|toolchain|version, "value"|"error", "node"}.
    Never raises for the task's own failure."""
    node = node_name()
    if fingerprint is not None and worker_fingerprint() != fingerprint:
        return {
            "kind": "version",
            "node": node,
            "error": f"worker {node} runs tinytrain code {worker_fingerprint()}, the driver {fingerprint}: "
            "install the same tinytrain on every node",
        }
    problems = missing_tools(task.needs)
    if problems:
        from emulation import toolchain

        path_env = os.environ.get("PATH", "")
        tools = [t for t in task.needs if _tool_problem(t, path_env) and t in toolchain.APT_PACKAGES]
        hint = f"; {toolchain.install_command(*tools)}" if tools else ""
        return {
            "kind": "toolchain",
            "node": node,
            "error": f"node {node}: {'; '.join(problems)} (`tinytrain doctor` on that node{hint})",
        }
    try:
        value = resolve(task.fn)(*task.args)
    except Exception as exc:  # the task's own failure: reported, maybe retried
        return {
            "kind": "error",
            "node": node,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    return {"kind": "ok", "node": node, "value": value}


# ---- driver side ------------------------------------------------------------------------------------------


@dataclass
class _Attempt:
    task: Task
    number: int = 1
    errors: list[str] = field(default_factory=list)


class Executor:
    """Runs tasks; subclasses provide `_submit`, `_next_done` and `_cancel`. Use as a context manager."""

    name = "executor"
    workers = 1
    fingerprint: str | None = None  # checked on every worker when set (clusters)
    startup_seconds = 0.0  # time to start the runtime or connect (Ray)

    def __init__(self) -> None:
        self._inflight: dict[Any, _Attempt] = {}
        self._depth = 0  # nested `with` blocks share one start (a command's phases, one runtime)

    def __enter__(self) -> Executor:
        if self._depth == 0:
            self.start()
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.close()
        else:  # an inner block left early: cancel its tasks, keep the runtime
            self._cancel_inflight()

    def start(self) -> None:
        """Acquire the resources (a pool, a Ray connection). Bad input here is a TinytrainError."""

    def close(self) -> None:
        """Cancel what is still running and release the resources."""
        self._cancel_inflight()

    def _cancel_inflight(self) -> None:
        handles = list(self._inflight)
        self._inflight.clear()
        if handles:
            self._cancel(handles)

    def _submit(self, task: Task) -> Any:
        raise NotImplementedError

    def _next_done(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
        """Block until at least one handle is done; -> [(handle, run_task's dict)]. A dead worker gives
        {"kind": "crashed", "error": ...}."""
        raise NotImplementedError

    def _cancel(self, handles: list[Any]) -> None:
        raise NotImplementedError

    def map(self, tasks: Iterable[Task]) -> Iterator[Outcome]:
        """Every task's outcome, in completion order; a failed attempt is retried once."""
        for t in tasks:
            self._inflight[self._submit(t)] = _Attempt(t)
        while self._inflight:
            for handle, raw in self._next_done(list(self._inflight)):
                att = self._inflight.pop(handle)
                kind = str(raw.get("kind"))
                if kind == "version":
                    self._cancel_inflight()
                    raise VersionMismatch(str(raw["error"]))
                if kind in ("error", "crashed") and att.number < ATTEMPTS:
                    att.errors.append(str(raw.get("error")))
                    att.number += 1
                    self._inflight[self._submit(att.task)] = att
                    continue
                err = str(raw.get("error") or "")
                node = str(raw.get("node") or "")
                if kind in ("error", "crashed"):
                    where = f" on {node}" if node else ""
                    what = "worker died" if kind == "crashed" else "raised"
                    err = f"{what}{where} ({att.number} attempts): {err}"
                yield Outcome(att.task, raw.get("value"), err, node, att.number, kind)


def parse_executor(spec: str) -> tuple[str, str | None]:
    """'local' | 'ray' | 'ray://HOST:PORT' -> (backend, address)."""
    if spec == "local":
        return "local", None
    if spec == "ray":
        return "ray", None
    if spec.startswith("ray://"):
        host, _, port = spec[len("ray://") :].rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise TinytrainError(f"--executor {spec}: give ray://HOST:PORT (e.g. ray://head-node:10001)")
        return "ray", spec
    raise TinytrainError(f"--executor {spec!r}: choose local, ray or ray://HOST:PORT")


def make_executor(
    spec: str,
    jobs: int,
    mode: str = "thread",
    mp_context: str = "spawn",
    initializer: Any = None,
    fingerprint: str | None = None,
) -> Executor:
    """The executor `--executor spec` names. `mode` (thread | process) and the rest shape the local one;
    `jobs` is its width (and a local Ray runtime's CPUs); `fingerprint` is the driver's code, which every
    Ray worker must run (default: computed here)."""
    backend, address = parse_executor(spec)
    if backend == "local":
        from tinytrain.executor.local import LocalExecutor

        return LocalExecutor(jobs, mode, mp_context, initializer)
    from tinytrain.executor.ray import RayExecutor

    return RayExecutor(address, jobs, fingerprint or worker_fingerprint())


def add_executor_flag(parser: Any) -> None:
    parser.add_argument(
        "--executor",
        default="local",
        metavar="local|ray|ray://HOST:PORT",
        help="where tasks run: this machine (default), a local Ray runtime started on demand, or an "
        "existing Ray cluster (pip install tinytrain[ray]; docs/scaling.md)",
    )
