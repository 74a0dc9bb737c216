"""The op registry of the training compiler: per IR op kind, its forward lowering and its gradient rule.

Each op kind registers both functions side by side in its home (tinytrain/ops/<op>, listed by
tinytrain/ops/registry.py):

- a **forward rule** `(builder, op) -> None` emits the int8 forward step(s) of one op;
- a **gradient rule** `(builder, op, g) -> None` emits the backward step(s) of one op, given `g`, the
  name of the buffer holding dL/d(real output) already masked by the output clamp. It contributes
  input gradients with `builder.contribute(tensor, buffer)` and emits the op's weight/bias updates
  with `builder.update_weight(...)` / `builder.update_bias(...)`, which honour the scheme and the
  reordering option.

Adding an op kind = one registration of each in its module; the compiler has no switch over op names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tinytrain import TinytrainError

if TYPE_CHECKING:
    from tinytrain.ir import Op

ForwardRule = Callable[[Any, "Op"], None]
GradientRule = Callable[[Any, "Op", str], None]

_FORWARD: dict[str, ForwardRule] = {}
_GRADIENT: dict[str, GradientRule] = {}
_CLAMPED: dict[str, bool] = {}


def register_forward(kind: str, clamped: bool = True) -> Callable[[ForwardRule], ForwardRule]:
    """`clamped`: the op's int8 output saturates at -128/127 (conv, add), so the straight-through
    gradient of its output is masked where it saturated; False for ops that cannot saturate (avgpool)."""

    def deco(fn: ForwardRule) -> ForwardRule:
        _FORWARD[kind] = fn
        _CLAMPED[kind] = clamped
        return fn

    return deco


def output_clamped(kind: str) -> bool:
    _load()
    return _CLAMPED.get(kind, True)


def register_gradient(kind: str) -> Callable[[GradientRule], GradientRule]:
    def deco(fn: GradientRule) -> GradientRule:
        _GRADIENT[kind] = fn
        return fn

    return deco


def _load() -> None:
    """Import every op's module (their decorators fill the tables)."""
    import tinytrain.ops.registry  # noqa: F401


def forward_rule(op: Op) -> ForwardRule:
    _load()
    try:
        return _FORWARD[op.kind]
    except KeyError:
        raise TinytrainError(
            f"layer {op.name!r}: op {op.kind!r} has no lowering (registered: {', '.join(sorted(_FORWARD))})"
        ) from None


def gradient_rule(op: Op) -> GradientRule:
    _load()
    try:
        return _GRADIENT[op.kind]
    except KeyError:
        raise TinytrainError(
            f"layer {op.name!r}: op {op.kind!r} has no gradient rule "
            f"(registered: {', '.join(sorted(_GRADIENT))})"
        ) from None


def registered_forwards() -> list[str]:
    _load()
    return sorted(_FORWARD)


def registered_gradients() -> list[str]:
    _load()
    return sorted(_GRADIENT)
