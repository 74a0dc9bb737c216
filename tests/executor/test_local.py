"""The execution seam with the local executor: order, retries, failures with their reason and node, the
worker's toolchain check, bad --executor values, Ray missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tinytrain import TinytrainError
from tinytrain.executor import EMULATION_TOOLS, Task, make_executor, node_name, parse_executor
from tinytrain.executor.local import LocalExecutor

T = "tests.executor.tasks:"


def test_inline_runs_in_order_in_this_process():
    import os

    with LocalExecutor(1) as ex:
        outs = list(ex.map(Task(T + "square", (i,), f"t{i}") for i in range(4)))
    assert [o.value["square"] for o in outs] == [0, 1, 4, 9]
    assert all(o.ok and o.attempts == 1 and o.node == node_name() for o in outs)
    assert {o.value["pid"] for o in outs} == {os.getpid()}


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_pool_returns_every_task(mode):
    with LocalExecutor(2, mode, "fork") as ex:
        outs = list(ex.map(Task(T + "square", (i,), f"t{i}") for i in range(5)))
    assert sorted(o.value["square"] for o in outs) == [0, 1, 4, 9, 16]


def test_one_retry_then_a_failed_outcome_with_its_reason(tmp_path: Path):
    tasks = [Task(T + "fail_once", (str(tmp_path / "m"),), "flaky"), Task(T + "always_fail", (), "bad")]
    with LocalExecutor(1) as ex:
        by = {o.task.key: o for o in ex.map(tasks)}
    assert by["flaky"].ok and by["flaky"].attempts == 2 and by["flaky"].value == {"second": True}
    bad = by["bad"]
    assert not bad.ok and bad.kind == "error" and bad.attempts == 2
    assert bad.error == f"raised on {node_name()} (2 attempts): ValueError: bad row"


def test_a_dead_worker_process_is_retried_once(tmp_path: Path):
    tasks = [Task(T + "die_once", (str(tmp_path / "m"),), "dies-once")]
    with LocalExecutor(2, "process", "fork") as ex:
        outs = list(ex.map(tasks))
    # the death breaks the process pool; the retry runs in a new one
    assert len(outs) == 1 and outs[0].ok and outs[0].attempts == 2 and outs[0].value == {"survived": True}
    with LocalExecutor(2, "process", "fork") as ex:
        (out,) = ex.map([Task(T + "always_die", (), "dies")])
    assert not out.ok and out.kind == "crashed" and out.attempts == 2
    assert out.error.startswith("worker died (2 attempts): BrokenProcessPool")


def test_a_worker_without_the_toolchain_gives_a_failed_outcome_naming_node_and_tool(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither QEMU nor the Arm compiler
    with LocalExecutor(1) as ex:
        (out,) = ex.map([Task(T + "square", (3,), "row", EMULATION_TOOLS)])
    assert out.kind == "toolchain" and out.value is None and out.attempts == 1
    assert out.error.startswith(f"node {node_name()}: qemu-system-arm is not on PATH; arm-none-eabi-gcc")
    assert "apt-get install" in out.error


def test_bench_row_on_a_worker_without_qemu_is_a_failed_row(tmp_path, monkeypatch):
    from tinytrain.bench.config import BenchConfig, RowSpec
    from tinytrain.bench.runner import Runner

    monkeypatch.setenv("PATH", str(tmp_path))
    runner = Runner(tmp_path / "out", jobs=1, work_dir=tmp_path / "work", fingerprint="x")
    (res,) = runner.run(BenchConfig([RowSpec("mcunet-5fps", "last", "m7", 48)], [], False, "t"))
    row = res["row"]
    assert row["status"] == "failed" and row["board"] == "m7"
    assert f"node {node_name()}: qemu-system-arm is not on PATH" in row["error"]


def test_executor_values():
    assert parse_executor("local") == ("local", None)
    assert parse_executor("ray") == ("ray", None)
    assert parse_executor("ray://head:10001") == ("ray", "ray://head:10001")
    for bad in ("threads", "ray://head", "ray://:10001", "ray://head:99999"):
        with pytest.raises(TinytrainError, match="--executor"):
            parse_executor(bad)


def test_ray_not_installed_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    ex = make_executor("ray", 2, fingerprint="f")
    with pytest.raises(TinytrainError) as err:
        ex.start()
    assert str(err.value) == (
        "--executor ray needs Ray, which is not installed here: pip install tinytrain[ray]"
    )
    assert err.value.exit_code == 2


def test_bench_cli_ray_missing_exits_2_without_csv(tmp_path, monkeypatch, capsys):
    from tinytrain.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    code = main(
        [
            "bench",
            "--config",
            "bench/ci.toml",
            "--executor",
            "ray",
            "--out",
            str(tmp_path / "o"),
            "--work",
            str(tmp_path / "w"),
            "--no-report",
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [
        "tinytrain bench: error: --executor ray needs Ray, which is not installed here: "
        "pip install tinytrain[ray]"
    ]
    assert not (tmp_path / "o" / "bench.csv").exists()


def test_progress_lines_go_to_the_log_when_not_live_and_above_the_bar_when_live(capsys):
    from tinytrain.progress import Tracker, live_default

    logged: list[str] = []
    with Tracker("rows", 2, live=False, log=logged.append) as t:
        t.done(True, "row a ok")
        t.done(False, "row b failed")
    assert logged == ["row a ok", "row b failed"] and (t.finished, t.failures) == (2, 1)
    assert capsys.readouterr().err == ""
    with Tracker("rows", 3, live=True, log=logged.append) as t:
        for ok in (True, False, True):
            t.done(ok, f"line {ok}")
    err = capsys.readouterr().err
    assert "line True" in err and "line False" in err and "3/3" in err and "1 failed" in err
    assert len(logged) == 2  # live: nothing more in the log
    assert live_default(quiet=True) is False
    with Tracker("steps", 10, live=True) as t:  # the (done, total) hook a step loop (emulate) can call
        update = t.hook()
        for step in range(1, 6):
            update(step, 5)
    assert (t.finished, t.total) == (5, 5) and "5/5" in capsys.readouterr().err


def test_a_failed_evidence_run_is_reported_after_the_others_finish(tmp_path):
    import dataclasses

    from tinytrain.executor import TasksFailed
    from tinytrain.experiments.config import Settings, spec
    from tinytrain.experiments.pipeline import Store, execute

    tiny = Settings(datasets=("faces",), seeds=(0,), resolution=32, epochs=1, max_train=8)
    good = spec(tiny, dataset="faces", seed=0, scheme="last", lr=0.01, split="val")
    bad = dataclasses.replace(good, scheme="no-such-scheme")
    logs: list[str] = []
    with pytest.raises(TasksFailed, match="^1 of 2 runs failed") as err:
        execute([bad, good], Store(tmp_path), jobs=1, log=logs.append, longest_first=False)
    assert err.value.exit_code == 1
    assert Store(tmp_path).get(good) is not None and Store(tmp_path).get(bad) is None
    assert any(m.startswith(f"FAILED {bad.key()}: raised on {node_name()} (2 attempts)") for m in logs)
