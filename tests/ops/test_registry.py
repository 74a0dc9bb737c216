"""One home per op: every op kind the registry lists carries its whole definition (shape rule, IR reference,
lowering + gradient rule, numpy kernels, emitters, C declarations), and the IR, the reference and the
compiler reach each kind only through the registry."""

from __future__ import annotations

from types import ModuleType

import pytest

from tinytrain import signatures
from tinytrain.autodiff import registry as rules
from tinytrain.codegen.emitters import EMITTERS
from tinytrain.ir import OP_KINDS
from tinytrain.ops import registry


def test_every_op_is_listed_once_and_the_zoo_kinds_are_the_irs() -> None:
    kinds = [m.KIND for m in registry.MODULES]
    assert len(kinds) == len(set(kinds))
    assert tuple(m.KIND for m in registry.ZOO) == OP_KINDS


@pytest.mark.parametrize("mod", registry.MODULES, ids=lambda m: m.KIND)
def test_an_op_module_holds_the_whole_op(mod: ModuleType) -> None:
    assert callable(mod.out_shape) and callable(mod.reference)
    assert mod.KIND in rules.registered_forwards()  # the lowering and the gradient rule, side by side
    assert mod.KIND in rules.registered_gradients()


@pytest.mark.parametrize("kernel", sorted(registry.ZOO_KERNELS | registry.KERNELS))
def test_every_op_kernel_has_its_numpy_twin_emitter_and_declaration(kernel: str) -> None:
    assert registry.kernel_function(kernel) is not None
    assert kernel in EMITTERS
    assert signatures.signature(kernel).params
