"""`tinytrain emulate` on the command line: argument checking, --json record, --dump-params."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.codegen.tiny_model import tiny_graph
from tinytrain.cli import main

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")


def test_missing_arguments_is_a_usage_error(capsys):
    assert main(["emulate", "--model", "mcunet-5fps"]) == 2
    assert "missing --scheme" in capsys.readouterr().err


def test_defaults_are_overridable():
    from tinytrain.cli import build_parser
    from tinytrain.cli.emulate import config_from_args

    args = build_parser().parse_args(["emulate", "--defaults", "--resolution", "48", "--steps", "3"])
    cfg = config_from_args(args)
    assert (cfg.model, cfg.scheme, cfg.dataset, cfg.classes, cfg.board) == (
        "mcunet-5fps",
        "paper:99kb",
        "faces",
        2,
        "m7",
    )
    assert cfg.resolution == 48 and cfg.steps == 3 and cfg.backend == "qemu"


def test_plan_too_large_exits_2_with_breakdown(capsys):
    rc = main(["emulate", "--defaults", "--board", "m4", "--resolution", "224", "--steps", "1", "--no-save"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not fit" in err and "arena" in err


@needs_gcc
def test_json_record_and_dump_params(tmp_path, capsys):
    model = tmp_path / "tiny"
    tiny_graph().save(model)
    out = tmp_path / "trained.npz"
    rc = main(
        [
            "emulate",
            "--model",
            str(model),
            "--scheme",
            "full",
            "--dataset",
            "faces",
            "--classes",
            "2",
            "--resolution",
            "8",
            "--board",
            "m7",
            "--steps",
            "6",
            "--host",
            "--max-test",
            "8",
            "--dump-params",
            str(out),
            "--json",
            "--no-save",
        ]
    )
    rec = json.loads(capsys.readouterr().out)
    assert rc == 0 and rec["matched_reference"] is True and rec["steps"] == 6
    for key in (
        "board",
        "model",
        "scheme",
        "steps",
        "losses",
        "accuracy_before",
        "accuracy_after",
        "instructions_per_step",
        "est_cycles_per_step",
        "sram",
        "sram_predicted",
        "flash_bytes",
        "matched_reference",
    ):
        assert key in rec
    params = np.load(out)
    assert "w:classifier" in params.files and params["w:classifier"].dtype == np.int8
