"""The Ray executor on a local Ray runtime of 2 CPUs (started once for this module, ~5-15 s): the same
bench rows as the local executor, cached rows reused across executors, one retry, dead workers, the
toolchain and code-version checks on the workers, cancellation, and the one-line errors."""

from __future__ import annotations

import csv
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinytrain import REPO_ROOT, TinytrainError
from tinytrain.executor import Task, VersionMismatch, node_name

ray = pytest.importorskip("ray", reason="the optional extra tinytrain[ray]")

from tinytrain.executor.ray import RayExecutor  # noqa: E402

T = "tests.executor.tasks:"
FP = None  # the driver's code fingerprint, computed once


@pytest.fixture(scope="module")
def ray_ex() -> Iterator[RayExecutor]:
    from tinytrain.bench.runner import code_fingerprint

    old = os.environ.get("PYTHONPATH")
    # the workers import tinytrain and these tests' tasks from this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), old) if p)
    ex = RayExecutor(None, 2, code_fingerprint())
    try:
        with ex:
            yield ex
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]


def test_bench_rows_are_the_same_on_ray_and_cached_rows_are_reused(ray_ex, tmp_path):
    from tinytrain.bench.config import BenchConfig, RowSpec
    from tinytrain.bench.runner import Runner, write_csv

    rows = [
        RowSpec("mcunet-5fps", "full", "m4", 160),  # planned, does not fit: no firmware is built
        RowSpec("mcunet-5fps", "full", "m7", 144),
        RowSpec("mcunet-5fps", "no-such-scheme", "m7", 48),  # a failed row
    ]
    cfg = BenchConfig(rows, [], False, "t")
    fp = ray_ex.fingerprint
    local = Runner(tmp_path / "local", jobs=2, work_dir=tmp_path / "wl", fingerprint=fp).run(cfg)
    remote = Runner(tmp_path / "ray", work_dir=tmp_path / "wr", fingerprint=fp, executor=ray_ex).run(cfg)
    write_csv([r["row"] for r in local], tmp_path / "local.csv")
    write_csv([r["row"] for r in remote], tmp_path / "ray.csv")
    assert _rows(tmp_path / "local.csv") == _rows(tmp_path / "ray.csv")
    assert [r["row"]["status"] for r in remote] == ["does-not-fit", "does-not-fit", "failed"]
    # the rows the local run cached are reused by a Ray run (the failed one is re-run)
    msgs: list[str] = []
    again = Runner(
        tmp_path / "local", work_dir=tmp_path / "wl", fingerprint=fp, executor=ray_ex, progress=msgs.append
    ).run(cfg)
    assert [bool(r.get("cached")) for r in again] == [True, True, False]


def test_retry_failures_and_dead_workers_on_ray(ray_ex, tmp_path):
    tasks = [
        Task(T + "fail_once", (str(tmp_path / "a"),), "flaky"),
        Task(T + "always_fail", (), "bad"),
        Task(T + "die_once", (str(tmp_path / "b"),), "dies-once"),
        Task(T + "always_die", (), "dies"),
        Task(T + "square", (7,), "fine"),
    ]
    with ray_ex:
        by = {o.task.key: o for o in ray_ex.map(tasks)}
    assert by["fine"].ok and by["fine"].value["square"] == 49 and by["fine"].node == node_name()
    assert by["flaky"].ok and by["flaky"].attempts == 2
    assert (
        by["dies-once"].ok and by["dies-once"].attempts == 2 and by["dies-once"].value == {"survived": True}
    )
    assert by["bad"].error == f"raised on {node_name()} (2 attempts): ValueError: bad row"
    dead = by["dies"]
    assert (
        dead.kind == "crashed" and dead.attempts == 2 and dead.error.startswith("worker died (2 attempts): ")
    )


def test_a_worker_missing_a_tool_gives_a_failed_outcome_naming_node_and_tool(ray_ex):
    with ray_ex:
        (out,) = ray_ex.map([Task(T + "square", (2,), "needs", ("tinytrain-no-such-tool",))])
    assert out.kind == "toolchain" and out.attempts == 1
    assert out.error.startswith(f"node {node_name()}: tinytrain-no-such-tool is not on PATH")


