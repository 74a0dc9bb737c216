"""`tinytrain import module:function --out DIR` (PyTorch): the summary, the directory `infer` takes, and the
one-line refusals (exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tinytrain.cli import main
from tinytrain.ir import Graph
from tinytrain.reference.inference import run_forward

NETS = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(1, 2))
            self.bn = nn.BatchNorm2d(8)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(8 * 4 * 2, 5)

        def forward(self, x):
            x = self.pool(torch.relu(self.bn(self.c1(x))))
            return self.fc(x.flatten(1))


    def make():
        torch.manual_seed(0)
        print("training ...")  # goes to stderr: stdout is the summary / its JSON
        return Net().eval(), torch.rand(16, 3, 8, 8) * 2 - 1


    def make_int8():
        torch.manual_seed(0)
        return Net().eval(), torch.randint(-128, 128, (8, 3, 8, 8), dtype=torch.int8).numpy()


    def square():
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Linear(8, 3),
        )
        return net.eval(), torch.rand(8, 3, 8, 8) * 2 - 1


    def gelu():
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.Flatten(), nn.Linear(4 * 36, 2))
        return net, torch.rand(2, 3, 8, 8)


    def boom():
        raise FileNotFoundError("weights.pt")


    def wrong():
        return 42
    """
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: one thread is faster, much faster on a shared CPU
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "usernets.py").write_text(NETS)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def test_import_module_function_summary_and_infer(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "usernets:make", "--out", "m"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "imported usernets:make -> m (tinytrain-ir/1, PyTorch via torch.fx, post-training int8"
    )
    assert "input   [1, 3, 8, 8] NCHW" in out and "output  5 int8 logits" in out
    assert "ops     BatchNorm2d 1, Conv2d 1, Linear 1, MaxPool2d 1, flatten 1, relu 1" in out
    assert "folded  3 op(s): 1 BatchNorm2d into the conv / Linear before; 1 relu into the clamp" in out
    assert "c1                       Conv2d               3x5  out (8, 8, 4)" in out
    assert "fc                       Linear               4x2  out (5, 1, 1)" in out and "(classifier)" in out
    g = Graph.load(in_tmp / "m")
    assert g.name == "make" and g.numerics == "tflm" and g.meta["source"] == "usernets:make"
    q = g.tensors["input"]
    x = np.random.default_rng(0).integers(-128, 128, (3, 3, 8, 8)).astype(np.int8)
    np.save(in_tmp / "x.npy", x)
    assert main(["infer", "--model", "m", "--input", "x.npy", "--logits", "z.npy"]) == 0
    z = np.load(in_tmp / "z.npy")
    ref = np.stack([run_forward(g, xi.transpose(1, 2, 0))[g.output].reshape(-1) for xi in x])
    assert z.shape == (3, 5) and np.array_equal(z, ref) and q.shape == (3, 8, 8)


def test_import_py_file_json_and_input_options(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["import", str(in_tmp / "usernets.py") + ":make", "--out", "sub/m", "--json"]
    assert main([*args, "--input-scale", "0.01", "--input-zero", "3", "--name", "mine"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert err == "training ...\n"
    assert doc["model"] == "mine" and doc["input"]["int8_scale"] == 0.01 and doc["input"]["int8_zero"] == 3
    assert doc["classes"] == 5 and doc["classifier"] == "fc" and doc["out"] == "sub/m"
    # replacing needs --force; an int8 calibration batch gets the zoo's input quantization by default
    assert main(["import", "usernets:make_int8", "--out", "sub/m"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["import", "usernets:make_int8", "--out", "sub/m", "--force"]) == 0
    assert Graph.load(in_tmp / "sub/m").tensors["input"].scale == 1 / 127.5


@pytest.mark.parametrize(
    "spec, extra, words",
    [
        ("usernets:gelu", [], "unsupported module GELU at fx node '_1' (module path '1'); replace it"),
        ("usernets:boom", [], "usernets:boom: calling boom() failed: FileNotFoundError: weights.pt"),
        ("usernets:wrong", [], "wrong() must return (model, calibration_batch)"),
        ("usernets:absent", [], "module usernets has no function 'absent'"),
        ("nosuchmod:make", [], "no module 'nosuchmod' importable from"),
        ("missing/file.py:make", [], "missing/file.py: no such Python file"),
        ("usernets:make", ["--input-scale", "-1"], "--input-scale -1.0: must be positive"),
        ("usernets:make", ["--input-zero", "3"], "--input-zero needs --input-scale S"),
        (
            "usernets:make_int8",
            ["--numerics", "float-m"],
            "numerics float-m (the zoo's ops) cannot express it",
        ),
        ("model.pt2", [], "model.pt2: a torch.export archive: torch.export.load unpickles"),
        ("weights.pth", [], "weights.pth: a torch.save file (pickle), which can run arbitrary code"),
    ],
)
def test_refusals_one_line_exit_2(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], spec: str, extra: list[str], words: str
) -> None:
    code = main(["import", spec, "--out", "out", *extra])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and words in err, err
    assert not (in_tmp / "out").exists() and not [p for p in in_tmp.iterdir() if p.name.startswith(".out")]


def test_docs_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/models.md's printout of docs/examples/torch_digits.py."""
    example = Path(__file__).parents[2] / "docs" / "examples" / "torch_digits.py"
    out_dir = str(tmp_path / "digitsnet")
    assert main(["import", f"{example}:make", "--out", out_dir, "--input-scale", "0.00784313725490196"]) == 0
    out = capsys.readouterr().out
    doc = (Path(__file__).parents[2] / "docs" / "models.md").read_text()
    for line in out.splitlines()[1:8] + out.splitlines()[-5:]:
        assert line in doc, line


def test_python_api_takes_the_same_source(in_tmp: Path) -> None:
    """`tinytrain.models.import_model("file.py:function")` is the command's import: the same graph; a float-m
    net's summary counts the zoo convolutions' MACs (Graph.macs)."""
    from tinytrain.models import import_model
    from tinytrain.models.importer import summary

    assert main(["import", "usernets.py:square", "--out", "cli", "--numerics", "float-m"]) == 0
    api = import_model("usernets.py:square", numerics="float-m")
    cli = Graph.load(in_tmp / "cli")
    assert [op.kind for op in api.ops] == [op.kind for op in cli.ops]
    for a, c in zip(api.ops, cli.ops, strict=True):
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], c.params[k])
    s = summary(api)
    assert api.numerics == "float-m" and s["macs"] == api.macs() > 0
    assert import_model("usernets.py:make").numerics == "tflm"  # auto: float-m cannot express it
