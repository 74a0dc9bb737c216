from __future__ import annotations

import json

import pytest

from emulation.cycles import CLASSES, CORE_MODELS, LABEL, estimate_cycles
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
