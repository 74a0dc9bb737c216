"""The job's configuration: nested CompileOptions, lever flags from the command line, where outputs go."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinytrain import TinytrainError
from tinytrain.cli import build_parser
from tinytrain.cli.emulate import config_from_args
from tinytrain.compiler import CompileOptions
from tinytrain.job import DEFAULTS, JobConfig, config_from_defaults


def _cfg(*argv: str) -> JobConfig:
    return config_from_args(build_parser().parse_args(["emulate", *argv]))


def test_every_lever_flag_reaches_the_compile_options():
    cfg = _cfg(
        "--defaults", "--no-reorder", "--no-split-weights", "--no-patch", "--patch-grid", "3", "--no-qas"
    )
    o = cfg.options
    assert (o.reorder, o.split_weights, o.patch, o.patch_grid, o.qas) == (False, False, False, 3, False)
    assert o.head_lr_scale == DEFAULTS["head_lr_scale"] and o.inplace and o.input_in_arena
    # a lever that is not the default names the build directory (two ablations never share one)
    assert "no-reorder" in cfg.key() and "no-split_weights" in cfg.key() and "patch_grid3" in cfg.key()
    assert config_from_defaults().key() == "mcunet-5fps-paper-99kb-faces-r80-m7-head30"


def test_compile_and_emulate_share_the_lever_flags():
    c = build_parser().parse_args(["compile", "--model", "m", "--no-inplace-dw-grad", "--patch-cut", "4"])
    e = build_parser().parse_args(["emulate", "--defaults", "--no-inplace-dw-grad", "--patch-cut", "4"])
    from tinytrain.cli.levers import lever_options

    assert lever_options(c) == lever_options(e)
    assert lever_options(e)["inplace_dw_grad"] is False and lever_options(e)["patch_cut"] == 4


def test_from_fields_splits_options_and_rejects_unknown_settings():
    cfg = JobConfig.from_fields(model="m", momentum=0.5, split_weights=False, steps=3)
    assert cfg.options == CompileOptions(momentum=0.5, split_weights=False) and cfg.steps == 3
    assert cfg.momentum == 0.5 and cfg.flat()["split_weights"] is False
    with pytest.raises(TinytrainError, match="unknown job setting"):
        JobConfig.from_fields(model="m", learning_rate=0.1)


def test_only_the_main_job_writes_the_main_job_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main = _cfg("--defaults")
    assert main.is_main_job() and main.command() == "tinytrain emulate --defaults"
    assert main.report_dir == str(Path("results") / "main-job")  # relative: under the current directory
    for variant in (("--steps", "2"), ("--no-patch",), ("--resolution", "48"), ("--no-profile",)):
        cfg = _cfg("--defaults", *variant)
        assert not cfg.is_main_job(), variant
        assert Path(cfg.report_dir) == tmp_path / "results" / "reports" / cfg.key()
    assert _cfg("--defaults", "--timeout", "60").is_main_job()  # a time limit does not change the result
    assert _cfg("--defaults", "--no-report").report_dir is None


def test_outputs_go_under_the_current_directory(tmp_path, monkeypatch):
    from tinytrain.job import paths

    monkeypatch.chdir(tmp_path)
    assert paths.build_root() == tmp_path / "build" / "emulate"
    assert paths.runs_dir() == tmp_path / "results" / "runs"


@pytest.mark.parametrize(
    "flag,value", [("--patch-max-overhead", "-1"), ("--patch-max-network-overhead", "nan")]
)
def test_a_bad_patch_budget_is_refused_in_one_line_before_work(tmp_path, capsys, flag, value):
    from tinytrain.cli import main

    out = tmp_path / "out"
    for argv in (
        ["compile", "--model", "no-such-model", flag, value, "--out", str(out)],  # refused before the model
        ["emulate", "--defaults", flag, value, "--report", str(out)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert (
            len(err) == 1 and f"({flag}) must be a finite number >= 0" in err[0] and "Traceback" not in err[0]
        )
    assert not out.exists()
    with pytest.raises(TinytrainError, match="patch_max_network_overhead"):
        CompileOptions(patch_max_network_overhead=-0.1)
