"""Kernel scratch memory: the planner asks the kernel, it never guesses (the CMSIS-NN rule).

Contract with the kernels: `tinytrain.kernels.scratch.scratch_bytes(kernel, **args) -> int`
answers for every kernel of its catalogue (`KERNELS`); a kernel may instead (or also: it wins)
provide `K_scratch_bytes(...) -> int` beside it: in its op's module (tinytrain/ops/<op>, found through
`tinytrain.ops.registry.scratch_function`) or in `tinytrain.kernels` / `tinytrain.kernels.scratch`. Its
parameters
are a subset of the kernel's own keyword names: a buffer argument receives the buffer's **shape**
(a tuple, device layout), every other parameter the step's attr of that name (run-time `$...` attrs
are not passed). Example: `dwconv2d_s8_inplace_scratch_bytes(x: tuple, w: tuple, stride: int,
pad: int) -> int`. The C side has the same function (`tt_K_scratch_bytes`) so codegen and planner agree.

`scratch_bytes` receives all of them as keywords.
A kernel the catalogue does not list (hand-built test programs) needs no scratch. The planner
turns the answer into a buffer live during that step only.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from tinytrain import TinytrainError
from tinytrain.program import Program, Step

_MODULES = ("tinytrain.kernels", "tinytrain.kernels.scratch")


def scratch_function(kernel: str) -> Callable[..., int] | None:
    """The `<kernel>_scratch_bytes` function the kernels provide, or None."""
    from tinytrain.ops.registry import scratch_function as op_scratch

    fn = op_scratch(kernel)
    if fn is not None:
        return fn
    for modname in _MODULES:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        fn = getattr(mod, f"{kernel}_scratch_bytes", None)
        if callable(fn):
            return fn
    return None


def kernel_scratch_bytes(step: Step, program: Program) -> int:
    """Scratch bytes the kernel of `step` needs during that step (0 if it declares none)."""
    fn = scratch_function(step.kernel)
    available: dict[str, Any] = {}
    for arg, name in list(step.inputs.items()) + list(step.outputs.items()):
        available[arg] = tuple(program.buffers[name].shape)
    for key, value in step.attrs.items():
        if not (isinstance(value, str) and value.startswith("$")):
            available.setdefault(key, value)
    if fn is None:
        try:
            catalogue = importlib.import_module("tinytrain.kernels.scratch")
        except ImportError:
            return 0
        generic = getattr(catalogue, "scratch_bytes", None)
        if generic is None or step.kernel not in getattr(catalogue, "KERNELS", ()):
            return 0
        return _checked(int(generic(step.kernel, **available)), "scratch_bytes")
    kwargs: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if pname in available:
            kwargs[pname] = available[pname]
        elif param.default is inspect.Parameter.empty:
            raise TinytrainError(
                f"{fn.__name__} needs {pname!r}, which step {step.kernel} "
                f"(layer {step.layer!r}) does not provide"
            )
    return _checked(int(fn(**kwargs)), fn.__name__)


def _checked(n: int, who: str) -> int:
    if n < 0:
        raise TinytrainError(f"{who} returned a negative size {n}")
    return n
