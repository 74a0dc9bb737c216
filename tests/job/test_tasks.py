"""Tasks (tinytrain.tasks): named job defaults as data, selected by `tinytrain emulate --task NAME`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinytrain import TinytrainError
from tinytrain.cli import build_parser
from tinytrain.cli.emulate import config_from_args
from tinytrain.job import DEFAULTS, JobConfig, config_from_defaults
from tinytrain.job.paths import report_dir
from tinytrain.tasks import TASKS, task_defaults
from tinytrain.tasks import sensor as sensor_task


def _cfg(*argv: str) -> JobConfig:
    return config_from_args(build_parser().parse_args(["emulate", *argv]))


def test_every_task_names_only_job_settings():
    for name, d in TASKS.items():
        JobConfig.from_fields(**{**DEFAULTS, **d})  # unknown keys would raise
        assert task_defaults(name) == d and task_defaults(name) is not d  # a copy


def test_sensor_task_defaults_reach_the_job():
    cfg = _cfg("--task", "sensor")
    d = sensor_task.DEFAULTS
    assert cfg.task == "sensor"
    assert (cfg.model, cfg.scheme, cfg.dataset, cfg.board) == (d["model"], d["scheme"], "sensor", "m4")
    assert (cfg.epochs, cfg.lr, cfg.head_lr_scale, cfg.baseline) == (d["epochs"], d["lr"], 1.0, "last")
    assert cfg.classes is None and cfg.resolution is None  # the model's own classes and input
    assert cfg == _cfg("--defaults", "--task", "sensor")  # --task implies --defaults
    assert cfg.command() == "tinytrain emulate --defaults --task sensor"
    assert cfg.is_main_job() and Path(cfg.report_dir) == Path("results") / "sensor-job"
    assert cfg.key() == f"sensor-conv1d-{d['scheme']}-sensor-m4"
    assert config_from_defaults(task="sensor").flat() == cfg.flat() | {"report_dir": None}


def test_an_option_beside_the_task_overrides_it_and_reports_elsewhere():
    cfg = _cfg("--task", "sensor", "--steps", "2", "--lr", "0.05")
    assert cfg.steps == 2 and cfg.lr == 0.05 and cfg.model == "sensor-conv1d"
    assert not cfg.is_main_job()
    assert Path(cfg.report_dir) == report_dir(False, cfg.key())
    assert cfg.command() == "tinytrain emulate --defaults --task sensor --lr 0.05 --steps 2"
    # the default job is unchanged by the task registry
    assert not _cfg("--defaults").task and _cfg("--defaults").model == DEFAULTS["model"]


def test_unknown_task_is_refused():
    with pytest.raises(TinytrainError, match="unknown task 'nope': choose one of .*sensor"):
        _cfg("--task", "nope")


def test_sensor_task_fits_the_wearable_budget_as_planned():
    """The task's model, scheme and data assemble; the plan fits 64 KB on m4 (QEMU measures it:
    tests/job/test_sensor_task_qemu.py, results/sensor-job)."""
    from emulation.boards import get_board
    from tinytrain.job.prepare import assemble, load_job_data, make_job

    cfg = config_from_defaults(task="sensor")
    data = load_job_data(cfg.model, cfg.dataset, cfg.resolution, cfg.classes, cfg.seed, cfg.data_options())
    assert data.classes == 4 and data.identity == "sensor"
    asm = assemble(data.base, cfg.scheme, cfg.options, board=get_board(cfg.board))
    assert asm.plan is not None and asm.plan.total <= 64 * 1024
    shape = tuple(asm.program.buffers[asm.program.input_buffer].shape)
    job = make_job(cfg, asm.program.num_classes, shape, data.dataset)
    assert len(job.y_train) == 20 and len(job.y_test) == 20 and job.steps == 20 * cfg.epochs
    assert job.x_train.shape[1:] == (1, 100, 6)


def test_a_task_record_quotes_its_own_evidence(tmp_path: Path):
    """The record's `evidence` of a task: its scheme vs the baseline, no adaptation and the float twin, from
    results/evidence/<task>.csv (the committed one for the sensor task)."""
    from tinytrain.job.record import _evidence_file, evidence_quote

    csv = tmp_path / "t.csv"
    csv.write_text(
        "scheme,dataset,lr,epochs,acc_mean,acc_std,seeds,float_acc_mean,float_acc_std,float_seeds\n"
        "none,sensor,,,0.4,0.05,3,0.35,0.1,3\n"
        "last,sensor,0.003,5,0.7,0.02,3,0.65,0.03,3\n"
        "full,sensor,0.01,20,0.95,0.08,3,0.9,0.05,3\n"
    )
    q = evidence_quote("full", "last", csv)
    assert q == (
        "full vs last on the host reference (3 seeds, docs/evidence.md): sensor 95.0 ± 8.0% vs 70.0 ± 2.0%, "
        "no adaptation 40.0 ± 5.0%; float twin 90.0 ± 5.0%"
    )
    shipped = evidence_quote(sensor_task.DEFAULTS["scheme"], "last", _evidence_file("sensor"))
    assert shipped is not None and "no adaptation" in shipped and "float twin" in shipped


def test_the_sensor_dataset_needs_the_model_input():
    """`sensor` is float data: quantized with the model's input; without it, one DataError line."""
    from tinytrain.data import DataError, load_dataset

    with pytest.raises(DataError, match="'sensor' is float sensor data"):
        load_dataset("sensor")
    ds = load_dataset("sensor", seed=1, input_shape=(6, 1, 100), input_scale=4 / 127, input_zero=0)
    assert ds.train_x.shape == (20, 1, 100, 6) and ds.test_x.shape == (20, 1, 100, 6) and ds.classes == 4
    with pytest.raises(DataError, match="the model's input is"):
        load_dataset("sensor", input_shape=(3, 80, 80), input_scale=1 / 127.5, input_zero=0)
