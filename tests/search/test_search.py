"""Scheme search: contribution analysis (bit-exact tail training, cache, resume), exact cost model,
searches under a budget, the `tinytrain search` CLI. Tiny resolution, few layers, few steps."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.cli import main
from tinytrain.compiler import compile_training
from tinytrain.models import load_model
from tinytrain.models.head import replace_head
from tinytrain.reference.training import Trainer
from tinytrain.schedule import plan_memory
from tinytrain.sparse import resolve_scheme
from tinytrain.sparse.contrib import (
    AnalysisSettings,
    Contributions,
    Workbench,
    analyze,
    candidate_layers,
    cut_before,
    earliest_trained,
    tail_graph,
)
from tinytrain.sparse.cost import CostModel
from tinytrain.sparse.search import METHODS, last_k_layers, search

RES = 32
MODEL = "mcunet-5fps"
LAYERS = ["blocks.11.pointwise1", "blocks.12.pointwise1", "blocks.13.pointwise1"]


@pytest.fixture(scope="module")
def graph():
    return replace_head(load_model(MODEL, RES), 10, seed=3)


@pytest.fixture(scope="module")
def cost(graph):
    return CostModel(graph, "m7")


def fake_contrib(layers=LAYERS, ks=(0, 3, 6, 9)) -> Contributions:
    """A synthetic contribution table (deterministic gains)."""
    rng = np.random.default_rng(1)
    ratios = [0.125, 0.25, 0.5, 1.0]
    bias = {k: 0.5 + 0.01 * k for k in ks}
    weights = {
        la: {r: bias[max(ks)] + float(rng.uniform(0, 0.03)) * (1 + r) for r in ratios} for la in layers
    }
    return Contributions({"model": MODEL, "fake": True}, max(ks), list(layers), ratios, bias, weights)


def test_tail_training_is_bit_identical_to_the_whole_graph(graph):
    spec = {"bias_last_n": 4, "weights": [{"layer": "blocks.12.pointwise1", "input_channel_ratio": 0.25}]}
    index = cut_before(graph, earliest_trained(graph, spec))
    assert index > 0
    tail = tail_graph(graph, index)
    full = Trainer(compile_training(graph, resolve_scheme(spec, graph)), seed=5)
    part = Trainer(compile_training(tail, resolve_scheme(spec, tail)), seed=5)
    rng = np.random.default_rng(0)
    xs = rng.integers(-128, 128, (4, RES, RES, 3)).astype(np.int8)
    from tinytrain.sparse.contrib import _features

    feats = _features(graph, index, xs)
    for i, (x, f) in enumerate(zip(xs, feats, strict=True)):
        assert full.train_step(x, i % 10, 0.05) == part.train_step(f, i % 10, 0.05)
    for name, arr in part.parameters().items():
        np.testing.assert_array_equal(arr, full.parameters()[name])
    np.testing.assert_array_equal(full.infer(xs[0]), part.infer(feats[0]))


def test_candidate_layers(graph):
    pw = candidate_layers(graph, 2, ("pointwise",))
    assert pw == [
        "blocks.12.pointwise1",
        "blocks.12.pointwise2",
        "blocks.13.pointwise1",
        "blocks.13.pointwise2",
    ]
    assert candidate_layers(graph, 1, ("depthwise",)) == ["blocks.13.depthwise"]
    with pytest.raises(TinytrainError, match="unknown layer kind"):
        candidate_layers(graph, 1, ("dense",))


def test_analysis_is_cached_and_resumable(tmp_path, monkeypatch):
    s = AnalysisSettings(
        model=MODEL,
        dataset="faces",
        resolution=RES,
        steps=6,
        test_images=8,
        layers=("blocks.13.pointwise1",),
        ratios=(0.5, 1.0),
        bias_ks=(0, 2),
    )
    msgs: list[str] = []
    c = analyze(s, workers=1, cache_root=tmp_path, progress=msgs.append)
    files = sorted(p.name for p in s.cache_dir(tmp_path).glob("*.json"))
    # bias 0, 2 and the reference depth (reaching blocks.13.pointwise1 = 3), two weight ratios, settings
    assert files == [
        "bias-0-s0.json",
        "bias-2-s0.json",
        "bias-3-s0.json",
        "settings.json",
        "weight-blocks.13.pointwise1-r0.5-b3-s0.json",
        "weight-blocks.13.pointwise1-r1-b3-s0.json",
    ]
    assert any("[5/5]" in m for m in msgs)
    assert c.ref_bias == 3 and c.bias_gain(0) == 0.0
    assert 0.0 <= c.base_acc <= 1.0
    # resume: nothing is retrained
    monkeypatch.setattr(Workbench, "train", lambda *a, **k: pytest.fail("re-measured a cached result"))
    again = analyze(s, workers=1, cache_root=tmp_path, progress=msgs.append)
    assert again.to_dict() == c.to_dict()
    out = tmp_path / "c.json"
    c.save(out)
    assert Contributions.load(out).to_dict() == c.to_dict()


def random_spec(graph, rng: random.Random) -> dict:
    convs = [op.name for op in graph.convs()][:-1]
    layers = rng.sample(convs[-15:], rng.randint(0, 4))
    return {
        "bias_last_n": rng.randint(0, 20),
        "weights": [
            {"layer": la, "input_channel_ratio": rng.choice([0.125, 0.25, 0.5, 1.0])} for la in layers
        ],
    }


def test_cost_is_the_exact_plan(graph, cost):
    rng = random.Random(0)
    for _ in range(6):
        spec = random_spec(graph, rng)
        expected = plan_memory(compile_training(graph, resolve_scheme(spec, graph)), "m7").total
        assert cost.exact(spec) == expected
    assert cost.minimum() == plan_memory(compile_training(graph, "last"), "m7").total


def test_additive_approximation_is_close(graph, cost):
    """The additive table is only a report: it stays within 10 % of the exact plan on random schemes."""
    table = cost.component_table([0, 3, 6, 9], LAYERS, [0.125, 0.5, 1.0], 9)
    rng = random.Random(2)
    for _ in range(5):
        spec = {
            "bias_last_n": rng.choice([0, 3, 6, 9]),
            "weights": [
                {"layer": la, "input_channel_ratio": rng.choice([0.125, 0.5, 1.0])}
                for la in rng.sample(LAYERS, rng.randint(0, 3))
            ],
        }
        exact, approx = cost.exact(spec), table.approx(spec)
        assert abs(approx - exact) <= 0.10 * exact, (spec, exact, approx)


def test_cost_cache_file(tmp_path, graph):
    f = tmp_path / "costs.json"
    a = CostModel(graph, "m7", cache_file=f)
    v = a.exact({"bias_last_n": 2})
    a.save()
    b = CostModel(graph, "m7", cache_file=f)
    assert b.exact({"bias_last_n": 2}) == v and b.plans == 0


@pytest.mark.parametrize("method", METHODS)
def test_search_fits_budget(method, cost):
    contrib = fake_contrib()
    lo = cost.minimum()
    hi = cost.exact(
        {"bias_last_n": 9, "weights": [{"layer": la, "input_channel_ratio": 1.0} for la in LAYERS]}
    )
    budget = (lo + hi) // 2
    r = search(contrib, cost, budget, method, max_evals=25, seed=1)
    assert r.total <= budget and r.total == cost.exact(r.spec)
    assert r.evaluations <= 25
    assert r.gain > 0
    resolve_scheme(r.spec, cost.graph)  # a valid scheme
    generous = search(contrib, cost, hi, method, max_evals=30, seed=1)
    assert generous.gain >= r.gain


def test_budget_below_minimum_is_refused(cost):
    with pytest.raises(TinytrainError, match=r"below the minimum .* \(scheme `last`\)"):
        search(fake_contrib(), cost, cost.minimum() - 1)


def test_last_k_layers_baseline(cost):
    budget = cost.minimum() + 20_000
    spec = last_k_layers(cost, budget)
    assert cost.exact(spec) <= budget
    k = len(spec["weights"])
    convs = [op.name for op in cost.graph.convs()]
    deeper = {
        "bias_last_n": k,
        "weights": [{"layer": la, "input_channel_ratio": 1.0} for la in convs[-k - 1 :]],
    }
    assert cost.exact(deeper) > budget


def test_cli_search_then_compile(tmp_path, capsys, cost):
    contrib = tmp_path / "contrib.json"
    fake_contrib().save(contrib)
    out = tmp_path / "scheme.json"
    budget_kb = (cost.minimum() + 30_000) / 1024
    args = [
        "search",
        "--model",
        MODEL,
        "--dataset",
        "digits",
        "--budget",
        f"{budget_kb:.3f}",
        "--board",
        "m7",
        "--resolution",
        str(RES),
        "--contrib",
        str(contrib),
        "--evals",
        "15",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["about"]["predicted_total_bytes"] <= doc["about"]["budget_bytes"]
    capsys.readouterr()
    assert (
        main(
            [
                "compile",
                "--model",
                MODEL,
                "--scheme",
                str(out),
                "--classes",
                "10",
                "--resolution",
                str(RES),
                "--board",
                "m7",
                "--json",
            ]
        )
        == 0
    )
    compiled = json.loads(capsys.readouterr().out)
    # the scheme's total under the head compile builds (seed 0) equals the searched one (the head's
    # initial values do not change any size)
    assert compiled["sram"]["total"] == doc["about"]["predicted_total_bytes"]
    # below the minimum: refused with the minimum, exit 2
    low = [
        "search",
        "--model",
        MODEL,
        "--budget",
        "1",
        "--resolution",
        str(RES),
        "--contrib",
        str(contrib),
        "--out",
        str(tmp_path / "x.json"),
    ]
    assert main(low) == 2
    err = capsys.readouterr().err
    assert "below the minimum" in err and f"{cost.minimum():,} B" in err
    assert not Path(tmp_path / "x.json").exists()
