"""Compile-time autodiff: one forward lowering and one gradient rule per IR op kind (a registry)."""

from tinytrain.autodiff import ops  # noqa: F401  (registers the rules)
from tinytrain.autodiff.registry import (  # noqa: F401
    forward_rule,
    gradient_rule,
    output_clamped,
    register_forward,
    register_gradient,
    registered_gradients,
)
