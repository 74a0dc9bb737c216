"""Compile-time autodiff: the registry of one forward lowering and one gradient rule per IR op kind. The rules
live with their op (tinytrain/ops/<op>); importing tinytrain.ops.registry registers them all."""

from tinytrain.autodiff.registry import (  # noqa: F401
    forward_rule,
    gradient_rule,
    output_clamped,
    register_forward,
    register_gradient,
    registered_forwards,
    registered_gradients,
)
