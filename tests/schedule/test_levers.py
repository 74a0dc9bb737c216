import functools

import pytest

from tests.schedule.helpers import buf, program, step
from tinytrain.models.zoo import load_model
from tinytrain.program import Storage
from tinytrain.schedule import estimate_levers, forward_peak
from tinytrain.schedule.levers import _patch_stage, _valid_cuts, best_patch

KB = 1024


@functools.cache
def graph(name: str, res: int = 128):
    return load_model(name, res)


@functools.cache
def levers(name: str):
    return estimate_levers(graph(name))


def test_forward_peak_of_a_program():
    p = program(
        [buf("in", 8, Storage.INPUT), buf("a", 100), buf("b", 300), buf("c", 50), buf("g", 8)],
        [
            step(["in"], ["a"], layer="l0"),
            step(["a"], ["b"], layer="l1"),
            step(["b"], ["c"], layer="l2"),
            step(["c", "a"], ["g"], layer="l0", phase="backward"),
        ],
    )
    fp = forward_peak(p)  # a dies at its last *forward* reader here
    assert (fp.peak, fp.step, fp.layer) == (104 + 304, 1, "l1")
    assert fp.tensors[0] == ("b", 300)


@pytest.mark.parametrize(
    "model, peak, layer",
    [
        ("mcunet-5fps", 160 * KB, "blocks.1.pointwise1"),  # 8x64x64 in + 32x64x64 out
        ("mbv2-w0.35", 240 * KB, "blocks.1.depthwise"),  # 48x64x64 in + 48x32x32 out
        ("proxyless-w0.3", 128 * KB, "blocks.0.depthwise"),  # 16x64x64 in + out
    ],
)
def test_baseline_forward_peak_at_128(model, peak, layer):
    r = levers(model).results["baseline"]
    assert (r.forward_peak, r.peak_at, r.input_separate) == (peak, layer, 48 * KB)


def test_inplace_depthwise_numbers():
    r = levers("mbv2-w0.35").results["inplace_dw"]
    # the dw step is now 192K + 4.3K scratch; pointwise1 (32K in + 192K out) remains
    assert (r.forward_peak, r.peak_at) == (224 * KB, "blocks.1.pointwise1")
    assert levers("mcunet-5fps").results["inplace_dw"].forward_peak == 160 * KB  # pointwise1 dominates


def test_input_in_arena_moves_the_input_into_the_arena():
    for m in ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"):
        r = levers(m).results["input_in_arena"]
        assert r.input_separate == 0
        assert r.forward_peak == levers(m).results["baseline"].forward_peak  # first conv: 48K + 64K < peak


@pytest.mark.parametrize("model", ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"])
def test_patching_meets_the_forward_targets(model):
    est = levers(model)
    for name, r in est.results.items():
        if name.startswith("patch"):
            assert r.patch is not None and r.patch.network_overhead <= 0.25
            assert r.forward_peak < est.results["baseline"].forward_peak
    assert est.results["patch"].forward_peak <= 70 * KB
    assert "lever" in est.report() and est.to_dict()["levers"]["patch"]["patch"]["grid"] >= 2


def test_one_patch_is_the_whole_stage():
    g = graph("mcunet-5fps")
    pr = _patch_stage(g, 3, 1, inplace_dw=False, input_in_arena=False)
    assert pr.extra_macs == 0
    # stage output (8x64x64) held whole + first_conv.out and blocks.0.depthwise.out tiles (whole)
    assert pr.stage_peak == 32 * KB + 64 * KB + 64 * KB
    assert pr.tiles["first_conv.out"] == (16, 64, 64)


def test_halo_of_a_2x2_grid():
    g = graph("mcunet-5fps")
    pr = _patch_stage(g, 3, 2, inplace_dw=False, input_in_arena=False)
    # pw2 1x1 needs rows 0..31 of dw.out; the 3x3 dw needs one more row of first_conv.out
    assert pr.tiles["blocks.0.depthwise.out"] == (16, 32, 32)
    assert pr.tiles["first_conv.out"] == (16, 33, 33)
    assert pr.extra_macs > 0


def test_cuts_respect_residuals():
    g = graph("mcunet-5fps")
    cuts = _valid_cuts(g)
    names = [g.ops[n - 1].name for n in cuts]
    assert "blocks.2.depthwise" not in names  # blocks.1.pointwise2.out still crosses to blocks.2.residual
    assert "blocks.2.residual" in names


def test_floor_prefers_fewer_macs():
    g = graph("mbv2-w0.35")
    low, _, _ = best_patch(g)
    cheap, peak, _ = best_patch(g, floor=100 * KB)
    assert cheap.extra_macs <= low.extra_macs and peak <= 100 * KB
