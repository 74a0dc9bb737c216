"""`tinytrain models` and `tinytrain infer`, in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tinytrain.cli import main

from .conftest import photo


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cat_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("img") / "chelsea.png"
    Image.fromarray(data.chelsea()).save(p)
    return p


def test_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name in ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3", "sensor-conv1d", "keyboard-char"):
        assert name in out
    assert "MIT License" in out and "MACs at 128x128" in out and "3x128x128" in out and "6x1x100" in out
    code, out, _ = run(capsys, "models", "--resolution", "96", "--json")
    rows = json.loads(out)
    names = [r["name"] for r in rows]
    assert names == ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3", "sensor-conv1d", "keyboard-char"]
    assert all(r["macs"] > 0 and r["params"] > r["backbone_params"] > 0 for r in rows)
    assert [r["resolution"] for r in rows] == [96, 96, 96, None, None]  # fixed-input models keep theirs
    assert rows[0]["input"] == [3, 96, 96] and rows[3]["classes"] == 4 and rows[4]["classes"] == 97


def test_infer_image(capsys: pytest.CaptureFixture[str], cat_png: Path) -> None:
    code, out, _ = run(
        capsys, "infer", "--model", "mbv2-w0.35", "--image", str(cat_png), "--json", "--top", "3"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["model"] == "mbv2-w0.35" and len(doc["top"]) == 3
    assert doc["top"][0]["class"] in range(281, 286) and isinstance(doc["top"][0]["logit"], int)
    assert all(-128 <= t["logit"] <= 127 for t in doc["top"])
    code, out, _ = run(
        capsys, "infer", "--model", "proxyless-w0.3", "--image", str(cat_png), "--resolution", "96"
    )
    assert code == 0 and "96x96" in out and len(out.strip().splitlines()) == 2 + 5


def test_infer_input_matches_image(capsys: pytest.CaptureFixture[str], cat_png: Path, tmp_path: Path) -> None:
    x = photo("chelsea")[None]
    np.save(tmp_path / "x.npy", x)
    _, a, _ = run(capsys, "infer", "--model", "mcunet-5fps", "--input", str(tmp_path / "x.npy"), "--json")
    _, b, _ = run(capsys, "infer", "--model", "mcunet-5fps", "--image", str(cat_png), "--json")
    assert json.loads(a) == json.loads(b)


def test_infer_model_directory(capsys: pytest.CaptureFixture[str], cat_png: Path) -> None:
    from tinytrain.models.zoo import ZOO_DIR

    code, out, _ = run(
        capsys, "infer", "--model", str(ZOO_DIR / "mbv2-w0.35"), "--image", str(cat_png), "--json"
    )
    assert code == 0 and json.loads(out)["top"][0]["class"] in range(281, 286)


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((1, 3, 64, 64), np.float32), "dtype float32, expected int8"),
        (np.zeros((3, 64, 64), np.int8), r"shape \[3, 64, 64\], expected \[1, 3, H, H\]"),
        (np.zeros((1, 1, 64, 64), np.int8), r"expected \[1, 3, H, H\]"),
        (np.zeros((2, 3, 64, 64), np.int8), r"expected \[1, 3, H, H\]"),
        (np.zeros((1, 3, 64, 48), np.int8), "square"),
    ],
)
def test_infer_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, array: np.ndarray, match: str
) -> None:
    np.save(tmp_path / "x.npy", array)
    code, out, err = run(capsys, "infer", "--model", "mbv2-w0.35", "--input", str(tmp_path / "x.npy"))
    assert code == 2 and out == ""
    assert err.startswith("tinytrain infer: error: --input") and pytest.importorskip("re").search(
        match, err
    ), err


def test_infer_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path, cat_png: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    cases = [
        (["--model", "mbv2-w0.35", "--image", str(bad)], "cannot read it as an image"),
        (["--model", "mbv2-w0.35", "--image", str(tmp_path / "missing.png")], "no such file"),
        (["--model", "resnet50", "--image", str(cat_png)], "unknown model 'resnet50'"),
        (["--model", str(tmp_path), "--image", str(cat_png)], "not a model directory"),
        (["--model", "mbv2-w0.35", "--input", str(bad)], "not a .npy array"),
        (["--model", "mbv2-w0.35", "--image", str(cat_png), "--top", "0"], "--top"),
    ]
    for argv, msg in cases:
        code, out, err = run(capsys, "infer", *argv)
        assert code == 2 and msg in err, (argv, err)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 64, 64), np.int8))
    code, _, err = run(
        capsys, "infer", "--model", "mbv2-w0.35", "--input", str(tmp_path / "x.npy"), "--resolution", "128"
    )
    assert code == 2 and "64x64 but --resolution is 128" in err
