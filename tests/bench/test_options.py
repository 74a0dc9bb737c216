"""Compiler options per bench row (issue 12): the TOML `options` tables, their validation, the row key and
the `options` CSV column (round trip through the CSV and the row cache), the lever report, and one QEMU row
with a lever off."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tinytrain import TinytrainError
from tinytrain.bench.config import BenchConfig, RowSpec, options_text, parse_config, parse_options_text
from tinytrain.bench.report import lever_savings, write_report
from tinytrain.bench.runner import Runner, read_csv, row_key, spec_of_row, write_csv
from tinytrain.cli import main

BASE = "mcunet-5fps|paper:99kb|m7|r48|faces|c2|s2"


def _matrix(**over: Any) -> dict[str, Any]:
    block = {"models": ["mcunet-5fps"], "schemes": ["paper:99kb"], "boards": ["m7"], "resolutions": [48]}
    return {"matrix": [{**block, **over}]}


def test_options_make_rows_and_keys() -> None:
    cfg = parse_config(
        _matrix(
            options=[
                {},
                {"split_weights": False},
                {"split_weights": True},  # = the defaults: the same row as {}
                {"patch_grid": 2, "patch_cut": 3, "patch": True},
                {"patch_max_overhead": 1, "update_rule": "nearest"},
            ]
        ),
        "t.toml",
    )
    assert [r.key() for r in cfg.rows] == [
        BASE,  # default options: the key rows had before options existed (the baseline still matches)
        f"{BASE}|split_weights=false",
        f"{BASE}|patch_cut=3,patch_grid=2",  # field order, defaults dropped
        f"{BASE}|update_rule=nearest,patch_max_overhead=1.0",
    ]
    assert cfg.rows[0].slug() == RowSpec("mcunet-5fps", "paper:99kb", "m7", 48).slug()
    assert len({r.slug() for r in cfg.rows}) == 4 and all("," not in r.slug() for r in cfg.rows)
    opts = cfg.rows[3].compile_options()
    assert (opts.update_rule, opts.patch_max_overhead, opts.split_weights) == ("nearest", 1.0, True)
    assert cfg.rows[1].compile_options().split_weights is False
    assert parse_options_text(cfg.rows[2].options, "x") == {"patch_cut": 3, "patch_grid": 2}
    # no `options`: one row with the defaults, as before
    assert [r.options for r in parse_config(_matrix(), "t").rows] == [""]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            [{}, {"split_weight": False}],
            "t.toml [[matrix]] #1 options #2: unknown compiler option `split_weight`",
        ),
        ([{"split_weights": 0}], "options #1: compiler option `split_weights` must be a bool, got 0"),
        ([{"patch_grid": 2.5}], "compiler option `patch_grid` must be a int, got 2.5"),
        ([{"patch_grid": True}], "compiler option `patch_grid` must be a int, got True"),
        ([{"update_rule": "bogus"}], "options #1: unknown update rule 'bogus'"),
        ([{"momentum": 1.5}], "options #1: "),
        (["split_weights"], "options #1: must be a table of compiler options"),
        ([], "`options` must be a non-empty list of tables"),
        ({"split_weights": False}, "`options` must be a non-empty list of tables"),
    ],
)
def test_bad_options_name_the_entry(options: Any, message: str) -> None:
    with pytest.raises(TinytrainError) as err:
        parse_config(_matrix(options=options), "t.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_options_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[matrix]]\nmodels = ["mcunet-5fps"]\nschemes = ["last"]\nboards = ["m7"]\nresolutions = [48]\n'
        "options = [{}, {no_patch = true}]\n"
    )
    assert main(["bench", "--config", str(bad), "--out", str(tmp_path / "o"), "-j", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "options #2: unknown compiler option `no_patch`" in err


def test_options_text_round_trips() -> None:
    for table in ({}, {"reorder": False, "inplace": False}, {"head_lr_scale": 30.0, "accumulate": 4}):
        text = options_text(table, "x")
        assert options_text(parse_options_text(text, "x"), "x") == text
    with pytest.raises(TinytrainError, match="row r: compiler option `split_weights` must be a bool"):
        parse_options_text("split_weights=no", "row r")
    with pytest.raises(TinytrainError, match="expected name=value"):
        parse_options_text("split_weights", "row r")


def test_options_column_round_trips_csv_and_gate_key(tmp_path: Path) -> None:
    rows = [
        {"kind": "device", "model": "mcunet-5fps", "scheme": "paper:99kb", "board": "m7", "resolution": 48,
         "dataset": "faces", "classes": 2, "steps": 2, "options": opts, "status": "ok"}
        for opts in ("", "split_weights=false", "patch_cut=3,patch_grid=2")
    ]  # fmt: skip
    write_csv(rows, tmp_path / "b.csv")
    back = read_csv(tmp_path / "b.csv")
    assert [r["options"] for r in back] == [None, "split_weights=false", "patch_cut=3,patch_grid=2"]
    assert [row_key(r) for r in back] == [
        BASE,
        f"{BASE}|split_weights=false",
        f"{BASE}|patch_cut=3,patch_grid=2",
    ]
    assert spec_of_row(back[1]).compile_options().split_weights is False
    # a CSV from before the column (results/baseline.csv): the same keys as rows with default options
    old = tmp_path / "old.csv"
    old.write_text("kind,model,scheme,board,resolution,dataset,classes,steps,status\n"
                   "device,mcunet-5fps,paper:99kb,m7,48,faces,2,2,ok\n")  # fmt: skip
    assert row_key(read_csv(old)[0]) == BASE


def _lever_row(options: str, sram: int, pred: int, **over: Any) -> dict[str, Any]:
    row = {
        "kind": "device", "model": "mcunet-5fps", "scheme": "paper:99kb", "board": "m7", "resolution": 80,
        "dataset": "faces", "classes": 2, "steps": 2, "options": options, "status": "ok",
        "sram_total": sram, "pred_total": pred, "sram_arena": sram - 40_000, "pred_arena": pred - 40_000,
        "sram_stack_hw": 3000, "instr_total": 60_000_000, "matched_reference": True,
    }  # fmt: skip
    row.update(over)
    return row


def test_lever_report(tmp_path: Path) -> None:
    rows = [
        _lever_row("", 110_000, 111_000),
        _lever_row("split_weights=false", 183_728, 184_728, sram_arena=70_000, pred_arena=71_000),
        _lever_row("patch=false", 0, 130_000, status="does-not-fit", sram_total=None),
        _lever_row("split_weights=false", 1, 1, board="m4"),  # no default twin on m4: left out
        _lever_row("reorder=false,patch=false", 300_000, 301_000),
        _lever_row("patch_grid=2", 100_000, 101_000),
    ]
    lv = lever_savings(rows)
    assert [x["lever"] for x in lv] == [
        "`split_weights` off",
        "`patch` off",
        "`reorder` + `patch` off",
        "`patch_grid=2`",
    ]
    assert lv[3]["measured"] == -10_000  # negative: these options use less than the defaults
    assert (lv[0]["measured"], lv[0]["predicted"], lv[0]["difference"]) == (73_728, 73_728, 0)
    assert (lv[0]["arena_measured"], lv[0]["arena_predicted"]) == (0, 0)
    assert lv[1]["measured"] is None and lv[1]["predicted"] == 19_000
    results = [{"row": r, "detail": {}} for r in rows]
    made = write_report(results, tmp_path, {"command": "test", "fingerprint": "0"})
    md = made["levers"].read_text()
    assert "| `split_weights` off | ok | 183,728 | +73,728 | +73,728 | +0 |" in md
    assert "| `patch` off | does-not-fit |  |  | +19,000 |" in md
    assert "Levers: measured saving vs predicted saving" in made["summary"].read_text()
    html = made["html"].read_text()
    assert "<td>110,000</td><td>183,728</td><td>+73,728</td><td>+73,728</td><td>+0</td>" in html


@pytest.mark.qemu
@pytest.mark.skipif(
    not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
    reason="QEMU / arm toolchain not installed",
)
def test_a_row_with_a_lever_off_runs_and_is_cached(tmp_path: Path) -> None:
    from emulation.boards import get_board
    from tinytrain.compiler import CompileOptions
    from tinytrain.job import assemble

    spec = RowSpec("mcunet-5fps", "paper:99kb", "m7", 48, steps=1, timeout=300, options="split_weights=false")
    runner = Runner(tmp_path / "out", jobs=1, work_dir=tmp_path / "work", fingerprint="t")
    (res,) = runner.run(BenchConfig([spec], [], False, "t"))
    row = res["row"]
    assert row["status"] == "ok", row.get("error")
    assert row["options"] == "split_weights=false" and row["matched_reference"] is True
    # the lever reached the plan: the row's prediction is the lever-off plan, larger than the default's
    board = get_board("m7")
    plans = {
        k: assemble("mcunet-5fps", "paper:99kb", CompileOptions(split_weights=k), resolution=48, classes=2,
                    board=board).plan
        for k in (True, False)
    }  # fmt: skip
    assert row["pred_total"] == plans[False].total > plans[True].total
    # ... and the firmware: every trained weight is whole in SRAM, as the plan says
    assert row["sram_trainable"] == row["pred_trainable_weights"] + row["pred_trainable_biases"]
    assert row["pred_trainable_weights"] > dict(plans[True].breakdown)["trainable_weights"]
    # the options column through the CSV and the row cache
    write_csv([row], tmp_path / "b.csv")
    (back,) = read_csv(tmp_path / "b.csv")
    assert spec_of_row(back, timeout=300) == RowSpec(**{**spec.to_dict(), "check_reference": True})
    assert row_key(back) == spec.key()
    (again,) = runner.run(BenchConfig([spec], [], False, "t"))
    assert again.get("cached") and again["row"]["options"] == "split_weights=false"
    assert again["row"]["sram_total"] == row["sram_total"]
