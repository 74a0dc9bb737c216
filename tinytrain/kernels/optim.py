"""Optimizer-state kernels: SGD momentum and mini-batch gradient accumulation (docs/numerics.md,
"Momentum and mini-batches"). C twins in firmware/runtime/tt_optim.c.

The per-sample gradient sums `S` come from the split kernels (`memory_ops.conv2d_wgrad_f32`, ...); a
mini-batch adds them into an SRAM buffer with `add_f32` (in place), and the update kernels
(`memory_ops.conv2d_weight_update`, ...) read the accumulated sums or the momentum buffer instead of `S`.
Like every numpy kernel these return their output and never modify their inputs; the C kernels work in
place (the program names the same buffer as input and output).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def momentum_f32(m: np.ndarray, g: np.ndarray, mu: float) -> np.ndarray:
    """The momentum buffer's step: `m[e] = f32(f32(mu * m[e]) + g[e])`, float32, two roundings (no FMA).

    This is PyTorch SGD's `buf.mul_(mu).add_(g)` (dampening 0, no Nesterov) with `mu` rounded to float32;
    the buffer starts at 0, so the first step gives `g` (PyTorch starts it as a copy of `g`: the same bits
    but for a gradient of -0.0, which leaves every update unchanged)."""
    m = np.asarray(m, F32)
    g = np.asarray(g, F32)
    if m.size != g.size:
        raise ValueError(f"momentum buffer has {m.size} elements, the gradient {g.size}")
    t = F32(mu) * m  # rounded to float32
    return (t + g.reshape(m.shape)).astype(F32)


def zero_f32(x: np.ndarray) -> np.ndarray:
    """`x[e] = +0.0f` (clears a gradient accumulator after its mini-batch's update)."""
    return np.zeros(np.shape(x), F32)
