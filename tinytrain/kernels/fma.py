"""The fused multiply-add contract option (docs/numerics.md, "Fused multiply-add").

By default every float multiply-accumulate of the backward sums is two roundings, `acc + f32(a * b)`. With
the option on (C: `-DTT_FMA=1`, here `set_fma(True)` / `with fma_mode(True):`), the same terms in the same
order are single-rounding fused operations, `f32(a * b + acc)` exactly: IEEE 754 `fusedMultiplyAdd` in
binary32, which is a VFMA on the Cortex-M4F/M7 and a correctly rounded `fmaf` on the host.

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
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

F32 = np.float32
F64 = np.float64

#: the default of the host reference: off, unless TINYTRAIN_FMA=1 in the environment (for runs whose firmware
#: is built with -DTT_FMA=1, e.g. an accuracy check of the option in worker processes)
_state = {"fma": os.environ.get("TINYTRAIN_FMA", "") == "1"}


def fma_enabled() -> bool:
    """Whether the reference kernels use fused multiply-adds (must match the C build's `TT_FMA`)."""
    return _state["fma"]


def set_fma(on: bool) -> None:
    """Switch the fused multiply-add contract for every reference kernel (default off)."""
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
    a64 = np.asarray(a, F32).astype(F64)
    b64 = np.asarray(b, F32).astype(F64)
    c64 = np.asarray(c, F32).astype(F64)
    p = a64 * b64  # exact
    with np.errstate(invalid="ignore", over="ignore"):
        s = p + c64
        bb = s - p
        err = (p - (s - bb)) + (c64 - bb)  # TwoSum: p + c == s + err exactly
        odd = (s.view(np.uint64) & np.uint64(1)) == 1
        fix = (err != 0) & ~odd & np.isfinite(s)
        if np.any(fix):
            s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
        return np.asarray(s.astype(F32))


def mac_f32(acc: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One multiply-accumulate step of a backward sum under the current contract: `fma_f32(a, b, acc)` with
    the option on, else `acc + f32(a * b)` (two roundings). Returns a new float32 array."""
    if _state["fma"]:
        return fma_f32(a, b, acc)
    return (np.asarray(acc, F32) + np.asarray(a, F32) * np.asarray(b, F32)).astype(F32)


def mac_into(acc: np.ndarray, a: np.ndarray, b: np.ndarray, tmp: np.ndarray | None = None) -> None:
    """`acc[...] = mac_f32(acc, a, b)` in place (tmp: an optional buffer of acc's shape for the product)."""
    if _state["fma"]:
        acc[...] = fma_f32(a, b, acc)
        return
    if tmp is None:
        acc += np.asarray(a, F32) * np.asarray(b, F32)
    else:
        np.multiply(a, b, out=tmp)
        acc += tmp
