"""The float baseline scripts run end to end (shortened schedules; the figures come from the full runs).

Marked slow: ~10-30 s each on a shared 2-core machine."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tinytrain import REPO_ROOT


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(REPO_ROOT) / "scripts" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_sensor_baseline_short(monkeypatch: pytest.MonkeyPatch) -> None:
    b = _script("sensor_baseline")
    monkeypatch.setattr(b, "PRETRAIN_EPOCHS", 3)
    monkeypatch.setattr(b, "ADAPT_EPOCHS", 1)
    monkeypatch.setattr(b, "LR_GRID", (0.01,))
    r = b.run_seed(0)
    assert all(0.0 <= r[k] <= 1.0 for k in ("source_test", "none", *b.METHODS))
    assert all(r[f"lr_{m}"] == 0.01 for m in b.METHODS)
    net = b.SensorNet()
    names = {id(p): n for n, p in net.named_parameters()}
    assert sorted(names[id(p)] for p in b.trainable(net, "last")) == [
        "classifier.bias",
        "classifier.weight",
        "features.4.bias",
        "features.4.weight",
    ]
    assert len(b.trainable(net, "bias")) == 5 and len(b.trainable(net, "full")) == 8


@pytest.mark.slow
def test_keyboard_baseline_short(monkeypatch: pytest.MonkeyPatch) -> None:
    k = _script("keyboard_baseline")
    from tinytrain.data.text import encode, general_text, user_text

    monkeypatch.setattr(k, "PRETRAIN_STEPS", 2)
    monkeypatch.setattr(k, "ADAPT_EPOCHS", 1)
    monkeypatch.setattr(k, "LR_GRID", (0.1,))
    out = k.run_seed(0, encode(general_text())[:20_000], encode(user_text())[:1_500])
    assert out["classifier"]["lr"] == 0.1 and 0 <= out["full"]["top1"] <= out["full"]["top3"] <= 1
    assert np.isfinite(out["none"]["perplexity"]) and out["none"]["perplexity"] > 1
    net = k.KeyboardNet()
    names = {id(p): n for n, p in net.named_parameters()}
    assert sorted(names[id(p)] for p in k.trainable(net, "last")) == [
        "classifier.bias",
        "classifier.weight",
        "features.4.bias",
        "features.4.weight",
    ]
    assert [names[id(p)] for p in k.trainable(net, "embedding")][0] == "embedding.weight"
