"""`tinytrain export` of imported models (.tflite: tests/models/data): the library keeps the op kernels under
src/ops/ and takes only those the model calls; it builds out of the tree with make and CMake and `make qemu`
reproduces the host reference's losses bit for bit. Mini-batches (--accumulate) and momentum are exported:
the accumulators are saved with the state and a batch resumes mid-way after a load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.export.standalone import bits, cmake_qemu, make_qemu, needs_tools, step_bits
from tinytrain import REPO_ROOT
from tinytrain.cli import main as cli_main
from tinytrain.export.config import ExportConfig, prepare

DATA = REPO_ROOT / "tests" / "models" / "data"
#: a scheme that updates weights: half the input channels of the last conv, the biases of the last two
SENSOR_SCHEME = {"bias_last_n": 2, "weights": [{"layer": "conv1d_2_1", "input_channel_ratio": 0.5}]}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("imported")
    out = {}
    for name in ("mobilenet_tiny", "sensor_conv1d"):
        out[name] = root / name
        assert cli_main(["import", str(DATA / f"{name}.tflite"), "--out", str(out[name])]) == 0
    (root / "sensor_scheme.json").write_text(json.dumps(SENSOR_SCHEME))
    out["sensor_scheme"] = root / "sensor_scheme.json"
    return out


def _export(model: Path, scheme: str, out: Path, *extra: str) -> ExportConfig:
    args = ["export", "--model", str(model), "--scheme", scheme, "--out", str(out), *extra]
    assert cli_main(args) == 0
    info = json.loads((out / "tinytrain.json").read_text())
    return ExportConfig(
        model=str(model),
        scheme=scheme,
        dataset=info["dataset"],
        cpu=info["cpu"],
        lr=info["lr"],
        momentum=info["momentum"],
        accumulate=info["accumulate"],
    )


def _check_run(stdout: str, want: list[str]) -> None:
    assert step_bits(stdout) == want, stdout
    assert "self-check: PASS" in stdout and "logits as the host reference's" in stdout, stdout


def _lib_sources(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in (folder / "src").rglob("*") if p.is_file()}


@needs_tools
@pytest.mark.qemu
def test_mobilenet_bias_minibatch_builds_out_of_tree_and_matches_host(
    imported: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "lib"
    cfg = _export(imported["mobilenet_tiny"], "bias", folder, "--accumulate", "2")
    files = _lib_sources(folder)
    # the op kernels keep their place (model.c includes "ops/tt_ops.h"), only those the model calls
    assert {"src/ops/tt_ops.h", "src/ops/tt_qconv.c", "src/ops/tt_qadd.c", "src/ops/tt_qmean.c"} <= files
    assert (
        "src/tt_ops.c" not in files and "src/ops/tt_qpool.c" not in files and "src/ops/tt_qmul.c" not in files
    )
    makefile = (folder / "Makefile").read_text()
    assert "src/ops/tt_qconv.c" in makefile and "wildcard" not in makefile
    assert "src/ops/tt_qconv.c" in (folder / "CMakeLists.txt").read_text()
    header = (folder / "include" / "tinytrain.h").read_text()
    assert "#define TINYTRAIN_ACCUMULATE 2" in header and "resumes where it stopped" in header
    ref = prepare(cfg, check_fit=False)
    want = [bits(v) for v in ref.check.losses]
    work = tmp_path / "elsewhere"  # outside the repository, built with PATH=/usr/bin:/bin
    shutil.copytree(folder, work)
    proc = make_qemu(work, "m4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_run(proc.stdout, want)
    # the third step is half a mini-batch: the resumed step completes it after the load and applies it
    assert "resume: step 4 of a mini-batch of 2" in proc.stdout
    assert list(ref.check.resume_logits) != list(ref.check.test_logits)
    proc = cmake_qemu(work, "m4", work / "cbuild")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_run(proc.stdout, want)


@needs_tools
@pytest.mark.qemu
def test_sensor_weights_momentum_minibatch_builds_out_of_tree_and_matches_host(
    imported: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "lib"
    scheme = str(imported["sensor_scheme"])
    cfg = _export(
        imported["sensor_conv1d"],
        scheme,
        folder,
        "--dataset",
        "sensor",
        "--accumulate",
        "2",
        "--momentum",
        "0.9",
        "--measure",
    )
    files = _lib_sources(folder)
    assert {
        "src/ops/tt_qconv.c",
        "src/ops/tt_qconv_bwd.c",
        "src/ops/tt_qpool.c",
        "src/ops/tt_qpool_bwd.c",
    } <= files
    assert "src/ops/tt_qadd.c" not in files  # no ADD in this net
    info = json.loads((folder / "tinytrain.json").read_text())
    names = [r["name"] for r in info["state_layout"]]
    assert any(n.startswith("gacc") for n in names) and any(n.startswith("mom") for n in names), names
    # --measure builds the same source list (src/ops/ included) and counts every training step exactly
    assert info["measured"]["board"] == "m4" and info["measured"]["instructions_per_step"] > 100_000
    ref = prepare(cfg, check_fit=False)
    want = [bits(v) for v in ref.check.losses]
    work = tmp_path / "elsewhere"
    shutil.copytree(folder, work)
    proc = make_qemu(work, "m4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_run(proc.stdout, want)
    assert "1x100x6 input" in proc.stdout
    proc = cmake_qemu(work, "m4", work / "cbuild")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_run(proc.stdout, want)


@needs_tools
@pytest.mark.qemu
def test_a_load_that_forgets_the_batch_position_fails_the_self_check(
    imported: dict[str, Path], tmp_path: Path
) -> None:
    """The resume check is not vacuous: without restoring the position in the mini-batch, the step after the
    load does not apply the batch and the logits differ from the host reference's."""
    folder = tmp_path / "lib"
    _export(imported["mobilenet_tiny"], "bias", folder, "--accumulate", "2")
    api = folder / "src" / "tinytrain.c"
    text = api.read_text()
    assert "tt_model_set_batch_count(tt_meta[0]);" in text
    api.write_text(text.replace("tt_model_set_batch_count(tt_meta[0]);", ""))
    proc = make_qemu(folder, "m4")
    assert proc.returncode != 0 and "self-check: FAIL" in proc.stdout, proc.stdout
    assert "logits DIFFERENT" in proc.stdout


