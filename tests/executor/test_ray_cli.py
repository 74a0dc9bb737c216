"""`tinytrain bench --executor ray` end to end, each in its own process (its own local Ray runtime): a
worker without QEMU and the Arm compiler gives a failed row naming the node and the tools; and (slow) the
CI matrix gives the same CSV on Ray as locally, apart from the wall time."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinytrain import REPO_ROOT
from tinytrain.executor import node_name

pytest.importorskip("ray", reason="the optional extra tinytrain[ray]")

ONE_ROW = """[bench]
dataset = "faces"
classes = 2
steps = 2

[[matrix]]
models = ["mcunet-5fps"]
schemes = ["last"]
boards = ["m7"]
resolutions = [48]

[paper]
include = false
"""


def bench(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "import sys; from tinytrain.cli import main; sys.exit(main(sys.argv[1:]))"]
    base = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(cmd + ["bench", *args], capture_output=True, text=True, env=base, timeout=900)


def test_a_ray_worker_without_the_toolchain_gives_a_failed_row(tmp_path: Path):
    (tmp_path / "one.toml").write_text(ONE_ROW)
    empty = tmp_path / "bin"
    empty.mkdir()
    # the local runtime's workers inherit this PATH: no QEMU, no arm-none-eabi-gcc
    out = bench(
        ["--config", str(tmp_path / "one.toml"), "--executor", "ray", "--out", str(tmp_path / "o")]
        + ["--work", str(tmp_path / "w"), "--no-report"],
        {"PATH": str(empty)},
    )
    assert out.returncode == 1, out.stderr
    (row,) = list(csv.DictReader((tmp_path / "o" / "bench.csv").open()))
    assert row["status"] == "failed"
    assert row["error"].startswith(
        f"node {node_name()}: qemu-system-arm is not on PATH; arm-none-eabi-gcc is not on PATH"
    )


def _rows(path: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(path.open())]


@pytest.mark.slow
@pytest.mark.qemu
def test_ci_matrix_same_csv_on_ray_and_locally(tmp_path: Path):
    common = ["--config", str(REPO_ROOT / "bench" / "ci.toml"), "--no-report", "--fresh", "-j", "2"]
    loc = bench(common + ["--out", str(tmp_path / "local"), "--work", str(tmp_path / "wl")])
    assert loc.returncode == 0, loc.stdout + loc.stderr
    ray = bench(
        common + ["--executor", "ray", "--out", str(tmp_path / "ray"), "--work", str(tmp_path / "wr")]
    )
    assert ray.returncode == 0, ray.stdout + ray.stderr
    a, b = _rows(tmp_path / "local" / "bench.csv"), _rows(tmp_path / "ray" / "bench.csv")
    assert len(a) == 2 and all(r["status"] == "ok" for r in a)
    assert a == b
