"""`--dataset PATH` through the job: the data are loaded first (a bad dataset: one line, exit 2, no build
directory), the head takes the data's class count, the job key names the data's identity (path + content),
the run record carries `dataset_provenance`; the same in `search`, `experiment` and the bench's TOML."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinytrain.cli import main
from tinytrain.data import DataError, load_dataset
from tinytrain.data.identity import dataset_identity
from tinytrain.job import JobConfig, config_from_defaults
from tinytrain.job.prepare import load_job_data

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="QEMU / arm toolchain not installed",
)


def image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog", "owl"), per_class: int = 6) -> Path:
    """Small RGB PNGs (20x24, not square: the loader resizes), one subfolder per class, class-dependent
    brightness so the classes differ."""
    rng = np.random.default_rng(0)
    for ci, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True)
        for i in range(per_class):
            a = (rng.random((20, 24, 3)) * 80 + ci * 80).astype(np.uint8)
            Image.fromarray(a).save(d / f"{i}.png")
    return root


def series_csv(path: Path, samples: int = 8, length: int = 16) -> Path:
    """Long format: sample,label,<2 channels>, one row per time step."""
    rng = np.random.default_rng(1)
    rows = ["sample,label,ax,ay"]
    for s in range(samples):
        label = "walk" if s % 2 else "rest"
        for _ in range(length):
            rows.append(f"s{s},{label},{rng.normal():.4f},{rng.normal() + s % 2:.4f}")
    path.write_text("\n".join(rows) + "\n")
    return path


EMULATE = ["emulate", "--model", "mcunet-5fps", "--scheme", "last", "--resolution", "32", "--board", "m4"]


# ---------------------------------------------------------------------------------------- identity, key
def test_two_folders_never_share_a_build_key(tmp_path):
    a = image_folder(tmp_path / "a" / "imgs")
    b = image_folder(tmp_path / "b" / "imgs")  # same name, same bytes, another folder
    ka = JobConfig(dataset=str(a)).key()
    kb = JobConfig(dataset=str(b)).key()
    assert ka != kb and "imgs-" in ka and "/" not in ka
    before = dataset_identity(a)
    (a / "cat" / "0.png").write_bytes((a / "dog" / "0.png").read_bytes())  # the content changed
    assert dataset_identity(a) != before
    # the shipped sets keep their keys; the data settings name the key only when not the default
    assert config_from_defaults().key() == "mcunet-5fps-paper-99kb-faces-r80-m7-head30"
    cfg = JobConfig(dataset=str(a), window=8, normalize="none")
    assert "window8" in cfg.key() and "normalizenone" in cfg.key()
    assert "--window 8" in cfg.command() and "--normalize none" in cfg.command()


def test_cache_names_of_search_and_experiments_carry_the_identity(tmp_path):
    from tinytrain.experiments.config import RunSpec
    from tinytrain.sparse.contrib import AnalysisSettings

    folder = image_folder(tmp_path / "my data" / "imgs", per_class=2)
    ident = dataset_identity(folder)
    cache = AnalysisSettings(dataset=str(folder), resolution=32).cache_dir(tmp_path / "cache")
    assert cache.parent == tmp_path / "cache" and cache.name.startswith(f"mcunet-5fps_{ident}_r32_")
    run = RunSpec(dataset=str(folder), seed=0, scheme="last").key()
    assert run.startswith(f"test-{ident}-s0-") and "/" not in run
    # the shipped sets keep their names (existing caches stay valid)
    assert AnalysisSettings(dataset="digits").cache_dir(tmp_path).name.startswith("mcunet-5fps_digits_r128_")
    assert RunSpec(dataset="faces", seed=1, scheme="last").key().startswith("test-faces-s1-")


def test_emulate_flags_reach_the_job_config(tmp_path):
    from tinytrain.cli import build_parser
    from tinytrain.cli.emulate import config_from_args

    args = build_parser().parse_args(
        [*EMULATE, "--dataset", "x.csv", "--steps", "2", "--window", "16", "--stride", "4", "--layout", "hwc"]
    )
    cfg = config_from_args(args)
    assert (cfg.dataset, cfg.window, cfg.stride, cfg.normalize, cfg.layout) == (
        "x.csv",
        16,
        4,
        "standard",
        "hwc",
    )
    assert cfg.data_options() == {"window": 16, "stride": 4, "normalize": "standard", "layout": "hwc"}


# ---------------------------------------------------------------------------------------- classes
def test_the_head_takes_the_data_class_count(tmp_path):
    folder = image_folder(tmp_path / "imgs")
    data = load_job_data("mcunet-5fps", str(folder), 32)
    assert data.classes == 3 and data.dataset.class_names == ["cat", "dog", "owl"]
    prov = data.provenance()
    assert prov["format"] == "image-folder" and len(prov["content_sha256"]) == 64
    assert prov["identity"] == dataset_identity(folder) and prov["input_shape"] == [3, 32, 32]
    json.dumps(prov)  # goes into the run record as is
    with pytest.raises(DataError, match="3 classes .* but 2 were requested"):
        load_job_data("mcunet-5fps", str(folder), 32, classes=2)
    # a shipped set keeps its first-N-classes behaviour
    assert load_job_data("mcunet-5fps", "digits", 32, classes=4).classes == 4
    assert load_job_data("mcunet-5fps", "digits", 32).classes == 10
    with pytest.raises(DataError, match="has 10 classes; 11 were requested"):
        load_job_data("mcunet-5fps", "digits", 32, classes=11)


def test_series_loads_and_the_job_checks_it_against_the_model(tmp_path):
    """A CSV series as a 1-D model's input (C, 1, L), and the job's check against a 2-D image model. (No 1-D
    model in the zoo on main yet: the end-to-end series run comes with the importer, issue 14 item 2.)"""
    csv = series_csv(tmp_path / "motion.csv")
    ds = load_dataset(csv, input_shape=(2, 1, 8), input_scale=0.05, input_zero=0, window=8, stride=8)
    assert ds.train_x.dtype == np.int8 and ds.train_x.shape[1:] == (1, 8, 2) and ds.classes == 2
    assert ds.provenance["window"] == 8 and ds.provenance["normalize"] == "standard"
    with pytest.raises(DataError, match="2 channels .* the model's input has 3"):
        load_job_data("mcunet-5fps", str(csv), 32, data_options={"window": 8, "stride": None})


# ---------------------------------------------------------------------------------------- bad input
def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    corrupt = image_folder(tmp / "corrupt", per_class=2)
    (corrupt / "dog" / "broken.png").write_text("not a png")
    single = image_folder(tmp / "single", classes=("cat",))
    ok = image_folder(tmp / "ok")
    nan = series_csv(tmp / "nan.csv")
    lines = nan.read_text().splitlines()
    lines[5] = "s0,rest,nan,0.1"
    nan.write_text("\n".join(lines) + "\n")
    return {
        "missing": (["--dataset", str(tmp / "nowhere")], "unknown dataset"),
        "corrupt": (["--dataset", str(corrupt)], "broken.png"),
        "single": (["--dataset", str(single)], "only one class"),
        "classes": (["--dataset", str(ok), "--classes", "2"], "2 were requested"),
        "series-2d-model": (["--dataset", str(series_csv(tmp / "s.csv"))], "channels"),
        "nan": (["--dataset", str(nan)], "not a finite number"),
    }


@pytest.mark.parametrize("case", ["missing", "corrupt", "single", "classes", "series-2d-model", "nan"])
def test_bad_dataset_exits_2_in_one_line_before_any_build_directory(case, tmp_path, monkeypatch, capsys):
    args, needle = _bad_inputs(tmp_path / "data")[case]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc = main([*EMULATE, *args, "--steps", "2", "--host"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err, err
    assert not (work / "build").exists()  # refused before the build directory (or its lock) was made


def test_search_and_experiment_refuse_a_bad_dataset_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["search", "--model", "mcunet-5fps", "--budget", "100", "--out", "s.json", "--dataset", "nope"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "unknown dataset 'nope'" in err
    rc = main(["experiment", "table1", "--dataset", "faces,nope", "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "unknown dataset 'nope'" in err
    assert not (tmp_path / "ev").exists() and not (tmp_path / "results").exists()
    csv = series_csv(tmp_path / "s.csv")
    rc = main(["experiment", "table1", "--dataset", str(csv), "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "s.csv" in err


def test_bench_toml_takes_a_dataset_path(tmp_path):
    from tinytrain.bench.config import load_config

    image_folder(tmp_path / "data" / "imgs")
    toml = tmp_path / "m.toml"
    toml.write_text(
        '[bench]\ndataset = "data/imgs"\n[[matrix]]\nmodels = ["mcunet-5fps"]\nschemes = ["last"]\n'
        'boards = ["m4"]\nresolutions = [32]\n[[matrix]]\nmodels = ["mcunet-5fps"]\nschemes = ["last"]\n'
        'boards = ["m4"]\nresolutions = [32]\ndataset = "faces"\n'
    )
    rows = load_config(toml).rows
    own, faces = rows
    assert own.dataset == str((tmp_path / "data" / "imgs").resolve()) and own.classes is None  # the data's
    assert faces.dataset == "faces" and faces.classes == 2
    assert dataset_identity(own.dataset) in own.slug() and "/" not in own.slug()
    toml.write_text(toml.read_text().replace("data/imgs", "data/missing"))
    with pytest.raises(DataError, match=r"\[\[matrix\]\] #1: dataset 'data/missing'"):
        load_config(toml)


# ---------------------------------------------------------------------------------------- end to end
@needs_gcc
def test_image_folder_trains_host_native(tmp_path, monkeypatch, capsys):
    folder = image_folder(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    rc = main([*EMULATE, "--dataset", str(folder), "--steps", "3", "--host", "--json", "--no-save"])
    cap = capsys.readouterr()
    rec = json.loads(cap.out)
    assert rc == 0 and rec["matched_reference"] is True and rec["classes"] == 3
    assert rec["n_train"] + rec["n_test"] == 18 and rec["steps"] == 3
    prov = rec["dataset_provenance"]
    assert prov["format"] == "image-folder" and prov["class_names"] == ["cat", "dog", "owl"]
    assert "dataset imgs: 3 classes (cat, dog, owl)" in cap.err  # the dataset's summary line, first
    (build,) = [p for p in (tmp_path / "build" / "emulate").iterdir() if p.is_dir()]
    assert dataset_identity(folder) in build.name


@pytest.mark.qemu
@needs_qemu
def test_image_folder_trains_on_m4_and_matches_the_host(tmp_path, monkeypatch, capsys):
    from tinytrain.report import summary

    folder = image_folder(tmp_path / "imgs", per_class=4)
    monkeypatch.chdir(tmp_path)
    rc = main([*EMULATE, "--dataset", str(folder), "--steps", "2", "--max-test", "3", "--json", "--no-save"])
    rec = json.loads(capsys.readouterr().out)
    assert rc == 0 and rec["board"] == "m4" and rec["matched_reference"] is True
    assert rec["losses"] == rec["match"]["reference_losses"] and rec["classes"] == 3
    assert rec["sram"]["total"] <= rec["sram_budget"] and rec["instructions_per_step"]["total"] > 0
    assert rec["dataset_provenance"]["content_sha256"] and "data          dataset imgs" in summary(rec)
