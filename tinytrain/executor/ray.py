"""The Ray executor: `--executor ray` starts a local Ray runtime (this machine's `jobs` CPUs) for the
command and stops it after; `--executor ray://HOST:PORT` connects to an existing cluster through the Ray
Client (docs/scaling.md). Each task is one Ray task of 1 CPU running `tinytrain.executor.run_task`; the
driver's code fingerprint goes with it and a worker with other code stops the run (exit 2).

Ray is an optional extra (`pip install tinytrain[ray]`); without it, `--executor ray` is a one-line error.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from tinytrain import TinytrainError
from tinytrain.executor import Executor, Task, run_task

#: Seconds to reach a cluster's address before giving up (a one-line error, exit 2).
CONNECT_TIMEOUT = 5.0
#: How often the driver wakes up while waiting (Ctrl-C is handled within this).
POLL = 0.5


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise TinytrainError(
            "--executor ray needs Ray, which is not installed here: pip install tinytrain[ray]"
        ) from None
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """A TCP connection, then a gRPC handshake (the Ray Client server speaks gRPC), each within `timeout`:
    otherwise a one-line error, instead of the Ray Client's own retries (about 30 s)."""
    host, _, port = address[len("ray://") :].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise TinytrainError(
            f"--executor {address}: cannot reach the Ray cluster within {timeout:g} s ({exc}); is "
            "`ray start --head` running there with its client server on that port?"
        ) from None
    try:
        import grpc
    except ImportError:  # Ray without the client extra: ray.init says what is missing
        return
    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise TinytrainError(
            f"--executor {address}: something listens there but no Ray Client server answered within "
            f"{timeout:g} s; give the head node's --ray-client-server-port (default 10001)"
        ) from None
    finally:
        channel.close()


class RayExecutor(Executor):
    name = "ray"

    def __init__(
        self,
        address: str | None,
        jobs: int,
        fingerprint: str | None,
        runtime_env: dict[str, Any] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.address = address
        self.jobs = max(1, jobs)
        self.fingerprint = fingerprint
        self.runtime_env = runtime_env
        self.connect_timeout = connect_timeout
        self.startup_seconds = 0.0
        self._ray: Any = None
        self._remote: Any = None
        self._owned = False  # this executor started the runtime (and stops it)

    def start(self) -> None:
        ray = self._ray = import_ray()
        t0 = time.perf_counter()
        if self.address:
            check_reachable(self.address, self.connect_timeout)
        if not ray.is_initialized():  # else: this process's Ray (e.g. a test's runtime) is used as it is
            if self.address:
                try:
                    ray.init(address=self.address, log_to_driver=False)
                except Exception as exc:  # reachable but not a Ray client server
                    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    hint = (
                        "; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token and "
                        "its token here (~/.ray/auth_token or RAY_AUTH_TOKEN)"
                        if "timeout" in msg and os.environ.get("RAY_AUTH_MODE") != "token"
                        else ""
                    )
                    raise TinytrainError(
                        f"--executor {self.address}: cannot connect to Ray: {msg}{hint}"
                    ) from None
            else:
                ray.init(
                    address="local",  # a new runtime, even when `ray start` left a cluster on this machine
                    num_cpus=self.jobs,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            self._owned = True
        self.startup_seconds = time.perf_counter() - t0
        opts: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
        if self.runtime_env:
            opts["runtime_env"] = self.runtime_env
        self._remote = ray.remote(**opts)(run_task)
        self.workers = max(1, int(ray.cluster_resources().get("CPU", self.jobs)))

    def close(self) -> None:
        super().close()
        if self._owned and self._ray is not None:
            self._ray.shutdown()
            self._owned = False

    def _submit(self, task: Task) -> Any:
        return self._remote.remote(task, self.fingerprint)

    def _next_done(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
        ray = self._ray
        ready: list[Any] = []
        while not ready:
            ready, _ = ray.wait(handles, num_returns=1, timeout=POLL)
        out = []
        for ref in ready:
            try:
                out.append((ref, ray.get(ref)))
            except ray.exceptions.RayError as exc:  # the worker died, was killed, or the node went away
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                out.append((ref, {"kind": "crashed", "error": f"{type(exc).__name__}: {first}"}))
        return out

    def _cancel(self, handles: list[Any]) -> None:
        for ref in handles:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished or gone
                pass