def test_bad_accumulate_exits_2(
    imported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never"
    model = str(imported["mobilenet_tiny"])
    rc = cli_main(["export", "--model", model, "--scheme", "bias", "--accumulate", "0", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--accumulate" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@needs_tools
@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("board", ["m4", "m7"])
@pytest.mark.parametrize(
    ("model", "scheme", "extra"),
    [
        ("mobilenet_tiny", "bias", []),
        ("mobilenet_tiny", "full", ["--accumulate", "3", "--momentum", "0.9"]),
        ("sensor_conv1d", "bias", ["--dataset", "sensor", "--update-rule", "nearest"]),
        ("sensor_conv1d", "full", ["--dataset", "sensor", "--accumulate", "2", "--steps", "5"]),
    ],
)
def test_imported_matrix(
    imported: dict[str, Path], tmp_path: Path, board: str, model: str, scheme: str, extra: list[str]
) -> None:
    folder = tmp_path / "lib"
    cpu = {"m4": "cortex-m4", "m7": "cortex-m7"}[board]
    _export(imported[model], scheme, folder, "--cpu", cpu, *extra)
    info = json.loads((folder / "tinytrain.json").read_text())
    want = [bits(v) for v in info["self_check"]["losses"]]
    proc = make_qemu(folder, board)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_run(proc.stdout, want)
    proc = cmake_qemu(folder, board, folder / "cbuild")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_run(proc.stdout, want)