def test_a_worker_with_other_code_stops_the_run(ray_ex):
    other = RayExecutor(None, 2, "0123456789abcdef")  # reuses this process's runtime
    with other, pytest.raises(VersionMismatch) as err:
        list(other.map([Task(T + "square", (1,), "x")]))
    assert f"worker {node_name()} runs tinytrain code {ray_ex.fingerprint}" in str(err.value)
    assert "driver 0123456789abcdef" in str(err.value) and err.value.exit_code == 2


def test_leaving_early_cancels_the_running_tasks(ray_ex):
    tasks = [Task(T + "sleep", (0.1,), "short")] + [Task(T + "sleep", (120,), f"long{i}") for i in range(2)]
    t0 = time.perf_counter()
    with ray_ex:
        for out in ray_ex.map(tasks):
            assert out.task.key == "short"
            break
    # both CPUs are free again: the long tasks were cancelled, not waited for
    with ray_ex:
        outs = list(ray_ex.map([Task(T + "square", (i,), f"s{i}") for i in range(2)]))
    assert len(outs) == 2 and time.perf_counter() - t0 < 60


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_cluster_is_a_one_line_error_without_csv(tmp_path, capsys):
    from tinytrain.cli import main

    port = _closed_port()
    t0 = time.perf_counter()
    code = main(
        ["bench", "--config", "bench/ci.toml", "--executor", f"ray://127.0.0.1:{port}"]
        + ["--out", str(tmp_path / "o"), "--work", str(tmp_path / "w"), "--no-report", "-q"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and time.perf_counter() - t0 < 30
    assert err[0].startswith(
        f"tinytrain bench: error: --executor ray://127.0.0.1:{port}: cannot reach the Ray"
    )
    assert not (tmp_path / "o" / "bench.csv").exists()
    with pytest.raises(TinytrainError, match="cannot reach"):
        RayExecutor(f"ray://127.0.0.1:{port}", 1, "f").start()


@pytest.mark.slow  # ~17 s on 2 busy cores: the default run keeps the Ray tests under a minute
def test_evidence_runs_and_contribution_measurements_are_the_same_on_ray(ray_ex, tmp_path):
    from tinytrain.experiments.config import Settings, spec
    from tinytrain.experiments.pipeline import Store, execute
    from tinytrain.sparse.contrib import AnalysisSettings, analyze

    tiny = Settings(datasets=("faces",), seeds=(0,), resolution=32, epochs=1, max_train=8)
    specs = [spec(tiny, dataset="faces", seed=0, scheme="last", lr=lr, split="val") for lr in (0.01, 0.03)]
    local = execute(specs, Store(tmp_path / "el"), jobs=1, log=lambda m: None)
    remote = execute(specs, Store(tmp_path / "er"), log=lambda m: None, executor=ray_ex)
    timing = ("seconds", "cpu_seconds")
    assert [{k: v for k, v in r.items() if k not in timing} for r in local] == [
        {k: v for k, v in r.items() if k not in timing} for r in remote
    ]
    s = AnalysisSettings(
        model="mcunet-5fps",
        dataset="faces",
        resolution=32,
        steps=4,
        test_images=8,
        layers=("blocks.13.pointwise1",),
        ratios=(1.0,),
        bias_ks=(0,),
    )
    a = analyze(s, workers=1, cache_root=tmp_path / "cl", progress=lambda m: None)
    b = analyze(s, cache_root=tmp_path / "cr", progress=lambda m: None, executor=ray_ex)
    drop = lambda d: {**d, "runs": [{k: v for k, v in r.items() if k != "seconds"} for r in d["runs"]]}  # noqa: E731
    assert drop(a.to_dict()) == drop(b.to_dict()) and len(b.runs) == 3


def test_an_address_that_is_not_a_ray_client_server_is_refused_quickly():
    with socket.socket() as srv:  # accepts connections, never speaks gRPC
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        t0 = time.perf_counter()
        with pytest.raises(TinytrainError, match="no Ray Client server answered within 1 s"):
            RayExecutor(f"ray://127.0.0.1:{port}", 1, "f", connect_timeout=1.0).start()
        assert time.perf_counter() - t0 < 10
