"""The exact numpy fused multiply-add (tinytrain.kernels.fma) against the C library's fmaf, bit for bit, on
the hard cases (ties, double-rounding traps, cancellation, subnormals, large exponent gaps, signed zeros,
overflow) and random operands; and the contract switch. The device's VFMA: QEMU, test_qemu_kernels.py."""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np
import pytest

from tests.kernels.qemu_harness import fma_inputs
from tinytrain.kernels.fma import fma_enabled, fma_f32, fma_mode, mac_f32

F32 = np.float32


def _libm_fmaf():  # type: ignore[no-untyped-def]
    name = ctypes.util.find_library("m")
    if name is None:
        pytest.skip("no C math library")
    f = ctypes.CDLL(name).fmaf
    f.argtypes = [ctypes.c_float] * 3
    f.restype = ctypes.c_float
    return f


def bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, F32).view(np.uint32)


def test_fma_f32_matches_c_fmaf() -> None:
    fmaf = _libm_fmaf()
    a, b, c = fma_inputs(np.random.default_rng(7), 20000)
    want = np.array([fmaf(float(x), float(y), float(z)) for x, y, z in zip(a, b, c, strict=True)], F32)
    got = fma_f32(a, b, c)
    bad = np.flatnonzero(bits(got) != bits(want))
    assert bad.size == 0, [(a[i], b[i], c[i], got[i], want[i]) for i in bad[:5]]


def test_fma_f32_avoids_double_rounding() -> None:
    # a*b = 1 + 2^-11 + 2^-24 (a float32 tie); c = 2^-80 puts the exact sum just above it: the correctly
    # rounded result rounds up, while f32(f64(a*b + c)) sees the tie again (2^-80 is lost in binary64): down
    a = b = F32(1 + 2.0**-12)
    c = F32(2.0**-80)
    naive = F32(np.float64(a) * np.float64(b) + np.float64(c))
    exact = fma_f32(a, b, c)
    assert float(exact) == 1 + 2.0**-11 + 2.0**-23
    assert float(naive) == 1 + 2.0**-11
    assert float(fma_f32(a, b, -c)) == 1 + 2.0**-11


def test_fma_f32_cancellation_gives_the_product_error() -> None:
    a, b = F32(1 + 2.0**-23), F32(1 - 2.0**-23)
    p = a * b  # rounded
    assert float(fma_f32(a, b, -p)) == float(np.float64(a) * np.float64(b) - np.float64(p))


def test_mac_follows_the_contract_switch() -> None:
    a, b, acc = F32(1 + 2.0**-12), F32(1 + 2.0**-12), F32(2.0**-30)
    assert fma_enabled()  # the default contract
    fused = mac_f32(acc, a, b)
    assert bits(fused) == bits(fma_f32(a, b, acc))
    with fma_mode(False):
        assert not fma_enabled()
        two = mac_f32(acc, a, b)
        assert two == acc + a * b
        assert bits(two) != bits(fused)  # two roundings: 1 + 2^-11 here; fused: 1 + 2^-11 + 2^-23
    assert fma_enabled()
    assert bits(mac_f32(acc, a, b)) == bits(fused)
