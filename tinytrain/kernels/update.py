"""The update rules (docs/numerics.md, "Update"; C: firmware/runtime/tt_update_rules.h), shared by every op's
weight-update kernels (tinytrain/ops/<op>): nearest, stochastic (the shared `Xorshift32`, one draw per updated
element in device-layout memory order), shadow (a float32 copy of the updated elements)."""

from __future__ import annotations

import numpy as np

from tinytrain.kernels.rng import Xorshift32

F32 = np.float32
RULES = ("nearest", "stochastic", "shadow")


def step_factors(q: np.ndarray, neg_lr: float) -> np.ndarray:
    """`k[o] = neg_lr * q[o]`, float32 (computed by the device every step)."""
    return F32(neg_lr) * np.asarray(q, F32)


def shadow_init(w: np.ndarray, k_in: int, depthwise: bool = False) -> np.ndarray:
    """The initial float32 shadow copy of the updated elements: `f32(W̃)` of w[..., :k_in]."""
    w = np.asarray(w)
    return np.ascontiguousarray(w[..., : int(k_in)]).astype(F32)


def apply_rule(
    w_upd: np.ndarray, delta: np.ndarray, rule: str, rng: Xorshift32 | None, shadow: np.ndarray | None
) -> np.ndarray:
    """New int8 values for the updated elements; `w_upd`, `delta` in device memory order."""
    lim = F32(256.0)
    if rule == "nearest":
        step = np.rint(np.clip(delta, -lim, lim)).astype(np.int32)
        return np.clip(w_upd.astype(np.int32) + step, -127, 127).astype(np.int8)
    if rule == "stochastic":
        if rng is None:
            raise ValueError("update rule 'stochastic' needs an rng")
        u = rng.uniform(delta.size).reshape(delta.shape)
        step = np.floor((np.clip(delta, -lim, lim) + u).astype(F32)).astype(np.int32)
        return np.clip(w_upd.astype(np.int32) + step, -127, 127).astype(np.int8)
    if rule == "shadow":
        if shadow is None:
            raise ValueError("update rule 'shadow' needs a shadow array")
        sh = shadow.reshape(delta.shape)
        sh += delta  # float32, in place
        return np.clip(np.rint(np.clip(sh, -lim, lim)).astype(np.int32), -127, 127).astype(np.int8)
    raise ValueError(f"unknown update rule {rule!r}; expected one of {RULES}")


def check_shadow(shadow: np.ndarray | None, n: int) -> None:
    if shadow is not None and (shadow.dtype != F32 or shadow.size != n or not shadow.flags.c_contiguous):
        raise ValueError(
            f"shadow must be contiguous float32 with {n} elements, got {shadow.dtype}{shadow.shape}"
        )
