"""The host trainer on the host-native C kernels (`Trainer(kernels="native")`, what the accuracy evidence runs
on) = the numpy reference trainer, bit for bit: losses, every trained parameter, the rng stream, logits; under
both multiply-add contracts. Needs a host C compiler, like test_native_vs_reference."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.compiler import CompileOptions
from tinytrain.experiments.schemes import resolve
from tinytrain.job.prepare import assemble, load_graph
from tinytrain.kernels.fma import fma_mode
from tinytrain.reference.training import Trainer

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no host cc"
)


@pytest.mark.parametrize("fma", [True, False], ids=["fma", "nofma"])
@pytest.mark.parametrize(("scheme", "rule"), [("paper:99kb", "stochastic"), ("blocks:1", "nearest")])
def test_native_trainer_equals_numpy_trainer(scheme: str, rule: str, fma: bool) -> None:
    graph = load_graph("mcunet-5fps", 48, 3, 0, fresh_head=True)
    program = assemble(
        graph, resolve(scheme, graph), CompileOptions(update_rule=rule, head_lr_scale=10)
    ).program
    rng = np.random.default_rng(1)
    xs = rng.integers(-128, 128, (4, 48, 48, 3), dtype=np.int8)
    with fma_mode(fma):
        ref, nat = Trainer(program, seed=7), Trainer(program, seed=7, kernels="native")
        assert nat.kernels == "native" and ref.kernels == "numpy"
        for i, x in enumerate(xs):
            assert nat.train_step(x, i % 3, 0.01) == ref.train_step(x, i % 3, 0.01)
        assert nat.rng.state == ref.rng.state
        for name, want in ref.parameters().items():
            np.testing.assert_array_equal(nat.parameters()[name], want, err_msg=name)
        np.testing.assert_array_equal(nat.infer(xs[0]), ref.infer(xs[0]))


def test_unknown_kernels_is_refused() -> None:
    graph = load_graph("mcunet-5fps", 48, 3, 0, fresh_head=True)
    program = assemble(graph, resolve("last", graph), CompileOptions()).program
    with pytest.raises(TinytrainError, match="kernels must be one of numpy, native"):
        Trainer(program, kernels="cuda")
