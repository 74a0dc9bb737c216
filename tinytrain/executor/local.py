"""The local executor: tasks on this machine. `jobs` 1 runs them here, one after the other, in the given
order (nothing is started); more runs `jobs` at a time in threads (`mode="thread"`: for tasks that start
their own subprocess, as a benchmark row does) or in worker processes (`mode="process"`, with the given
multiprocessing start method and initializer: for tasks that compute in Python)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections import deque
from typing import Any

from tinytrain.executor import Executor, Task, run_task


class LocalExecutor(Executor):
    name = "local"

    def __init__(
        self, jobs: int = 1, mode: str = "thread", mp_context: str = "spawn", initializer: Any = None
    ):
        super().__init__()
        if mode not in ("thread", "process"):
            raise ValueError(f"mode {mode!r}: thread or process")
        self.workers = max(1, jobs)
        self.mode, self.mp_context, self.initializer = mode, mp_context, initializer
        self._pool: cf.Executor | None = None
        self._queue: deque[int] = deque()  # jobs == 1: the tasks not run yet, in order
        self._tasks: dict[int, Task] = {}
        self._count = 0

    def start(self) -> None:
        if self.workers == 1:
            return
        if self.mode == "thread":
            self._pool = cf.ThreadPoolExecutor(max_workers=self.workers)
        else:
            ctx = multiprocessing.get_context(self.mp_context)
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=self.initializer)

    def close(self) -> None:
        super().close()
        self._queue.clear()
        self._tasks.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _submit(self, task: Task) -> Any:
        if self._pool is None:  # one at a time, here, when asked for the next result
            self._count += 1
            self._tasks[self._count] = task
            self._queue.append(self._count)
            return self._count
        try:
            return self._pool.submit(run_task, task)
        except cf.BrokenExecutor:  # a worker process died and took the pool with it: a new pool
            self._pool.shutdown(wait=False, cancel_futures=True)
            self.start()
            assert self._pool is not None
            return self._pool.submit(run_task, task)

    def _next_done(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
        if self._pool is None:
            h = self._queue.popleft()
            return [(h, run_task(self._tasks.pop(h)))]
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        out = []
        for fut in done:
            try:
                out.append((fut, fut.result()))
            except Exception as exc:  # a worker process died (BrokenProcessPool) or the pool is gone
                out.append((fut, {"kind": "crashed", "error": f"{type(exc).__name__}: {exc}"}))
        return out

    def _cancel(self, handles: list[Any]) -> None:
        for h in handles:
            if isinstance(h, cf.Future):
                h.cancel()
            else:  # not run yet (jobs 1): dropped
                self._tasks.pop(h, None)
        dropped = set(handles)
        self._queue = deque(h for h in self._queue if h not in dropped)
