"""The adapted model back out: `save_model` writes the trained parameters into a model directory that
`load_model` / `tinytrain infer --model OUT` reproduce bit for bit (int8 logits equal to the trainer's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.cli import main as cli_main
from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.data import load_dataset
from tinytrain.export import save_model
from tinytrain.models import load_model, replace_head
from tinytrain.reference import infer
from tinytrain.reference.training import Trainer

# a depthwise layer, a pointwise layer trained on half its input channels (split weights), biases, the head
SCHEME = {
    "bias_last_n": 3,
    "weights": [
        {"layer": "blocks.13.depthwise", "input_channel_ratio": 1},
        {"layer": "blocks.13.pointwise2", "input_channel_ratio": 0.5},
    ],
}


@pytest.fixture(scope="module")
def trained() -> tuple[object, Trainer, np.ndarray]:
    graph = replace_head(load_model("mcunet-5fps", 48), 2, seed=0)
    program = compile_training(graph, SCHEME, CompileOptions(update_rule="nearest"))
    ds = load_dataset("faces", 48, seed=0)
    trainer = Trainer(program, seed=7)
    for x, y in zip(ds.train_x[:6], ds.train_y[:6], strict=True):
        trainer.train_step(x, int(y), 0.05)
    return graph, trainer, ds.test_x[:12]


def test_saved_model_reproduces_the_trainer_bit_exactly(trained, tmp_path: Path) -> None:
    graph, trainer, xs = trained
    out = save_model(tmp_path / "adapted", graph, trainer.parameters())
    again = load_model(out)
    changed = again.meta["adapted"]["layers_changed"]
    assert {"classifier", "blocks.13.depthwise", "blocks.13.pointwise2"} <= set(changed)
    for x in xs:
        want = trainer.infer(x)
        assert np.array_equal(infer(again, x.transpose(2, 0, 1)), want)
    # the untrained half of the split layer is the original
    w0 = graph.op("blocks.13.pointwise2").weight
    w1 = again.op("blocks.13.pointwise2").weight
    assert np.array_equal(w0[:, 288:], w1[:, 288:]) and not np.array_equal(w0[:, :288], w1[:, :288])


def test_tinytrain_infer_on_the_saved_model(
    trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph, trainer, xs = trained
    out = save_model(tmp_path / "m", graph, trainer.parameters())
    x = xs[0]
    np.save(tmp_path / "x.npy", x.transpose(2, 0, 1)[None].astype(np.int8))
    assert (
        cli_main(["infer", "--model", str(out), "--input", str(tmp_path / "x.npy"), "--top", "2", "--json"])
        == 0
    )
    top = json.loads(capsys.readouterr().out)["top"]
    want = trainer.infer(x)
    assert {t["class"]: t["logit"] for t in top} == {k: int(want[k]) for k in range(2)}


def test_existing_directory_refused_and_bad_params_named(trained, tmp_path: Path) -> None:
    graph, trainer, _ = trained
    (tmp_path / "there").mkdir()
    with pytest.raises(TinytrainError, match="exists"):
        save_model(tmp_path / "there", graph, trainer.parameters())
    with pytest.raises(TinytrainError, match="nope"):
        save_model(tmp_path / "x", graph, {"w:nope": np.zeros((1, 1, 1, 1), np.int8)})
    assert not (tmp_path / "x").exists()


def test_emulate_save_model_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tinytrain emulate --save-model OUT` (host-native firmware): OUT holds the device's trained
    parameters, and the model loaded back from it gives the device-trained trainer's int8 logits."""
    out, dump = tmp_path / "adapted", tmp_path / "p.npz"
    args = ["emulate", "--model", "mcunet-5fps", "--scheme", "last", "--dataset", "faces", "--classes", "2"]
    args += ["--resolution", "32", "--steps", "4", "--board", "m4", "--host"]
    args += ["--max-test", "4", "--no-save", "--json"]
    rc = cli_main([*args, "--dump-params", str(dump), "--save-model", str(out)])
    rec = json.loads(capsys.readouterr().out)
    assert rc == 0 and rec["matched_reference"] is True
    params = dict(np.load(dump))
    again = load_model(out)
    w = again.op("classifier").weight  # OIHW; the device wrote OHWI
    assert np.array_equal(w, params["w:classifier"].transpose(0, 3, 1, 2))
    assert np.array_equal(again.op("classifier").bias, params["b:classifier"])
    # an existing output directory is refused before anything runs
    assert cli_main([*args, "--save-model", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
