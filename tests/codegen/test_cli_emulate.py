"""`tinytrain emulate` on the command line: argument checking, --json record, --dump-params."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.compiler.helpers import tiny_graph
from tinytrain.cli import main

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")

#: The fields of the run record `tinytrain emulate --json` promises (issue 5, part 5).
RECORD_FIELDS = (
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
)


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


def test_update_rule_default_and_head_lr_scale_flow_to_the_compiler():
    from tinytrain.cli import build_parser
    from tinytrain.cli.emulate import config_from_args
    from tinytrain.compiler import DEFAULT_UPDATE_RULE, CompileOptions
    from tinytrain.emulate import EmulateConfig

    # one default everywhere: the compiler's, the emulate config's, and the CLI's (flag not given)
    assert DEFAULT_UPDATE_RULE == "stochastic"
    assert CompileOptions().update_rule == EmulateConfig("m", "s", "faces").update_rule == DEFAULT_UPDATE_RULE
    args = build_parser().parse_args(["emulate", "--defaults", "--head-lr-scale", "4"])
    cfg = config_from_args(args)
    assert cfg.update_rule == DEFAULT_UPDATE_RULE and cfg.head_lr_scale == 4.0
    assert cfg.key().endswith("-head4")
    args = build_parser().parse_args(["compile", "--model", "mcunet-5fps", "--scheme", "last"])
    assert args.update_rule == DEFAULT_UPDATE_RULE and args.head_lr_scale == 1.0


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
    for key in RECORD_FIELDS:
        assert key in rec, key
    params = np.load(out)
    assert "w:classifier" in params.files and params["w:classifier"].dtype == np.int8


@pytest.mark.qemu
@pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="QEMU / arm toolchain not installed",
)
def test_main_job_shortened(tmp_path, capsys):
    """The default job (`--defaults`: MCUNet-5FPS + paper:99kb on faces at 80x80 on m7), cut to 8 steps:
    every per-step loss equals the host reference's bit for bit, the per-phase counts are exact and add up
    to the step total, the classifier-only baseline ran, the report was written, and the summary says so."""
    from tinytrain.emulate import PHASES, summary

    report = tmp_path / "report"
    rc = main(
        [
            "emulate",
            "--defaults",
            "--steps",
            "8",
            "--max-test",
            "6",
            "--report",
            str(report),
            "--json",
            "--no-save",
        ]
    )
    captured = capsys.readouterr()
    rec = json.loads(captured.out)
    assert rc == 0
    for key in RECORD_FIELDS:
        assert key in rec, key
    assert (rec["model"], rec["scheme"], rec["dataset"], rec["board"], rec["resolution"]) == (
        "mcunet-5fps",
        "paper:99kb",
        "faces",
        "m7",
        80,
    )
    # device agreement: every step's loss bit-equal to the host reference, parameters identical
    assert rec["matched_reference"] is True and rec["steps"] == 8
    assert rec["losses"] == rec["match"]["reference_losses"] and rec["match"]["params"]
    # exact per-phase counts (flat phase markers + the plugin); the phases add up to the step total
    ips = rec["instructions_per_step"]
    assert rec["instructions_source"] == "plugin" and rec["profile_phase_alignment"]["complete"]
    assert all(ips[p] > 0 for p in PHASES) and sum(ips[p] for p in PHASES) == ips["total"]
    assert ips["total"] < rec["instructions_per_step_call_systick"] < 1.01 * ips["total"]
    per_step = rec["instructions_per_step_all"]
    assert len(per_step) == 8 and abs(sum(per_step[1:]) / 7 - ips["total"]) <= 1
    # the first step counted every kernel call: per-layer counts that add up to that step's total
    assert sum(d["total"] for d in rec["layers_per_step"]) == per_step[0]
    assert abs(per_step[0] - ips["total"]) < 0.01 * ips["total"]
    assert {"tt_softmax_xent"} <= set(rec["kernels_per_step"]["loss"])
    assert rec["est_cycles_per_step"] > 0 and rec["est_ms_per_step"] > 0
    # SRAM: measured within the board, next to the plan's prediction
    assert rec["sram"]["total"] <= rec["sram_budget"] and rec["sram_predicted"]["total"] > 0
    assert rec["sram"]["total"] == rec["sram"]["static"] + rec["sram"]["breakdown"]["stack_high_water"]
    # the classifier-only baseline, on the host, same stream
    base = rec["baseline"]
    assert base["scheme"] == "last" and len(base["losses"]) == 8 and base["accuracy_after"] is not None
    # the report
    for name in ("report.html", "learning_curve.png", "memory_breakdown.png", "record.json"):
        assert (report / name).stat().st_size > 0, name
    html = (report / "report.html").read_text()
    assert "bit-equal" in html and "paper:99kb" in html
    # progress went to stderr while it ran; the summary names the essentials
    assert "step 8/8" in captured.err and "held-out accuracy after training" in captured.err
    text = summary(rec)
    for needle in (
        "SRAM",
        "of 320 KB on m7",
        "predicted",
        "per training step (exact, plugin)",
        "ESTIMATE",
        "baseline",
        "all 8 per-step losses bit-equal",
        "report",
    ):
        assert needle in text, needle


def test_a_second_run_of_the_same_job_waits_for_the_first(tmp_path, monkeypatch):
    """Regression: two runs of one job shared build/emulate/<key> and mixed their dataset/params files
    (the device ran 4 steps against a 3-step reference). Now a run holds a lock on its build directory."""
    import fcntl
    import threading

    import tinytrain.job.run as em
    from tinytrain.job import EmulateConfig

    ran = threading.Event()
    monkeypatch.setattr(em, "_emulate_locked", lambda cfg, build_dir, progress, *data: ran.set() or "done")
    cfg = EmulateConfig(build_dir=str(tmp_path / "job"))
    said: list[str] = []
    with open(tmp_path / "job.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        out: list[object] = []
        t = threading.Thread(target=lambda: out.append(em.emulate(cfg, progress=said.append)))
        t.start()
        t.join(0.5)
        assert t.is_alive() and not ran.is_set()
        assert any("waiting" in s for s in said)
    t.join(5)
    assert ran.is_set() and out == ["done"]


def test_evidence_quote_reads_the_committed_table(tmp_path):
    from tinytrain.emulate import EVIDENCE_FIG9, evidence_quote

    csv = tmp_path / "fig9.csv"
    csv.write_text(
        "scheme,dataset,acc_mean,acc_std,seeds\n"
        "last,digits,0.7456,0.0263,3\npaper:99kb,digits,0.851,0.039,3\nlast,faces,1,0,3\n"
    )
    q = evidence_quote("paper:99kb", "last", csv)
    assert q == (
        "paper:99kb vs last on the host reference (3 seeds, docs/evidence.md): "
        "digits 85.1 ± 3.9% vs 74.6 ± 2.6%"
    )
    assert evidence_quote("full", "last", csv) is None
    assert evidence_quote("last", "last", csv) is None  # the baseline against itself says nothing
    assert evidence_quote("paper:99kb", "last", tmp_path / "missing.csv") is None
    # the shipped evidence has the main job's scheme and baseline on both datasets
    shipped = evidence_quote("paper:99kb", "last", EVIDENCE_FIG9)
    assert shipped is not None and "digits" in shipped and "faces" in shipped
