"""Pruning, reordering, in-place and storage properties of compiled programs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.autodiff import register_forward
from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.ir import Graph, Op, Tensor
from tinytrain.models import ZOO, load_model
from tinytrain.program import Storage
from tinytrain.sparse import paper_budgets, resolve_scheme

from .helpers import random_graph

WGRAD = {"conv2d_wgrad_update", "dwconv2d_wgrad_update", "conv2d_wgrad_f32", "dwconv2d_wgrad_f32"}
BWD_INPUT = {"conv2d_bwd_input_f32", "dwconv2d_bwd_input_f32", "avgpool_bwd_f32"}


def _layer_index(graph: Graph) -> dict[str, int]:
    return {op.name: i for i, op in enumerate(graph.ops)}


@pytest.mark.parametrize("model", ZOO)
def test_paper_schemes_prune(model):
    g = load_model(model)
    idx = _layer_index(g)
    for budget in paper_budgets(model):
        s = resolve_scheme(f"paper:{budget}", g)
        # unfused block backwards: the steps below are what `fused_block_backward` runs inside one kernel
        p = compile_training(g, s, CompileOptions(fused_block_backward=False))
        earliest = min(idx[name] for name in s.trainable_layers())
        back = [st for st in p.steps if st.phase in ("backward", "update")]
        # no backward/update step before the earliest layer that needs a gradient
        assert min(idx[st.layer] for st in back) == earliest
        assert p.meta["earliest_backward_layer"] == g.ops[earliest].name
        # the earliest trainable layer passes no gradient to its input
        assert not any(st.kernel in BWD_INPUT and st.layer == g.ops[earliest].name for st in back)
        # weight gradients exactly for the updated layers
        assert {st.layer for st in p.steps if st.kernel in WGRAD} == set(s.weights)
        assert {st.layer for st in p.steps if st.kernel == "bias_grad_update"} == set(s.bias_layers)
        # saved activations: only inputs of weight-updated layers, only their first k channels
        saved = {b.name: b for b in p.buffers.values() if b.role == "saved"}
        expect = {}
        for layer, w in s.weights.items():
            x = g.op(layer).inputs[0]
            assert w.channels == math.ceil(w.in_channels * w.ratio)
            if w.channels < w.in_channels:
                expect[f"saved:{x}"] = w.channels
        assert {n: b.shape[-1] for n, b in saved.items()} == expect
        # masks only where a gradient flows
        masks = {b.name.split(":", 1)[1] for b in p.buffers.values() if b.role == "mask"}
        needing = {op.output for op in g.ops[earliest:] if op.kind != "avgpool" and op.output != g.output}
        assert masks == needing
        # storage: updated weights/biases in SRAM, everything else constant in flash
        for b in p.buffers.values():
            if b.role == "weight":  # split weights: the frozen input channels (`wrest:`) stay in flash
                trained = b.layer in s.weights and not b.name.startswith("wrest:")
                assert (b.storage is Storage.SRAM) == trained, b.name
                if b.name.startswith("w:") and trained:
                    assert b.shape[-1] == s.weights[b.layer].channels or g.op(b.layer).depthwise
            elif b.role == "bias":
                assert (b.storage is Storage.SRAM) == (b.layer in s.bias_layers), b.name
            elif b.role == "table":
                assert b.storage is Storage.FLASH
            elif b.role not in ("input",):
                assert b.storage is Storage.ARENA, b.name


def test_last_scheme_is_classifier_only():
    g = load_model("proxyless-w0.3")
    p = compile_training(g, "last")
    back = [st for st in p.steps if st.phase != "forward"]
    assert [st.kernel for st in back] == ["softmax_xent", "conv2d_wgrad_update", "bias_grad_update"]
    assert not any(b.role in ("mask", "saved") for b in p.buffers.values())
    assert sum(b.storage is Storage.SRAM for b in p.buffers.values()) == 2


def test_reordering_updates_right_after_input_gradient():
    g = load_model("mbv2-w0.35", resolution=64)
    p = compile_training(g, "paper:99kb")
    steps = p.steps
    for i, st in enumerate(steps):
        if st.phase != "update":
            continue
        # an update follows its own layer's backward steps (or the mask of its output, or another update)
        prev = steps[i - 1]
        assert prev.layer == st.layer or (prev.kernel == "apply_mask_f32"), (
            i,
            st.kernel,
            st.layer,
            prev.kernel,
        )
        # the input gradient of the same layer (old weights) was computed before, never after
        later = [s for s in steps[i + 1 :] if s.layer == st.layer and s.kernel in BWD_INPUT]
        assert not later
    assert not any(b.name.startswith(("wgrad:", "bgrad:")) for b in p.buffers.values())
    # without reordering: all gradients kept, all updates after the backward pass
    q = compile_training(g, "paper:99kb", CompileOptions(reorder=False))
    phases = [s.phase for s in q.steps]
    first_update = phases.index("update")
    assert all(ph == "update" for ph in phases[first_update:])
    assert sum(b.name.startswith("wgrad:") for b in q.buffers.values()) == len(p.scheme["weights"])


def test_inplace_and_slice_flags():
    g = load_model("mcunet-5fps", resolution=96)
    on = compile_training(g, "paper:99kb")
    off = compile_training(g, "paper:99kb", CompileOptions(inplace=False))
    masks_on = [s for s in on.steps if s.kernel == "apply_mask_f32"]
    assert masks_on and sum(s.inputs["g"] == s.outputs["g"] for s in masks_on) >= len(masks_on) - 8
    assert not any(s.inputs["g"] == s.outputs["g"] for s in off.steps if s.kernel == "apply_mask_f32")
    assert any(set(s.inputs.values()) & set(s.outputs.values()) for s in on.steps if s.kernel == "add_f32")
    assert not any(
        set(s.inputs.values()) & set(s.outputs.values()) for s in off.steps if s.kernel == "add_f32"
    )
    whole = compile_training(g, "paper:99kb", CompileOptions(slice_channels=False))
    assert not any(s.kernel == "slice_channels_s8" for s in whole.steps)
    assert sum(s.kernel == "slice_channels_s8" for s in on.steps) == 2


def test_full_scheme_reaches_the_stem():
    g = random_graph(1, 16, blocks=[{"expand": 2, "k": 3, "stride": 2, "out": 8}])
    p = compile_training(g, "full")
    assert any(s.kernel == "conv2d_wgrad_update" and s.layer == "first_conv" for s in p.steps)
    assert not any(s.layer == "first_conv" and s.kernel in BWD_INPUT for s in p.steps)
    assert p.buffers["w:first_conv"].storage is Storage.SRAM


def test_op_without_gradient_rule_is_named():
    g = random_graph(2, 12)

    @register_forward("identity_test_op", clamped=False)
    def _fwd(b, op):  # forward only: no gradient rule registered
        b.emit("avgpool_s8", {"x": b.act(op.inputs[0])}, {"y": b.def_act(op.output)}, {}, op.name)

    pool = g.op("pool")
    odd = Op("mystery", "identity_test_op", list(pool.inputs), pool.output)
    g2 = Graph(g.name, g.tensors, [odd if op is pool else op for op in g.ops], g.input, g.output)
    compile_training(g2, "last")  # the op is before the classifier: no gradient needed, fine
    with pytest.raises(TinytrainError, match="layer 'mystery': op 'identity_test_op' has no gradient rule"):
        compile_training(g2, "bias")


def test_regular_conv_input_gradient_is_an_error():
    g = random_graph(3, 12)
    tensors = dict(g.tensors)
    # a second regular 3x3 conv after the stem, then train something before it
    stem = g.op("first_conv")
    t = tensors[stem.output]
    tensors["extra.out"] = Tensor("extra.out", t.shape, t.scale, t.zero)
    w = np.ones((t.shape[0], t.shape[0], 3, 3), np.int8)
    extra = Op(
        "extra",
        "conv2d",
        [stem.output],
        "extra.out",
        {"kernel": 3, "stride": 1, "padding": 1, "depthwise": False, "x_scale": t.scale, "x_zero": t.zero},
        {"weight": w, "bias": np.zeros(t.shape[0], np.int32), "w_scales": np.ones(t.shape[0], np.float32)},
    )
    ops = []
    for op in g.ops:
        if op.inputs == [stem.output]:
            op = Op(op.name, op.kind, ["extra.out"], op.output, op.attrs, op.params)
        ops.append(op)
        if op is stem:
            ops.append(extra)
    ops = [
        o if o.name != "blocks.0.residual" else Op(o.name, o.kind, [o.inputs[0], "extra.out"], o.output)
        for o in ops
    ]
    g2 = Graph(g.name, tensors, ops, g.input, g.output)
    g2.validate()
    with pytest.raises(
        TinytrainError, match="layer 'extra': conv2d 3x3 stride 1 \\(regular\\) has no input-gradient"
    ):
        compile_training(g2, "full")
    compile_training(g2, {"bias_last_n": 4})  # stops after 'extra': fine


def test_update_rule_and_qas_tables():
    g = random_graph(4, 12)
    s = compile_training(g, "bias", CompileOptions(update_rule="shadow"))
    assert (
        s.buffers["shadow:classifier"].storage is Storage.SRAM
        and s.buffers["shadow:classifier"].dtype == "f32"
    )
    op = g.op("classifier")
    qas = compile_training(g, "last").buffers["q:classifier"].data
    noqas = compile_training(g, "last", CompileOptions(qas=False)).buffers["q:classifier"].data
    xs = op.attrs["x_scale"]
    np.testing.assert_array_equal(qas, (xs / op.w_scales.astype(np.float64)).astype(np.float32))
    np.testing.assert_array_equal(noqas, (xs * op.w_scales.astype(np.float64)).astype(np.float32))
    st = compile_training(g, "last", CompileOptions(update_rule="stochastic"))
    assert any(s.attrs.get("rng") == "$rng" for s in st.steps)
    with pytest.raises(TinytrainError, match="unknown update rule"):
        CompileOptions(update_rule="truncate")
