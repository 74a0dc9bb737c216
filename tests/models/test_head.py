"""A new N-class classifier head."""

from __future__ import annotations

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.ir import Graph
from tinytrain.models import load_model, replace_head
from tinytrain.reference import infer

from .conftest import photo


def test_replace_head(zoo: dict[str, Graph]) -> None:
    g = zoo["mbv2-w0.35"]
    h = replace_head(g.with_resolution(64), 2, seed=3)
    assert h.num_classes == 2 and h.resolution == 64 and h.output == g.output
    cls = h.producer(h.output)
    assert cls is not None and cls.name == "classifier" and cls.weight.shape == (2, 112, 1, 1)
    # documented init: U(+-1/sqrt(C)), w_scale = 2 max|W|/127 (so |W̃| <= 64), zero bias, logits +-8, zero 0
    assert np.abs(cls.weight).max() == 64 and not cls.bias.any()
    assert np.all(cls.w_scales <= 2 / np.sqrt(112) / 127 + 1e-9)
    out = h.tensors[h.output]
    assert (out.zero, out.scale) == (0, 8 / 127)
    assert h.meta["head"]["num_classes"] == 2
    z = infer(h, photo("chelsea", 64))
    assert z.shape == (2,) and np.all(np.abs(z) < 100)  # initial logits well inside the range
    # deterministic per seed; the input graph is untouched
    assert np.array_equal(replace_head(g, 2, seed=3).producer(g.output).weight, cls.weight)  # type: ignore[union-attr]
    assert not np.array_equal(replace_head(g, 2, seed=4).producer(g.output).weight, cls.weight)  # type: ignore[union-attr]
    assert g.num_classes == 1000 and g.producer(g.output).weight.shape[0] == 1000  # type: ignore[union-attr]


def test_head_round_trip_and_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = replace_head(load_model("proxyless-w0.3", 96), 10, seed=0)
    h.save(tmp_path / "h")
    k = load_model(tmp_path / "h")
    x = photo("coffee", 96)
    assert np.array_equal(infer(h, x), infer(k, x)) and k.num_classes == 10
    with pytest.raises(TinytrainError, match="at least 2 classes"):
        replace_head(h, 1)


def test_replace_head_of_an_onnx_model_keeps_its_float_requantization() -> None:
    """An imported ONNX model's head (numerics "ort": a float output scale per channel, no TFLite
    multipliers) gets a new head of the same kind; it infers, trains and validates."""
    from tinytrain.compiler import compile_training
    from tinytrain.reference.training import Trainer

    g = load_model("sensor-conv1d")  # imported from ONNX (tinytrain/zoo/sensor-conv1d)
    h = replace_head(g, 3, seed=1)
    cls = h.producer(h.output)
    assert cls is not None and cls.attrs["requant"] == "float" and set(cls.params) >= {"scale", "w_scales"}
    assert "multiplier" not in cls.params and cls.params["scale"].shape == (3,) and h.num_classes == 3
    x = np.random.default_rng(0).integers(-128, 128, (1, 100, 6)).astype(np.int8)
    t = Trainer(compile_training(h, "last"), seed=1)
    assert t.infer(x).shape == (3,)
    losses = [t.train_step(x, 2, 0.05) for _ in range(4)]
    assert losses[-1] < losses[0]
