"""A model and data of one's own through `emulate` and `search`: the input resolution implied by the model,
the default scheme `auto` (searched under the board's SRAM, cached, said why), `search` on imported models,
a long-format CSV series end to end (host-native here; QEMU m4 in test_own_model_qemu.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.cli import main
from tinytrain.job.resolution import job_resolution
from tinytrain.models import import_model
from tinytrain.models.importer import write_model_dir

DATA = Path(__file__).resolve().parent.parent / "models" / "data"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")


def motions_csv(path: Path, recordings: int = 24) -> Path:
    """BasicMotions (shipped: tinytrain/data/basicmotions) in long format: sample,label,<6 channels>, one row
    per time step; the first `recordings` of the archive's training file, every class alike."""
    from tinytrain.data.sensor import CLASS_NAMES, basic_motions

    x, y, _, _ = basic_motions()
    keep = np.concatenate([np.flatnonzero(y == c)[: recordings // 4] for c in range(4)])
    rows = ["sample,label,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z"]
    for i in keep:
        rows += [f"r{i},{CLASS_NAMES[y[i]]}," + ",".join(f"{v:.5f}" for v in t) for t in x[i]]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The committed test models mobilenet_tiny (2-D, 32x32x3, TFLite) and sensor_conv1d (1-D, 6 x 100),
    imported as `tinytrain import` writes them."""
    root = tmp_path_factory.mktemp("models")
    return {
        name: write_model_dir(import_model(DATA / f"{name}.tflite"), root / name)
        for name in ("mobilenet_tiny", "sensor_conv1d")
    }


# ------------------------------------------------------------------------------------------ resolution
def test_resolution_comes_from_the_model_when_it_is_implied(imported):
    assert job_resolution("sensor-conv1d", None) is None  # the zoo's 1-D model: its own 6 x 100
    assert job_resolution(str(imported["sensor_conv1d"]), None) is None
    assert job_resolution(str(imported["mobilenet_tiny"]), None) is None
    assert job_resolution(str(imported["mobilenet_tiny"]), 32) is None  # its own size, said again
    assert job_resolution("mcunet-5fps", 96) == 96  # a zoo image model: any square size, the user's
    with pytest.raises(TinytrainError, match=r"missing --resolution: mcunet-5fps is an image model"):
        job_resolution("mcunet-5fps", None)
    with pytest.raises(TinytrainError, match=r"takes a 1-D series \(6 channels x 100 steps\).*leave"):
        job_resolution("sensor-conv1d", 64)
    with pytest.raises(TinytrainError, match=r"\(imported\) runs at its own input 32x32 only; leave"):
        job_resolution(str(imported["mobilenet_tiny"]), 64)


def test_emulate_cli_needs_no_resolution_for_a_1d_model_and_refuses_a_conflict(tmp_path, capsys):
    from tinytrain.cli import build_parser
    from tinytrain.cli.emulate import config_from_args

    csv = str(motions_csv(tmp_path / "m.csv", 8))
    base = ["emulate", "--model", "sensor-conv1d", "--dataset", csv, "--board", "m4", "--steps", "2"]
    cfg = config_from_args(build_parser().parse_args([*base, "--scheme", "last"]))
    assert cfg.resolution is None and cfg.scheme == "last"
    assert config_from_args(build_parser().parse_args(base)).scheme == "auto"  # no --scheme: searched
    rc = main([*base, "--resolution", "64", "--host"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "1-D series" in err, err
    zoo = ["emulate", "--model", "mcunet-5fps", "--dataset", "faces", "--board", "m4", "--steps", "2"]
    rc = main([*zoo, "--scheme", "last"])
    err = capsys.readouterr().err
    assert rc == 2 and "missing --resolution (" in err, err
    rc = main([*zoo, "--resolution", "32"])
    err = capsys.readouterr().err
    assert rc == 2 and "missing --scheme (" in err and "mcunet-5fps's published schemes: paper:" in err, err


def test_scheme_format_is_in_the_help(capsys):
    for cmd in ("emulate", "search", "compile"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = capsys.readouterr().out
        assert "scheme JSON format" in out and '"input_channel_ratio"' in out and "bias_last_n" in out


# ------------------------------------------------------------------------------------------ search
@pytest.mark.parametrize(
    ("name", "dataset", "budget_kb"), [("mobilenet_tiny", "faces", 40), ("sensor_conv1d", "csv", 30)]
)
def test_search_on_an_imported_model_then_compile_agrees(
    imported, name, dataset, budget_kb, tmp_path, capsys, monkeypatch
):
    """`tinytrain search` on an imported model (its own input, no --resolution; a float CSV series for the
    1-D one, which the contribution analysis now reads), then `compile` of the scheme it wrote predicts the
    same total SRAM."""
    monkeypatch.chdir(tmp_path)  # the analysis caches under ./results/search/cache (the current directory)
    model = str(imported[name])
    data = str(motions_csv(tmp_path / "m.csv", 12)) if dataset == "csv" else dataset
    out = tmp_path / "scheme.json"
    args = ["search", "--model", model, "--dataset", data, "--budget", str(budget_kb), "--board", "m4"]
    args += ["--steps", "8", "--test-images", "8", "--last-blocks", "2", "--workers", "1", "--evals", "12"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(out.read_text())
    about = doc["about"]
    assert about["resolution"] is None and f"{name} @ its own input" in printed.replace(model, name)
    assert (
        about["minimum_bytes"] <= about["predicted_total_bytes"] <= about["budget_bytes"] == budget_kb * 1024
    )
    assert about["contributions"]["model"] == model  # measured here, on this model
    assert any((tmp_path / "results" / "search" / "cache").iterdir())
    classes = str(about["classes"])
    compile_args = ["compile", "--model", model, "--classes", classes, "--board", "m4", "--scheme", str(out)]
    assert main([*compile_args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sram"]["total"] == about["predicted_total_bytes"]


# ------------------------------------------------------------------------------------------ auto scheme
def test_auto_scheme_is_searched_once_cached_and_keyed(tmp_path, monkeypatch):
    from tinytrain.job import JobConfig
    from tinytrain.sparse import auto, contrib

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(auto, "AUTO_STEPS", 40)  # the recipe's 300 steps, shortened for the test
    csv = str(motions_csv(tmp_path / "m.csv", 24))
    cfg = JobConfig(model="sensor-conv1d", scheme="auto", dataset=csv, resolution=None, board="m4", steps=2)
    said: list[str] = []
    first = auto.resolve_auto(cfg, said.append)
    path = Path(first.scheme)
    assert path.parent == tmp_path / "results" / "search" / "auto" and path.is_file()  # under the cwd
    assert first.build_dir and "-auto-" in Path(first.build_dir).name  # the job's own key names `auto`
    assert any(m.startswith("scheme auto -> ") and "Why: " in m and "(cached)" not in m for m in said)
    assert any(
        m.startswith("contribution analysis sensor-conv1d / ") and "@ its own input:" in m for m in said
    )
    doc = json.loads(path.read_text())
    about = doc["about"]
    assert about["predicted_total_bytes"] <= about["budget_bytes"] == 256 * 1024  # m4's SRAM
    assert about["key"]["board"] == "m4" and about["contributions"]["validation"] == 0.25
    # the second run reads the cache: nothing is measured again
    analyze = contrib.analyze
    monkeypatch.setattr(contrib, "analyze", lambda *a, **k: pytest.fail("searched again"))
    said.clear()
    assert auto.resolve_auto(cfg, said.append).scheme == first.scheme
    assert any("(cached)" in m for m in said)
    monkeypatch.setattr(contrib, "analyze", analyze)
    # too few samples to hold a quarter out with every class: the classifier only, and it says why
    tiny = auto.resolve_auto(
        JobConfig(**{**cfg.__dict__, "dataset": str(motions_csv(tmp_path / "t.csv", 12))})
    )
    small = json.loads(Path(tiny.scheme).read_text())
    assert small["bias_last_n"] == 0 and small["weights"] == [] and "too few" in small["about"]["reason"]
    # another board (another budget) is another key, another file
    other = auto.auto_key(
        auto_graph(cfg),
        model="sensor-conv1d",
        dataset_identity="x",
        resolution=None,
        data_options=None,
        board="m7",
        budget=320 * 1024,
        options=cfg.options,
    )
    assert other["board"] == "m7" and other != about["key"]


def test_auto_scheme_measures_on_the_jobs_own_split(tmp_path, monkeypatch):
    """`--seed` picks the job's train / test split (e.g. `sensor`: which rotated recordings adapt and which
    are held out): the analysis measures on that seed's training split and the cache is keyed by it, so a
    scheme chosen on seed 0's training samples (some are seed 1's test samples) is not reused at seed 1."""
    from tinytrain.data import DataError
    from tinytrain.job import JobConfig
    from tinytrain.sparse import auto, contrib

    monkeypatch.chdir(tmp_path)
    seen: list[int] = []

    def analyze(settings, **_):  # noqa: ANN001, ANN202
        seen.append(settings.split_seed)
        raise DataError("stop after the settings")  # -> the classifier-only scheme, written and keyed

    monkeypatch.setattr(contrib, "analyze", analyze)
    cfg = JobConfig(
        model="sensor-conv1d", scheme="auto", dataset="sensor", resolution=None, board="m4", steps=2
    )
    paths = [auto.resolve_auto(JobConfig(**{**cfg.__dict__, "seed": s})).scheme for s in (0, 1, 1)]
    assert seen == [0, 1] and paths[0] != paths[1] == paths[2]  # seed 1: searched on its split, then cached
    keys = [json.loads(Path(p).read_text())["about"]["key"] for p in paths[:2]]
    assert [k["split_seed"] for k in keys] == [0, 1]


def auto_graph(cfg):
    from tinytrain.job.prepare import load_job_data, with_head

    data = load_job_data(cfg.model, cfg.dataset, cfg.resolution, None, 0, cfg.data_options())
    return with_head(data.base, data.classes)


def test_model_fingerprint_follows_the_files(imported, tmp_path):
    from tinytrain.sparse.contrib import model_fingerprint

    copy = shutil.copytree(imported["sensor_conv1d"], tmp_path / "copy")
    assert model_fingerprint(str(copy)) == model_fingerprint(str(imported["sensor_conv1d"]))
    (copy / "graph.json").write_text((copy / "graph.json").read_text() + " ")
    assert model_fingerprint(str(copy)) != model_fingerprint(str(imported["sensor_conv1d"]))
    assert model_fingerprint("mcunet-5fps") == "mcunet-5fps"


@needs_gcc
def test_csv_series_trains_host_native_with_the_auto_scheme(tmp_path, monkeypatch, capsys):
    from tinytrain.sparse import auto

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(auto, "AUTO_STEPS", 40)
    csv = str(motions_csv(tmp_path / "m.csv", 12))
    args = ["emulate", "--model", "sensor-conv1d", "--dataset", csv, "--board", "m4", "--steps", "3"]
    rc = main([*args, "--host", "--json", "--no-save"])
    cap = capsys.readouterr()
    rec = json.loads(cap.out)
    assert rc == 0 and rec["matched_reference"] is True and rec["resolution"] is None
    assert rec["scheme"].startswith(str(tmp_path / "results" / "search" / "auto"))
    assert rec["dataset_provenance"]["format"] == "csv-long" and rec["classes"] == 4
    assert "scheme auto -> " in cap.err


# ------------------------------------------------------------------------------------------ experiment
def test_experiment_takes_a_csv_series_with_a_1d_model(tmp_path, capsys):
    """`tinytrain experiment` on float time-series data (refused before: image data only) with a model of
    one's own: its own input, `bias` as the main scheme, its fp32 twin (FloatNet) beside the int8 runs."""
    csv = str(motions_csv(tmp_path / "m.csv", 16))
    out = tmp_path / "ev"
    args = ["experiment", "table1", "--model", "sensor-conv1d", "--datasets", csv, "--seeds", "1"]
    assert main([*args, "--epochs", "1", "--lr", "0.01", "--jobs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sensor-conv1d" in printed and "its own input" in printed
    table = (out / "table1.md").read_text()
    assert "(`bias`, stochastic)" in table and "fp32 (PyTorch twin, `bias`)" in table
    rows = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert rows and all(r["model"] == "sensor-conv1d" and r["resolution"] is None for r in rows)
    assert {(r["scheme"], r["engine"]) for r in rows} == {
        (s, e) for s in ("last", "bias") for e in ("int8", "fp32")
    }
    assert all(0 <= r["accuracy"] <= 1 for r in rows)


def test_compile_without_scheme_tells_a_model_of_ones_own_what_to_do(imported, capsys):
    assert main(["compile", "--model", str(imported["sensor_conv1d"]), "--board", "m4"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "give --scheme" in err and "tinytrain search" in err


def test_export_auto_reads_the_scheme_emulate_found(tmp_path, monkeypatch, capsys):
    """`tinytrain export --scheme auto` on the same model, data and board takes the scheme file `emulate`'s
    `auto` searched and cached (same key: nothing searched again), and says which."""
    from tinytrain.export.config import ExportConfig, prepare
    from tinytrain.job import JobConfig
    from tinytrain.sparse import auto, contrib

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(auto, "AUTO_STEPS", 40)
    csv = str(motions_csv(tmp_path / "m.csv", 24))
    found = auto.resolve_auto(
        JobConfig(model="sensor-conv1d", scheme="auto", dataset=csv, resolution=None, board="m4", steps=2)
    ).scheme
    monkeypatch.setattr(contrib, "analyze", lambda *a, **k: pytest.fail("searched again"))
    prep = prepare(ExportConfig(model="sensor-conv1d", scheme="auto", dataset=csv, cpu="cortex-m4"))
    assert prep.cfg.scheme == found and prep.plan.total <= 256 * 1024
    assert "scheme auto -> " in capsys.readouterr().err
