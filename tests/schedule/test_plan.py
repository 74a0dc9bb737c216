import json

import pytest

from tests.schedule.helpers import buf, program, step
from tinytrain import TinytrainError
from tinytrain.program import Storage
from tinytrain.schedule import (
    DEFAULT_STACK_BYTES,
    RUNTIME_STATE_BYTES,
    board_sram_bytes,
    check_fits,
    plan_memory,
)


def _toy(act: int = 1000):
    bufs = [
        buf("in", 300, Storage.INPUT),
        buf("w0", 500, Storage.FLASH, role="weight"),
        buf("w1", 200, Storage.SRAM, role="weight", layer="l1"),
        buf("b1", 12, Storage.SRAM, role="bias"),
        buf("sh", 40, Storage.SRAM, role="shadow"),
        buf("t", 64, Storage.FLASH, role="table"),
        buf("a0", act, layer="l0"),
        buf("a1", 100, layer="l1", role="saved"),
        buf("z", 10, layer="l2"),
        buf("g", 40, role="grad", layer="l2"),
    ]
    steps = [
        step(["in", "w0"], ["a0"], layer="l0"),
        step(["a0", "w1", "b1"], ["a1"], layer="l1"),
        step(["a1"], ["z"], layer="l2"),
        step(["z"], ["g"], layer="l2", phase="loss"),
        step(["g", "a1", "w1", "sh"], ["w1", "sh"], layer="l1", phase="update"),
    ]
    return program(bufs, steps)


def test_breakdown_sums_to_total_and_categories():
    plan = plan_memory(_toy())
    assert sum(plan.breakdown.values()) == plan.total
    assert plan.breakdown["arena"] == plan.arena == 1000 + 104  # a0 + a1 live together at step 1
    assert plan.breakdown["trainable_weights"] == 200
    assert plan.breakdown["trainable_biases"] == 16  # aligned to 8
    assert plan.breakdown["shadow_copies"] == 40
    assert plan.breakdown["input"] == 304
    assert plan.breakdown["stack"] == DEFAULT_STACK_BYTES
    assert plan.breakdown["runtime_state"] == RUNTIME_STATE_BYTES
    assert plan.flash == 564 and plan.flash_breakdown == {"weight": 500, "table": 64}
    assert plan.lower_bound <= plan.arena


def test_stack_estimate_is_a_parameter():
    more = plan_memory(_toy(), stack_estimate=4096).total - plan_memory(_toy()).total
    assert more == 4096 - DEFAULT_STACK_BYTES


def test_peak_step_and_tensors():
    plan = plan_memory(_toy())
    assert plan.peak_step == 1
    assert plan.peak_step_info == {"kernel": "op", "layer": "l1", "phase": "forward"}
    assert [(p.name, p.nbytes, p.layer) for p in plan.peak_tensors] == [("a0", 1000, "l0"), ("a1", 100, "l1")]


def test_to_dict_is_json_and_report_is_readable():
    plan = plan_memory(_toy(), board="m7")
    d = json.loads(json.dumps(plan.to_dict()))
    assert d["total"] == plan.total and d["breakdown"]["arena"] == plan.arena
    assert d["arena"]["offsets"]["a0"] == plan.offsets["a0"]
    assert set(d["arena"]["strategies"]) >= {"greedy_size_first_fit", "program_order_first_fit"}
    assert d["fits"] is True and d["sram_budget"] == 320 * 1024
    text = plan.report()
    assert "total SRAM" in text and "arena peak at step 1" in text and "a0" in text and "fits" in text


def test_board_sizes():
    assert board_sram_bytes("m7") == 320 * 1024
    assert board_sram_bytes("m4") == 256 * 1024
    assert board_sram_bytes("stm32f405") == 192 * 1024
    with pytest.raises(TinytrainError, match="unknown board"):
        board_sram_bytes("pdp11")


def test_check_fits_passes_and_fails_with_a_useful_message():
    check_fits(plan_memory(_toy()), "m7")
    big = plan_memory(_toy(act=400 * 1024))
    with pytest.raises(TinytrainError) as exc:
        check_fits(big, "m7")
    msg = str(exc.value)
    over = big.total - 320 * 1024
    assert msg.startswith(f"does not fit: needs {big.total:,} bytes of SRAM, board `m7` has {320 * 1024:,}")
    assert f"({over:,} bytes over)" in msg
    assert "largest: arena" in msg and "a0 409,600 B" in msg
    with pytest.raises(TinytrainError, match="needs a board"):
        check_fits(big)


def test_inference_steps_share_the_arena():
    p = _toy()
    p.infer_steps = [step(["in", "w0"], ["a0"]), step(["a0", "w1", "b1"], ["z"])]
    plan = plan_memory(p)
    assert plan.num_steps == 7
    assert plan.lifetimes["a0"].intervals == [(0, 1), (5, 6)]
    assert plan_memory(p, include_infer=False).num_steps == 5
