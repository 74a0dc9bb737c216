"""Matrix configs, MACs from the program, the runner's failure isolation and cache (no QEMU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinytrain import REPO_ROOT, TinytrainError
from tinytrain.bench.config import RowSpec, load_config, parse_config
from tinytrain.bench.macs import program_macs
from tinytrain.bench.runner import Runner, read_csv, write_csv


def test_shipped_configs_parse() -> None:
    full = load_config(REPO_ROOT / "bench" / "matrix.toml")
    models = {r.model for r in full.rows}
    assert models == {"mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"}
    # every paper budget of every model, plus the three contrasts, on both boards at 128
    at128 = [r for r in full.rows if r.resolution == 128]
    assert len(at128) == 3 * 8 * 2
    assert RowSpec("proxyless-w0.3", "paper:98kb", "m7", 128) in at128
    assert {t.scheme for t in full.torch if t.model == "proxyless-w0.3"} == {"full", "paper:98kb"}
    ci = load_config(REPO_ROOT / "bench" / "ci.toml")
    assert [(r.board, r.resolution) for r in ci.rows] == [("m7", 48), ("m4", 48)]
    assert not ci.paper and not ci.torch
    assert {r.key() for r in ci.rows} <= {r.key() for r in full.rows}  # the baseline holds the CI rows


def test_bad_configs_are_rejected() -> None:
    with pytest.raises(TinytrainError, match="unknown section"):
        parse_config({"matrx": []})
    with pytest.raises(TinytrainError, match="non-empty list"):
        parse_config(
            {"matrix": [{"models": ["mcunet-5fps"], "schemes": [], "boards": ["m7"], "resolutions": [48]}]}
        )
    with pytest.raises(TinytrainError, match="unknown key"):
        parse_config(
            {
                "matrix": [
                    {
                        "models": ["m"],
                        "schemes": ["full"],
                        "boards": ["m7"],
                        "resolutions": [48],
                        "board": "m4",
                    }
                ]
            }
        )


def test_macs_full_forward_equals_the_network() -> None:
    from tinytrain.emulate import compile_program, load_graph

    graph = load_graph("mcunet-5fps", 48, 2, 0)
    full = program_macs(compile_program(graph, "full", "nearest"))
    assert full["forward"] == graph.macs()
    assert full["wgrad"] == graph.macs()  # every layer's weight gradient costs its forward MACs
    assert 0 < full["backward"] < graph.macs()  # no input gradient for the stem
    last = program_macs(compile_program(graph, "last", "nearest"))
    assert last["backward"] == 0 and last["total"] == last["forward"] + last["wgrad"]


def test_runner_isolates_failures_and_caches(tmp_path: Path) -> None:
    from tinytrain.bench.config import BenchConfig

    rows = [
        RowSpec("mcunet-5fps", "no-such-scheme", "m7", 48),
        RowSpec("mcunet-5fps", "full", "m4", 160),  # planned, far too big for 256 KB: not built
    ]
    msgs: list[str] = []
    runner = Runner(
        tmp_path / "out", jobs=2, progress=msgs.append, work_dir=tmp_path / "work", fingerprint="x"
    )
    res = runner.run(BenchConfig(rows, [], True, "test"))
    by = {r["row"]["scheme"]: r["row"] for r in res if r["row"]["kind"] == "device"}
    assert by["no-such-scheme"]["status"] == "failed" and "scheme" in by["no-such-scheme"]["error"]
    dnf = by["full"]
    assert dnf["status"] == "does-not-fit" and dnf["error"].startswith("does not fit: ")
    assert dnf["pred_total"] > 262_144 and dnf["macs_total"] > 0 and dnf.get("sram_total") is None
    assert sum(1 for r in res if r["row"]["kind"] == "paper") == 1
    write_csv([r["row"] for r in res], tmp_path / "b.csv")
    back = read_csv(tmp_path / "b.csv")
    assert [r["status"] for r in back] == ["reference", "failed", "does-not-fit"]
    # resumed: the final row comes from the cache, the failed one is re-run
    again = Runner(tmp_path / "out", jobs=1, work_dir=tmp_path / "work", fingerprint="x").run(
        BenchConfig(rows, [], False, "t")
    )
    assert [bool(r.get("cached")) for r in again] == [False, True]


def test_baseline_update_merges() -> None:
    from tinytrain.bench.runner import merge_baseline

    a = {"kind": "device", "model": "m", "scheme": "s", "board": "m7", "resolution": 48, "sram_total": 1}
    b = {**a, "board": "m4"}
    new_a = {**a, "sram_total": 2}
    c = {**a, "resolution": 64}
    merged = merge_baseline([a, b], [new_a, c, {"kind": "paper", "model": "m"}])
    assert merged == [new_a, b, c]


def test_macs_do_not_depend_on_the_fused_block_backward() -> None:
    from tinytrain.compiler import CompileOptions, compile_training
    from tinytrain.emulate import load_graph

    graph = load_graph("mcunet-5fps", 48, 2, 0)
    fused = program_macs(compile_training(graph, "paper:99kb", CompileOptions()))
    plain = program_macs(compile_training(graph, "paper:99kb", CompileOptions(fused_block_backward=False)))
    assert (fused["backward"], fused["wgrad"]) == (plain["backward"], plain["wgrad"])
