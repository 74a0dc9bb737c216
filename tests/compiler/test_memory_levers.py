"""The memory levers of the compiler (docs/memory.md): split trainable weights, the input in the arena and
the patch-based first stage. Each is a CompileOptions switch and leaves results bit-identical."""

from __future__ import annotations

import functools
import shutil
from dataclasses import replace

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.compiler import Builder, CompileOptions, compile_training, resolve_scheme
from tinytrain.models import load_model
from tinytrain.models.head import replace_head
from tinytrain.program import Storage
from tinytrain.reference.training import Trainer
from tinytrain.schedule import plan_memory
from tinytrain.schedule.patch import chain_cuts, plan_patch

from .helpers import TWO_BLOCKS, assert_same_training, headed_graph, lever_on_off, random_input, train

ZOO = [("mcunet-5fps", "paper:99kb"), ("mbv2-w0.35", "paper:99kb"), ("proxyless-w0.3", "paper:98kb")]
OFF = CompileOptions(split_weights=False, input_in_arena=False, patch=False, inplace_dw_forward=False)


@functools.cache
def _graph(model: str, res: int):
    return replace_head(load_model(model, resolution=res), 10, seed=0)


def _stage_and_logits(program, x):
    tr = Trainer(program)
    seen = {}

    def trace(step, bufs):
        for name in step.outputs.values():
            if name.startswith("act:"):
                seen[name] = bufs[name].copy()

    tr.trace = trace
    logits = tr.infer(x)
    return seen, logits


@pytest.mark.parametrize("res", [128, 80])
@pytest.mark.parametrize("model,scheme", ZOO)
def test_patched_stage_is_bit_identical(model, scheme, res):
    """Patched (the compiler's choice, and the deepest patchable stage on a 3x3 grid: through residual blocks,
    with crops of the skip tiles and padded border copies) vs unpatched: every activation the patched program
    materialises, and the logits, are identical."""
    g = _graph(model, res)
    x = random_input(g, seed=res)
    base_acts, base_logits = _stage_and_logits(compile_training(g, scheme, OFF), x)
    probe = Builder(g, resolve_scheme(scheme, g), CompileOptions())
    deepest = max(c for c in chain_cuts(g) if probe.stage_patchable(c))
    assert any(op.kind == "add" for op in g.ops[:deepest])  # the stage reaches through a residual block
    for opts in (CompileOptions(), CompileOptions(patch_cut=deepest, patch_grid=3)):
        # activations are compared by buffer: the in-place depthwise forward (tested on its own) is off
        prog = compile_training(g, scheme, replace(opts, inplace_dw_forward=False))
        pp = prog.meta["patch"]
        assert pp is not None and pp["tiles"] >= 4
        assert any(s.kernel == "tile_store_s8" for s in prog.infer_steps)
        acts, logits = _stage_and_logits(prog, x)
        assert f"act:{pp['stage_output']}" in acts
        assert f"act:{pp['stage_output']}" in base_acts
        for name, a in acts.items():
            np.testing.assert_array_equal(a, base_acts[name], err_msg=f"{name} with {pp}")
        np.testing.assert_array_equal(logits, base_logits)
        # the stage's high-resolution tensors never exist whole
        stage = {op.name for op in g.ops[: pp["cut"]]}
        whole = {f"act:{op.output}" for op in g.ops if op.name in stage} - {f"act:{pp['stage_output']}"}
        assert not whole & set(prog.buffers)


def test_patched_training_is_bit_identical():
    g = _graph("mcunet-5fps", 80)
    xs = [random_input(g, seed=s) for s in range(3)]
    ys = [i % 10 for i in range(len(xs))]
    base = train(g, "paper:99kb", CompileOptions(patch=False), xs, ys)
    assert_same_training(train(g, "paper:99kb", CompileOptions(patch_cut=6, patch_grid=4), xs, ys), base)


def test_patch_not_applied_where_a_gradient_reaches_the_stage():
    g = headed_graph(0, 32)
    assert compile_training(g, "full").meta["patch"] is None
    with pytest.raises(TinytrainError, match="cannot patch the first 1 ops"):
        compile_training(g, "full", CompileOptions(patch_cut=1, patch_grid=2))
    assert compile_training(g, "last", CompileOptions(patch_cut=1, patch_grid=2)).meta["patch"]["tiles"] == 4


