"""Scratch memory of each kernel, in bytes: what the planner reserves in the arena for a step.

The C runtime mirrors each function as `size_t tt_<kernel>_scratch_bytes(...)`; the two must agree.
Every kernel of the current catalogue runs in registers and its own output buffers, so all return 0;
the functions exist so the planner asks the kernel instead of guessing when that changes.
"""

from __future__ import annotations

from typing import Any

KERNELS = (
    "conv2d_s8",
    "dwconv2d_s8",
    "add_s8",
    "avgpool_s8",
    "slice_channels_s8",
    "mask_s8",
    "apply_mask_f32",
    "softmax_xent",
    "conv2d_bwd_input_f32",
    "dwconv2d_bwd_input_f32",
    "avgpool_bwd_f32",
    "add_f32",
    "conv2d_wgrad_update",
    "dwconv2d_wgrad_update",
    "bias_grad_update",
)


def scratch_bytes(kernel: str, **attrs: Any) -> int:
    """Scratch bytes `kernel` needs for a step with these shapes/attributes (0 for the whole catalogue)."""
    if kernel not in KERNELS:
        raise KeyError(f"unknown kernel {kernel!r}")
    return 0
