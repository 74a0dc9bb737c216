"""Float backward machinery: masks, gradient sums, saved slices (docs/numerics.md, "Float backward"); the ops'
input gradients live with their op (tinytrain/ops/<op>).

Every float reduction is a sequential float32 accumulation in the order the contract states:
the Python loop runs over the reduction axis and numpy vectorises over the others (np.sum / np.dot
would sum pairwise and change bits). Inputs are never modified; outputs are new arrays.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def mask_bytes(n: int) -> int:
    """Bytes of a bit mask over `n` elements."""
    return (int(n) + 7) // 8


def mask_s8(y: np.ndarray) -> np.ndarray:
    """Bit mask of the not-saturated elements of int8 `y` (any shape, flat HWC order): u8[ceil(n/8)].

    Bit `j % 8` of byte `j // 8` is 1 when `y[j]` is neither -128 nor 127; padding bits are 0.
    """
    v = np.asarray(y).reshape(-1)
    keep = (v != -128) & (v != 127)
    return np.packbits(keep, bitorder="little")


def apply_mask_f32(g: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """`g[j] = bit j ? g[j] : 0.0f` (+0.0f). Returns a new array (C: may be in place)."""
    g = np.asarray(g, F32)
    keep = np.unpackbits(np.asarray(bits, np.uint8), count=g.size, bitorder="little").astype(bool)
    return np.where(keep.reshape(g.shape), g, F32(0.0)).astype(F32)


def add_f32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`y = a + b` elementwise, float32 (a = the conv branch, b = the skip; C: y may alias a or b)."""
    return (np.asarray(a, F32) + np.asarray(b, F32)).astype(F32)


def slice_channels_s8(x: np.ndarray, k: int) -> np.ndarray:
    """The first `k` channels of an HWC int8 activation (the saved input of a partially updated layer)."""
    return np.ascontiguousarray(np.asarray(x)[..., : int(k)])