def test_patch_plan_windows_cover_the_receptive_field():
    g = _graph("proxyless-w0.3", 80)
    pp = plan_patch(g, 6, 3)
    out = pp.stage_output
    _, h, w = g.tensors[out].shape
    covered = np.zeros((h, w), int)
    for t in pp.tiles:
        a, b, c, d = t.out
        covered[a:b, c:d] += 1
    assert (covered == 1).all()  # the output tiles partition the stage output
    assert pp.patched_macs > pp.stage_macs and 0 < pp.overhead < 1


@pytest.mark.parametrize("model,scheme", ZOO)
def test_input_in_arena(model, scheme):
    g = _graph(model, 128)
    prog = compile_training(g, scheme, CompileOptions(patch=False))
    assert prog.buffers["input"].storage is Storage.ARENA
    plan = plan_memory(prog, "m7")
    assert plan.breakdown["input"] == 0 and "input" in plan.offsets
    sep = plan_memory(compile_training(g, scheme, CompileOptions(patch=False, input_in_arena=False)), "m7")
    assert sep.breakdown["input"] == 128 * 128 * 3
    assert plan.total <= sep.total - 128 * 128 * 3 + 8  # its bytes are reused after the stem
    # the sample is live from the start of each run to its last reader only
    first_conv = next(t for t, s in enumerate(prog.steps) if s.layer == g.ops[0].name)
    assert plan.lifetimes["input"].intervals[0] == (0, first_conv)


@pytest.mark.parametrize("model,scheme", ZOO)
def test_all_levers_lower_the_total(model, scheme):
    g = _graph(model, 128)
    off = plan_memory(compile_training(g, scheme, OFF), "m7").total
    on = plan_memory(compile_training(g, scheme), "m7")
    assert on.total < off - 64 * 1024
    assert on.breakdown["input"] == 0


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
def test_generated_c_with_every_lever_matches_the_reference(tmp_path):
    """The generated firmware (host-native build) with split weights, the input in the arena and a patched
    first stage on a 2x2 grid: losses, parameters and predictions identical to the host reference."""
    from tinytrain.job import EmulateConfig, emulate

    rec = emulate(
        EmulateConfig(
            model="mcunet-5fps",
            scheme="paper:99kb",
            classes=2,
            resolution=64,
            options=CompileOptions(patch_cut=6, patch_grid=2),
            backend="host",
            steps=3,
            max_test=4,
            build_dir=str(tmp_path / "build"),
            save_record=False,
        )
    ).record
    assert rec["matched_reference"], rec["match"]
    assert rec["match"]["losses"] and rec["match"]["params"] and rec["match"]["predictions"]


@pytest.mark.parametrize("rule", ["nearest", "stochastic"])
def test_inplace_dw_grad_is_bit_identical(rule):
    g = headed_graph(3, blocks=TWO_BLOCKS)
    scheme = {"bias_last_n": 6, "weights": [{"layer": "blocks.1.pointwise1", "input_channel_ratio": 0.25}]}
    opts = CompileOptions(update_rule=rule, fused_block_backward=False)
    base, run = lever_on_off(g, scheme, opts, samples=4, classes=2, inplace_dw_grad=False)
    prog = run.program
    kernels = [s.kernel for s in prog.steps]
    assert "dwconv2d_bwd_input_inplace_f32" in kernels
    for t, s in enumerate(prog.steps):  # the layer's bias update runs first: it reads g, which dx overwrites
        if s.kernel == "dwconv2d_bwd_input_inplace_f32":
            assert s.outputs["dx"] == s.inputs["g"]
            assert prog.steps[t - 1].kernel == "bias_grad_update" and prog.steps[t - 1].layer == s.layer
    assert_same_training(run, base)
    plan = plan_memory(prog)
    assert any(
        k.startswith("scratch#") and k.endswith("dwconv2d_bwd_input_inplace_f32") for k in plan.offsets
    )


