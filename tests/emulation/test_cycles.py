from __future__ import annotations

import json

import pytest

from emulation.cycles import CLASSES, CORE_MODELS, COREMARK_ERROR, LABEL, estimate_cycles, range_text
from emulation.plugin import PLUGIN_SOURCE


def test_every_class_has_a_cost_on_every_core() -> None:
    for model in CORE_MODELS.values():
        assert set(model.costs) == set(CLASSES)
        assert model.source


def test_plugin_and_model_agree_on_the_classes() -> None:
    src = PLUGIN_SOURCE.read_text()
    start = src.index("class_names[C_N] = {")
    names = src[start : src.index("};", start)]
    assert [n for n in CLASSES if f'"{n}"' in names] == list(CLASSES)


def test_m4_costs_from_the_trm() -> None:
    est = estimate_cycles(
        {"alu": 10, "load": 5, "fp_mac": 2, "fp_div": 1}, "m4", {"load_extra_words": 3}, clock_hz=100
    )
    assert est.cycles == 10 * 1 + 5 * 2 + 2 * 3 + 14 + 3
    assert est.instructions == 18
    assert est.seconds == pytest.approx(est.cycles / 100)
    assert est.label == LABEL and "estimate" in est.label
    json.dumps(est.to_dict())


def test_m7_dual_issue_is_cheaper_than_m4() -> None:
    counts = {"alu": 1000, "load": 300, "store": 100, "mul": 200, "branch": 100}
    assert estimate_cycles(counts, "m7").cycles < estimate_cycles(counts, "m4").cycles


def test_unknown_core() -> None:
    with pytest.raises(ValueError, match="no cycle model"):
        estimate_cycles({"alu": 1}, "m0")


def _m4_counts() -> tuple[dict[str, int], dict[str, int]]:
    classes = {"alu": 100, "load": 40, "store": 10, "mul": 5, "branch": 30}
    extra = {
        "it": 4,
        "it_folded": 1,
        "cond_branches": 20,
        "cond_not_taken": 8,
        "cond_unknown": 2,
        "cond_minority": 3,
        "m4_ls_pipelined": 6,
        "m4_agu_stalls": 3,
        "m4_slow_stores": 2,
        "pc_loads": 2,
        "load_extra_words": 5,
        "store_extra_words": 4,
        "indirect_branches": 3,
        "table_branches": 1,
        "block_entries": 40,
        "wide_unaligned_entries": 10,
        "m7_issue_cycles": 120,
    }
    return classes, extra


def test_m4_trm_model_by_hand() -> None:
    classes, extra = _m4_counts()
    est = estimate_cycles(classes, "m4", extra)
    # direct taken: 6 unconditional (30 - 20 conditional - 3 BX - 1 TBB) + 10 known taken + unknown 2 split at
    # the known taken rate 10/18; P = 1 + 10/40 unaligned targets; BX 1 + 2; TBB 6; PC loads P = 3
    unk_taken = 2 * 10 / 18
    branch = (6 + 10 + unk_taken) * 2.25 + 3 * 3 + 6 + (8 + 2 - unk_taken)
    expect = (100 - 1) + (2 * 40 - 6 + 3) + (10 + 2) + 5 + branch + 5 + 4 + 3 * 2
    assert est.cycles == pytest.approx(expect)
    assert est.model == "m4-trm"
    # low: every P = 1, all IT folded, unknown not taken, TBB 3; high: P = 3, no IT folded, unknown taken
    low = (100 - 4) + 77 + 12 + 5 + (6 + 10) * 2 + 3 * 2 + 3 + 10 + 5 + 4 + 2
    high = 100 + 77 + 12 + 5 + (6 + 10 + 2) * 4 + 3 * 4 + 6 + 8 + 5 + 4 + 6
    assert est.model_low == pytest.approx(low) and est.model_high == pytest.approx(high)


def test_range_adds_the_coremark_band() -> None:
    classes, extra = _m4_counts()
    for core in ("m4", "m7"):
        est = estimate_cycles(classes, core, extra)
        err = COREMARK_ERROR[core]
        assert err < 0 and est.coremark_error == err  # the model over-estimates CoreMark's cycles
        assert est.cycles_low == pytest.approx(min(est.model_low, est.cycles * (1 + err)))  # type: ignore[type-var]
        assert est.cycles_high == est.model_high
        assert "CoreMark" in est.to_dict()["range"]  # type: ignore[operator]
    assert range_text(216e6 * 0.4, 216e6 * 0.55, 216_000_000, "m7").startswith(
        "range 400-550 ms (the model's"
    )


def test_m7_schedule_model_by_hand() -> None:
    classes, extra = _m4_counts()
    est = estimate_cycles(classes, "m7", extra)
    rate = 3 / 18
    assert est.cycles == pytest.approx(120 + 0.5 * 9 + 4 * (3 + rate * 2))
    assert est.model_low == pytest.approx(120 + 0.5 * 9 + 4 * 3 - 8)
    taken = 30 - 8 - 2
    assert est.model_high == pytest.approx(120 + 9 + 6 * (3 + 1) + taken)
    assert est.cycles_low <= est.model_low <= est.cycles <= est.cycles_high  # type: ignore[operator]
    d = est.to_dict()
    assert d["cycles_low"] == est.cycles_low and d["model"] == "m7-schedule"


def test_plugin_and_model_agree_on_the_extra_counters() -> None:
    from emulation.cycles import EXTRAS

    src = PLUGIN_SOURCE.read_text()
    start = src.index("extra_names[X_N] = {")
    names = src[start : src.index("};", start)]
    assert [n for n in EXTRAS if f'"{n}"' in names] == list(EXTRAS)
