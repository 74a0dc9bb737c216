"""The fused multiply-add contract (docs/numerics.md, "Fused multiply-add").

By default every float multiply-accumulate of the backward sums is a single-rounding fused operation,
`f32(a * b + acc)` exactly: IEEE 754 `fusedMultiplyAdd` in binary32, which is a VFMA on the Cortex-M4F/M7 and
a correctly rounded `fmaf` on the host (C: `TT_FMA 1`, the default of tt_math.h). The option for a core
without a fused multiply-add (C: `-DTT_FMA=0`, here `set_fma(False)` / `with fma_mode(False):` or
`TINYTRAIN_FMA=0` in the environment) makes the same terms in the same order two roundings,
`acc + f32(a * b)`.

`fma_f32` computes it exactly in numpy, vectorised:

1. `p = f64(a) * f64(b)` is exact: two 24-bit significands give at most 48 bits (< 53), and the exponent
   range of binary64 holds every product of two binary32 values, subnormals included (|p| >= 2^-298).
2. `s = f64(p + c)` rounds once to binary64; Knuth's TwoSum gives its exact error `err = (p + c) - s`
   (no overflow is possible: |p| <= 2^256).
3. Round to odd: if `err != 0` and `s` has an even last significand bit, `s` moves one binary64 ulp toward
   the exact sum (the odd neighbour). `s` is then the binary64 round-to-odd of `a*b + c`.
4. `f32(s)` (round to nearest even). Rounding to odd at precision 53 and then to nearest at precision
   p <= 24 (subnormal results have fewer bits) equals a single rounding to nearest at p, because
   53 >= 2p + 2 (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using
   rounding to odd", IEEE TC 2008). A plain `f32(f64(p + c))` could round twice (a tie created by the first
   rounding) and differ in the last bit.

Infinities and NaNs pass through the float64 arithmetic (no odd adjustment: `err` is NaN there).

Speed: the error term is almost always zero (an int8-derived product plus a float32 fits binary64), so step 3
runs only when some element of the call needs it; a call costs ~9 numpy operations against 2 for the
two-rounding contract (a host training step of MCUNet-5FPS at 64x64: 0.022 s two-rounding, 0.043 s fused).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

F32 = np.float32
F64 = np.float64

#: the default of the host reference: on, unless TINYTRAIN_FMA=0 in the environment (for runs whose firmware
#: is built with -DTT_FMA=0, e.g. an accuracy check of the option in worker processes)
_state = {"fma": os.environ.get("TINYTRAIN_FMA", "1") != "0"}


def fma_enabled() -> bool:
    """Whether the reference kernels use fused multiply-adds (must match the C build's `TT_FMA`)."""
    return _state["fma"]


def set_fma(on: bool) -> None:
    """Switch the fused multiply-add contract for every reference kernel (default on)."""
    _state["fma"] = bool(on)


@contextmanager
def fma_mode(on: bool = True) -> Iterator[None]:
    """`with fma_mode(True): ...` runs the reference kernels under the fused contract, then restores it."""
    old = _state["fma"]
    _state["fma"] = bool(on)
    try:
        yield
    finally:
        _state["fma"] = old


def fma_f32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """`f32(a * b + c)` with one rounding (IEEE fusedMultiplyAdd, binary32), elementwise, broadcasting."""
    return _fma(a, b, np.asarray(c, F32))


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Steps 1-4 into `out` (float32, c's shape) or a new array. The TwoSum error is almost always zero (the
    binary64 sum of an int8-derived product and a float32 is exact: in a training step 1 call in ~30 000 has
    an inexact element), so the odd adjustment runs only when some element needs it."""
    p = np.multiply(a, b, dtype=F64)  # exact (the float32 operands are widened inside the ufunc)
    c64 = c.astype(F64)
    with np.errstate(invalid="ignore", over="ignore"):
        s = p + c64
        bb = s - p
        err = p - (s - bb)
        err += c64 - bb  # TwoSum: p + c == s + err exactly
        if np.count_nonzero(err):
            s = _round_to_odd(s, err)
        if out is None:
            return np.asarray(s.astype(F32))
        np.copyto(out, s, casting="same_kind")
        return out


def _round_to_odd(s: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Step 3: where `s` is inexact (err != 0) and even, its odd neighbour toward the exact sum."""
    odd = (s.view(np.uint64) & np.uint64(1)) == 1
    fix = (err != 0) & ~odd & np.isfinite(s)
    if np.any(fix):
        s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s


def mac_f32(acc: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One multiply-accumulate step of a backward sum under the current contract: `fma_f32(a, b, acc)` (the
    default), else `acc + f32(a * b)` (two roundings). Returns a new float32 array."""
    if _state["fma"]:
        return fma_f32(a, b, acc)
    return (np.asarray(acc, F32) + np.asarray(a, F32) * np.asarray(b, F32)).astype(F32)


def mac_into(acc: np.ndarray, a: np.ndarray, b: np.ndarray, tmp: np.ndarray | None = None) -> None:
    """`acc[...] = mac_f32(acc, a, b)` in place (tmp: an optional buffer of acc's shape for the product)."""
    if _state["fma"]:
        _fma(a, b, acc, out=acc)  # step 4 straight into acc
        return
    if tmp is None:
        acc += np.asarray(a, F32) * np.asarray(b, F32)
    else:
        np.multiply(a, b, out=tmp)
        acc += tmp