def test_inplace_dw_grad_lowers_the_backward_peak():
    g = _graph("mcunet-5fps", 128)
    opts = CompileOptions(patch=False, fused_block_backward=False)
    on = plan_memory(compile_training(g, "paper:99kb", opts))
    off = plan_memory(compile_training(g, "paper:99kb", replace(opts, inplace_dw_grad=False)))
    back = [t for t, s in enumerate(compile_training(g, "paper:99kb", opts).steps) if s.phase != "forward"]
    assert max(on.live_per_step[t] for t in back) < max(off.live_per_step[t] for t in back) - 24 * 1024


@pytest.mark.parametrize("rule", ["nearest", "stochastic"])
def test_inplace_dw_forward_is_bit_identical(rule):
    """A stride-1 depthwise conv writing over its input: training losses, parameters and inference logits
    identical with the lever on and off, on a random graph (depthwise weights trained on some layers, so some
    inputs are saved and must stay out of place) and on MCUNet (patched first stage)."""
    blocks = [
        *TWO_BLOCKS,
        {"expand": 2, "k": 3, "stride": 2, "out": 12},
        {"expand": 2, "k": 3, "stride": 1, "out": 12},
    ]
    g = headed_graph(5, blocks=blocks, classes=3)
    scheme = {
        "bias_last_n": 8,
        "weights": [
            {"layer": "blocks.1.depthwise", "input_channel_ratio": 1.0},
            {"layer": "blocks.3.pointwise1", "input_channel_ratio": 0.5},
        ],
    }
    for graph, sch in ((g, scheme), (_graph("mcunet-5fps", 64), "paper:99kb")):
        base, run = lever_on_off(graph, sch, CompileOptions(update_rule=rule), inplace_dw_forward=False)
        prog = run.program
        inplace = [s for s in prog.steps if s.kernel == "dwconv2d_s8_inplace"]
        assert inplace and any(s.kernel == "dwconv2d_s8_inplace" for s in prog.infer_steps)
        for s in inplace:
            assert s.outputs["y"] == s.inputs["x"] and s.attrs["stride"] == 1
        saved = {v["buffer"] for v in prog.meta["saved"].values()}
        assert not saved & {s.inputs["x"] for s in inplace}  # a saved input is never overwritten
        if graph is g:  # blocks.1.depthwise trains its weights on its whole input: kept out of place
            assert any(s.kernel == "dwconv2d_s8" and s.layer == "blocks.1.depthwise" for s in prog.steps)
        assert_same_training(run, base)
        x = random_input(graph, seed=0)
        np.testing.assert_array_equal(run.trainer.infer(x), base.trainer.infer(x))
        plan = plan_memory(prog)
        assert any(k.startswith("scratch#") and k.endswith("dwconv2d_s8_inplace") for k in plan.offsets)


def test_inplace_dw_forward_lowers_the_forward_peak():
    """With only the first stage patched (later stages would take the forward peak into tiles): MCUNet's
    forward peak at blocks.2 (its 48x32x32 expansion) falls by the depthwise output it no longer needs; with
    every lever on it still lowers the arena."""
    g = _graph("mcunet-5fps", 128)
    first_only = CompileOptions(patch_cut=6, patch_grid=4)
    on = plan_memory(compile_training(g, "paper:99kb", first_only))
    off = plan_memory(compile_training(g, "paper:99kb", replace(first_only, inplace_dw_forward=False)))
    assert on.arena <= off.arena - 12 * 1024
    every = plan_memory(compile_training(g, "paper:99kb"))
    assert (
        every.arena
        < plan_memory(compile_training(g, "paper:99kb", CompileOptions(inplace_dw_forward=False))).arena
    )


