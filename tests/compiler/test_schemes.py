"""Update schemes: every kind resolves and compiles for the three zoo models; bad input is a clear error."""

from __future__ import annotations

import json
import math

import pytest

from tinytrain import TinytrainError
from tinytrain.compiler import compile_training
from tinytrain.models import ZOO, load_model
from tinytrain.sparse import paper_budgets, resolve_scheme
from tinytrain.sparse.schemes import PAPER_FILE


@pytest.fixture(scope="module", params=ZOO)
def zoo_graph(request):
    return load_model(request.param)


def test_builtin_and_paper_schemes_resolve_and_compile(zoo_graph):
    g = zoo_graph
    backbone = [op.name for op in g.convs() if op.name != "classifier"]
    budgets = paper_budgets(g.name)
    assert len(budgets) == 5
    for name in ["full", "last", "bias", *(f"paper:{b}" for b in budgets)]:
        s = resolve_scheme(name, g)
        assert s.bias_layers[-1] == "classifier" and "classifier" in s.weights
        if name == "full":
            assert len(s.weights) == len(g.convs()) and s.bias_last_n == len(backbone)
            assert all(w.channels == w.in_channels for w in s.weights.values())
        elif name == "last":
            assert s.bias_layers == ["classifier"] and list(s.weights) == ["classifier"]
        elif name == "bias":
            assert s.bias_layers == [*backbone, "classifier"] and list(s.weights) == ["classifier"]
        else:
            doc = json.loads(PAPER_FILE.read_text())
            spec = doc["schemes"][g.name][name.split(":")[1]]
            assert s.bias_last_n == spec["bias_last_n"]
            assert s.bias_layers == backbone[len(backbone) - spec["bias_last_n"] :] + ["classifier"]
            nonzero = {
                e["layer"]: e["input_channel_ratio"] for e in spec["weights"] if e["input_channel_ratio"]
            }
            assert set(s.weights) == set(nonzero) | {"classifier"}
            for layer, r in nonzero.items():
                w = s.weights[layer]
                assert w.channels == math.ceil(r * w.in_channels)
        prog = compile_training(g, s)
        assert prog.steps and prog.infer_steps
        assert json.dumps(s.to_dict())  # JSON-able


def test_scheme_file_and_dict(tmp_path):
    g = load_model("mcunet-5fps")
    spec = {"bias_last_n": 3, "weights": [{"layer": "blocks.12.pointwise1", "input_channel_ratio": 0.5}]}
    f = tmp_path / "mine.json"
    f.write_text(json.dumps(spec))
    s = resolve_scheme(str(f), g)
    assert s.name == "mine" and s.bias_last_n == 3 and len(s.bias_layers) == 4
    assert s.weights["blocks.12.pointwise1"].channels == 48
    assert resolve_scheme(spec, g).to_dict()["weights"] == s.to_dict()["weights"]


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"weights": [{"layer": "blocks.99.pointwise1", "input_channel_ratio": 1}]},
            "unknown layer 'blocks.99.pointwise1'",
        ),
        ({"weights": [{"layer": "blocks.3.depthwise", "input_channel_ratio": 0}]}, "outside (0, 1]"),
        ({"weights": [{"layer": "blocks.3.depthwise", "input_channel_ratio": 1.5}]}, "outside (0, 1]"),
        ({"weights": [{"layer": "blocks.3.depthwise", "input_channel_ratio": -0.25}]}, "outside (0, 1]"),
        ({"weights": [{"layer": "blocks.3.depthwise"}]}, "needs 'layer' and 'input_channel_ratio'"),
        ({"bias_last_n": 99}, "bias_last_n must be an integer in [0, 42]"),
        ({"bias_last_n": 2, "wieghts": []}, "unknown key"),
        (
            {
                "weights": [
                    {"layer": "blocks.3.depthwise", "input_channel_ratio": 1},
                    {"layer": "blocks.3.depthwise", "input_channel_ratio": 0.5},
                ]
            },
            "listed twice",
        ),
    ],
)
def test_bad_schemes(spec, message):
    g = load_model("mcunet-5fps")
    with pytest.raises(TinytrainError) as exc:
        resolve_scheme(spec, g)
    assert message in str(exc.value)


def test_bad_scheme_names(tmp_path):
    g = load_model("mbv2-w0.35")
    with pytest.raises(
        TinytrainError, match="unknown paper budget '12kb'.*paper:49kb, paper:73kb, paper:99kb"
    ):
        resolve_scheme("paper:12kb", g)
    with pytest.raises(TinytrainError, match="unknown scheme 'fulll'"):
        resolve_scheme("fulll", g)
    with pytest.raises(TinytrainError, match="cannot read"):
        resolve_scheme(str(tmp_path / "missing.json"), g)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(TinytrainError, match="invalid JSON"):
        resolve_scheme(str(bad), g)
    other = load_model("mcunet-5fps")
    other.name = "not-a-zoo-model"
    with pytest.raises(TinytrainError, match="no published schemes for model 'not-a-zoo-model'"):
        resolve_scheme("paper:99kb", other)
