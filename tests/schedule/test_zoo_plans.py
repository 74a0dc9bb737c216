"""Planning real compiled programs (needs tinytrain.compiler)."""

import functools
import json

import pytest

from tinytrain import TinytrainError
from tinytrain.models.zoo import load_model
from tinytrain.schedule import check_fits, check_placement, estimate_levers, forward_peak, plan_memory

compiler = pytest.importorskip("tinytrain.compiler")
KB = 1024
CASES = [("mcunet-5fps", "paper:99kb"), ("mbv2-w0.35", "paper:99kb"), ("proxyless-w0.3", "paper:98kb")]


#: the memory levers the compiler applies, all off: what `estimate_levers` models as its baseline
LEVERS_OFF = {"split_weights": False, "input_in_arena": False, "patch": False}


@functools.cache
def compiled(model: str, scheme: str, res: int = 128, levers: bool = False):
    g = load_model(model, res)
    return g, compiler.compile_training(g, scheme, None if levers else compiler.CompileOptions(**LEVERS_OFF))


@pytest.mark.parametrize("model, scheme", CASES)
def test_zoo_plan_is_valid_and_accounted(model, scheme):
    _, prog = compiled(model, scheme)
    plan = plan_memory(prog, board="m7")
    lts = list(plan.lifetimes.values())
    assert check_placement(lts, plan.offsets) == []
    assert plan.arena == min(plan.strategies.values()) >= plan.lower_bound
    assert sum(plan.breakdown.values()) == plan.total
    assert plan.breakdown["input"] == 128 * 128 * 3
    assert plan.breakdown["trainable_weights"] > 0 and plan.flash > 0
    json.dumps(plan.to_dict())
    if plan.total > 320 * KB:
        with pytest.raises(TinytrainError, match="does not fit: needs .* board `m7` has 327,680"):
            check_fits(plan, "m7")
    else:
        check_fits(plan, "m7")


@pytest.mark.parametrize(
    "model, scheme, peak",
    [
        ("mcunet-5fps", "paper:99kb", 160 * KB),
        ("mbv2-w0.35", "paper:99kb", 240 * KB),
        ("proxyless-w0.3", "paper:98kb", 128 * KB),
    ],
)
def test_forward_peak_of_compiled_inference_matches_the_graph_model(model, scheme, peak):
    g, prog = compiled(model, scheme)
    fp = forward_peak(prog)
    assert fp.peak == peak
    assert estimate_levers(g).results["baseline"].forward_peak == peak


def test_levers_with_a_training_program():
    g, prog = compiled("mbv2-w0.35", "paper:99kb")
    est = estimate_levers(g, prog)
    base, best = est.results["baseline"], est.results["patch+inplace_dw+input_in_arena"]
    assert base.total == plan_memory(prog).total  # baseline estimate = the plan itself
    assert best.total is not None and best.total < base.total - 100 * KB
    assert est.backward_peak is not None and est.backward_peak_inplace_dw is not None
    assert est.backward_peak_inplace_dw <= est.backward_peak
    assert est.partial_weight_savings  # paper:99kb trains some layers on 1/8 of their channels
    split = plan_memory(compiled("mbv2-w0.35", "paper:99kb", levers=True)[1])
    assert split.breakdown["trainable_weights"] == (
        plan_memory(prog).breakdown["trainable_weights"] - sum(est.partial_weight_savings.values())
    )
    # no double count: a program that already splits its weights has nothing left to save
    split_prog = compiled("mbv2-w0.35", "paper:99kb", levers=True)[1]
    assert estimate_levers(g, split_prog).partial_weight_savings == {}


def test_full_scheme_cannot_be_patched():
    g, prog = compiled("proxyless-w0.3", "full", 64)
    est = estimate_levers(g, prog)
    assert "not applicable" in est.results["patch"].note