@pytest.mark.parametrize("rule", ["nearest", "stochastic", "shadow"])
def test_fused_block_backward_is_bit_identical(rule):
    """The channel-wise fused inverted-residual backward: losses, parameters identical with the lever on and
    off (random graph: stride 1 and 2, residual blocks, split and whole pw1 weight updates, bias updates; and
    MCUNet `paper:99kb`)."""
    blocks = [
        *TWO_BLOCKS,
        {"expand": 2, "k": 3, "stride": 2, "out": 12},
        {"expand": 3, "k": 3, "stride": 1, "out": 12},
    ]
    g = headed_graph(7, blocks=blocks, classes=3)
    scheme = {
        "bias_last_n": 9,
        "weights": [
            {"layer": "blocks.0.pointwise1", "input_channel_ratio": 1.0},
            {"layer": "blocks.1.pointwise1", "input_channel_ratio": 0.5},
            {"layer": "blocks.2.pointwise1", "input_channel_ratio": 1.0},
            {"layer": "blocks.3.depthwise", "input_channel_ratio": 1.0},
        ],
    }
    for graph, sch in ((g, scheme), (_graph("mcunet-5fps", 64), "paper:99kb")):
        base, run = lever_on_off(graph, sch, CompileOptions(update_rule=rule), fused_block_backward=False)
        prog = run.program
        fused = [s for s in prog.steps if s.kernel == "ir_block_bwd_f32"]
        assert fused
        if graph is g:  # blocks.3 trains its depthwise weights: not fused
            assert {s.layer for s in fused} == {f"blocks.{i}.depthwise" for i in range(3)}
            assert any("dx" not in s.outputs for s in fused)  # the earliest block: no input gradient
            assert any("x1" in s.inputs and "w1_rest" in s.inputs for s in fused)  # split pw1 update
            assert any("x1" in s.inputs and "w1_rest" not in s.inputs for s in fused)
        assert_same_training(run, base)
        plan = plan_memory(prog)
        assert any(k.startswith("scratch#") and k.endswith("ir_block_bwd_f32") for k in plan.offsets)


@pytest.mark.parametrize("clip", [True, False])
def test_stage_through_residual_blocks_both_window_rules(clip):
    """A stage through residual blocks (skip tiles cropped), its ops computing only inside the image (padded
    border copies) or their whole windows (padding filled in place): logits and stage output identical to the
    unpatched program, and clipping recomputes fewer MACs."""
    g = _graph("proxyless-w0.3", 80)
    scheme = resolve_scheme("paper:98kb", g)
    x = random_input(g, seed=7)
    base_acts, base_logits = _stage_and_logits(compile_training(g, scheme, OFF), x)
    cut = 10  # through blocks.2 and its residual add
    assert g.ops[cut - 1].kind == "add"
    pp = plan_patch(g, cut, 3, clip=clip)
    prog = Builder(g, scheme, replace(OFF, patch=True), pp).build()
    kernels = {s.kernel for s in prog.infer_steps}
    assert ("tile_fill_s8" in kernels) != clip and "add_s8" in kernels
    acts, logits = _stage_and_logits(prog, x)
    np.testing.assert_array_equal(acts[f"act:{pp.stage_output}"], base_acts[f"act:{pp.stage_output}"])
    np.testing.assert_array_equal(logits, base_logits)
    assert plan_patch(g, cut, 3, clip=True).extra_macs < plan_patch(g, cut, 3, clip=False).extra_macs


def test_later_stages_and_the_split_first_stage():
    """MCUNet at 128: the chooser ends at its backward floor (55.0 KB arena) with a first stage cut where the
    rest of it runs as its own stage (recomputing half the MACs of one long first stage), and a later stage
    around blocks.3; every stage's tiles have their own buffers."""
    g = _graph("mcunet-5fps", 128)
    prog = compile_training(g, "paper:99kb")
    stages = prog.meta["patches"]
    assert [s["start"] for s in stages][:2] == [0, 6] and len(stages) >= 3
    one_long = plan_patch(g, stages[1]["cut"], stages[0]["grid"], False)  # ops 0..cut-1 as one stage
    assert sum(s["extra_macs"] for s in stages) < one_long.extra_macs
    assert sum(s["extra_macs"] for s in stages) <= 0.15 * g.macs()
    plan = plan_memory(prog, "m7")
    assert plan.peak_step_info["phase"] == "backward" and plan.arena <= 56320
    assert any(b.startswith("s6.tile") for b in prog.buffers) and any(
        b.startswith("s10.tile") for b in prog.buffers
    )
