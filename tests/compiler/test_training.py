"""The host training reference: it learns, it is deterministic, and every compiler optimization
(reordering, in-place, channel slicing) leaves the trained parameters bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.models import load_model
from tinytrain.models.head import replace_head
from tinytrain.reference.inference import run_forward
from tinytrain.reference.training import Trainer

from .helpers import TWO_BLOCKS, assert_same_training, headed_graph, random_input, train, two_class_problem


@pytest.fixture(scope="module")
def tiny():
    return headed_graph(0)


@pytest.mark.parametrize("scheme", ["last", "bias", "full"])
@pytest.mark.parametrize("rule", ["nearest", "stochastic", "shadow"])
def test_training_reduces_loss(tiny, scheme, rule):
    xs, ys, xt, yt = two_class_problem()
    tr = Trainer(compile_training(tiny, scheme, CompileOptions(update_rule=rule)))
    acc0 = tr.evaluate(xt, yt)
    first = np.mean([tr.train_step(x, y, 0.02) for x, y in zip(xs, ys, strict=False)])
    second = np.mean([tr.train_step(x, y, 0.02) for x, y in zip(xs, ys, strict=False)])
    assert second < 0.5 * first
    assert tr.evaluate(xt, yt) >= max(acc0, 0.9)


def _train(graph, scheme, options, steps=12, seed=7):
    xs, ys, _, _ = two_class_problem(1, steps, graph.resolution)
    return train(graph, scheme, options, xs, ys, seed=seed)


@pytest.mark.parametrize("rule", ["nearest", "stochastic", "shadow"])
def test_optimizations_are_bit_identical(rule):
    g = headed_graph(3, blocks=TWO_BLOCKS)
    scheme = {
        "bias_last_n": 6,
        "weights": [
            {"layer": "blocks.1.pointwise1", "input_channel_ratio": 0.25},
            {"layer": "blocks.1.depthwise", "input_channel_ratio": 0.5},
            {"layer": "blocks.0.pointwise2", "input_channel_ratio": 1},
        ],
    }
    base = _train(g, scheme, CompileOptions(update_rule=rule))
    for opts in (
        dict(reorder=False),
        dict(inplace=False),
        dict(slice_channels=False),
        dict(reorder=False, inplace=False, slice_channels=False),
    ):
        run = _train(g, scheme, CompileOptions(update_rule=rule, **opts))
        assert run.params.keys() == base.params.keys()
        assert_same_training(run, base, f"with {opts}")


def test_determinism_and_seed(tiny):
    a = _train(tiny, "full", CompileOptions(update_rule="stochastic"))
    b = _train(tiny, "full", CompileOptions(update_rule="stochastic"))
    c = _train(tiny, "full", CompileOptions(update_rule="stochastic"), seed=8)
    assert_same_training(b, a)
    assert any(not np.array_equal(a.params[k], c.params[k]) for k in a.params)


def test_infer_matches_inference_reference_and_weights_change():
    g = load_model("mcunet-5fps", resolution=48)
    x = random_input(g, 0)
    tr = Trainer(compile_training(g, "paper:99kb"))
    np.testing.assert_array_equal(tr.infer(x), run_forward(g, x)[g.output].reshape(-1))
    before = {k: v.copy() for k, v in tr.parameters().items()}
    loss = tr.train_step(x, 3, 0.05)
    assert np.isfinite(loss) and loss > 0
    assert any(not np.array_equal(before[k], v) for k, v in tr.parameters().items())
    assert tr.buffers["w:blocks.1.pointwise1"].flags.writeable is False  # frozen: flash


def test_save_load_roundtrip(tiny, tmp_path):
    xs, ys, xt, _ = two_class_problem(2, 8)
    prog = compile_training(tiny, "full", CompileOptions(update_rule="stochastic"))
    tr = Trainer(prog)
    for x, y in zip(xs, ys, strict=False):
        tr.train_step(x, y, 0.05)
    tr.save(tmp_path / "p.npz")
    fresh = Trainer(prog)
    fresh.load(tmp_path / "p.npz")
    for k, v in tr.parameters().items():
        np.testing.assert_array_equal(fresh.parameters()[k], v)
    assert fresh.rng.state == tr.rng.state
    np.testing.assert_array_equal(fresh.infer(xt[0]), tr.infer(xt[0]))
    with pytest.raises(TinytrainError, match="expected|no array"):
        Trainer(compile_training(replace_head(tiny, 3), "full")).load(tmp_path / "p.npz")


def test_bad_inputs(tiny):
    tr = Trainer(compile_training(tiny, "last"))
    with pytest.raises(TinytrainError, match="input must be int8"):
        tr.train_step(np.zeros((12, 12, 3), np.float32), 0, 0.1)
    with pytest.raises(TinytrainError, match="label 5 outside"):
        tr.train_step(np.zeros((12, 12, 3), np.int8), 5, 0.1)


@pytest.mark.parametrize("rule", ["nearest", "shadow"])
def test_split_weights_bit_identical_and_smaller(rule):
    g = headed_graph(3, blocks=TWO_BLOCKS)
    scheme = {
        "bias_last_n": 6,
        "weights": [
            {"layer": "blocks.1.pointwise1", "input_channel_ratio": 0.25},
            {"layer": "blocks.1.pointwise2", "input_channel_ratio": 0.5},
        ],
    }
    base = _train(g, scheme, CompileOptions(update_rule=rule, split_weights=False))
    run = _train(g, scheme, CompileOptions(update_rule=rule, split_weights=True))
    prog, params = run.program, run.params
    assert prog.buffers["w:blocks.1.pointwise1"].shape == (24, 1, 1, 2)
    assert prog.buffers["wrest:blocks.1.pointwise1"].shape == (24, 1, 1, 6)
    assert {s.kernel for s in prog.steps} >= {"conv2d_split_s8", "conv2d_split_bwd_input_f32"}
    assert run.losses == base.losses
    for k, v in base.params.items():
        np.testing.assert_array_equal(params[k], v[..., : params[k].shape[-1]], err_msg=k)
    for name in ("blocks.1.pointwise1", "blocks.1.pointwise2"):
        k = prog.buffers[f"w:{name}"].shape[-1]
        np.testing.assert_array_equal(base.params[f"w:{name}"][..., k:], prog.buffers[f"wrest:{name}"].data)


def test_head_lr_scale_scales_only_the_classifier_tables(tiny):
    base = compile_training(tiny, "bias", CompileOptions())
    scaled = compile_training(tiny, "bias", CompileOptions(head_lr_scale=8.0))
    head = scaled.buffers[scaled.logits_buffer].layer
    seen = 0
    for name, buf in base.buffers.items():
        if buf.role != "table" or not name.startswith(("q:", "qb:")):
            continue
        want = buf.data.astype(np.float64) * (8.0 if buf.layer == head else 1.0)
        np.testing.assert_array_equal(scaled.buffers[name].data, want.astype(np.float32))
        seen += buf.layer == head
    assert seen == 2  # the head's q and qb
    # a head scale of s equals training the head alone with s times the learning rate (exactly: a power of 2)
    last1 = Trainer(compile_training(tiny, "last", CompileOptions(head_lr_scale=4.0)))
    last4 = Trainer(compile_training(tiny, "last", CompileOptions()))
    xs, ys, _, _ = two_class_problem(2, 8, 12)
    for x, y in zip(xs, ys, strict=True):
        assert last1.train_step(x, y, 0.01) == last4.train_step(x, y, 0.04)
    for k, v in last1.parameters().items():
        np.testing.assert_array_equal(v, last4.parameters()[k])
    with pytest.raises(TinytrainError, match="head_lr_scale"):
        CompileOptions(head_lr_scale=0.0)
