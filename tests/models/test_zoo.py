"""The shipped pretrained models: real photos, resolutions, IR round-trip, malformed directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.ir import Graph
from tinytrain.models import ZOO, load_model
from tinytrain.models.zoo import ZOO_DIR
from tinytrain.reference import infer

from .conftest import photo

# skimage.data photos and the ImageNet classes a sensible classifier puts in its top 5.
EXPECTED = {
    "chelsea": set(range(281, 286)),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    "coffee": {967},  # espresso
    "camera": {872},  # tripod (the cameraman's)
    "rocket": {657, 744, 812},  # missile, projectile, space shuttle
}


def top5(logits: np.ndarray) -> list[int]:
    return [int(c) for c in np.lexsort((np.arange(logits.size), -logits.astype(np.int32)))[:5]]


@pytest.mark.parametrize("model", ZOO)
@pytest.mark.parametrize("image", sorted(EXPECTED))
def test_pretrained_models_classify_photos(zoo: dict[str, Graph], model: str, image: str) -> None:
    top = top5(infer(zoo[model], photo(image)))
    assert EXPECTED[image] & set(top), f"{model} on {image}: top-5 {top}"


@pytest.mark.parametrize("model", ZOO)
def test_cat_and_espresso_are_top1(zoo: dict[str, Graph], model: str) -> None:
    assert top5(infer(zoo[model], photo("chelsea")))[0] in EXPECTED["chelsea"]
    assert top5(infer(zoo[model], photo("coffee")))[0] == 967


@pytest.mark.parametrize("res", [96, 160])
def test_other_resolutions(zoo: dict[str, Graph], res: int) -> None:
    g = zoo["mbv2-w0.35"].with_resolution(res)
    assert g.resolution == res and g.macs() != zoo["mbv2-w0.35"].macs()
    assert top5(infer(g, photo("chelsea", res)))[0] in EXPECTED["chelsea"]
    assert load_model("mbv2-w0.35", res).macs() == g.macs()


def test_zoo_sizes(zoo: dict[str, Graph]) -> None:
    # backbone parameters as the zoo README reports them (classifier excluded): 0.48 M / 0.25 M / 0.33 M
    for name, want in (("mcunet-5fps", 0.48e6), ("mbv2-w0.35", 0.25e6), ("proxyless-w0.3", 0.33e6)):
        g = zoo[name]
        cls = g.producer(g.output)
        assert cls is not None
        backbone = g.num_params() - cls.weight.size - cls.bias.size
        assert abs(backbone - want) < 0.02e6, (name, backbone)
        assert g.num_classes == 1000 and g.meta["license"].startswith("MIT")


def test_ir_save_load_round_trip(zoo: dict[str, Graph], tmp_path: Path) -> None:
    g = zoo["proxyless-w0.3"]
    g.save(tmp_path / "m")
    h = Graph.load(tmp_path / "m")
    assert (h.name, h.input, h.output, h.meta) == (g.name, g.input, g.output, g.meta)
    assert h.tensors == g.tensors
    assert [(o.name, o.kind, o.inputs, o.output, o.attrs) for o in h.ops] == [
        (o.name, o.kind, o.inputs, o.output, o.attrs) for o in g.ops
    ]
    for a, b in zip(g.ops, h.ops, strict=True):
        assert a.params.keys() == b.params.keys()
        for k in a.params:
            assert a.params[k].dtype == b.params[k].dtype and np.array_equal(a.params[k], b.params[k])
    x = photo("coffee")
    assert np.array_equal(infer(g, x), infer(h, x))
    assert load_model(tmp_path / "m", 96).resolution == 96  # a saved IR directory is a model directory too


def test_unknown_model_name() -> None:
    with pytest.raises(TinytrainError, match="unknown model 'nope'.*mcunet-5fps"):
        load_model("nope")


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "m"
    shutil.copytree(ZOO_DIR / "mbv2-w0.35", d)
    return d


def test_malformed_model_directories(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TinytrainError, match="missing model.json"):
        load_model(empty)
    d = _copy(tmp_path)
    (d / "model.json").write_text("{not json")
    with pytest.raises(TinytrainError, match="malformed"):
        load_model(d)
    d = _copy(tmp_path / "b")
    doc = json.loads((d / "model.json").read_text())
    del doc["blocks"][3]["depthwise"]["x_scale"]
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(TinytrainError, match="malformed|x_scale"):
        load_model(d)
    d = _copy(tmp_path / "c")
    (d / "weights.npz").write_bytes(b"garbage")
    with pytest.raises(TinytrainError, match="malformed"):
        load_model(d)
    d = _copy(tmp_path / "d")
    doc = json.loads((d / "model.json").read_text())
    doc["format"] = "other/2"
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(TinytrainError, match="format"):
        load_model(d)
    ir = tmp_path / "ir"
    load_model("mbv2-w0.35").save(ir)
    doc = json.loads((ir / "graph.json").read_text())
    del doc["tensors"][0]["scale"]
    (ir / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(TinytrainError, match="malformed"):
        load_model(ir)
