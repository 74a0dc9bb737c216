"""xorshift32, the one pseudo-random generator host and device share (docs/numerics.md, Update).

The C twin is the `uint32_t` state that `tt_*_wgrad_update` kernels advance through a pointer
(the runtime's global `tt_rng_state`). Each draw is `x ^= x << 13; x ^= x >> 17; x ^= x << 5` and
returns the new `x`.

Drawing many numbers at once is vectorised with jump-ahead: xorshift32 is linear over GF(2), so
`x_{n+L} = M^L x_n` for a 32x32 bit matrix `M`; applying `M^L` to a block of `L` consecutive states
gives the next `L` states in 32 vector operations.
"""

from __future__ import annotations

import numpy as np

_MASK = 0xFFFFFFFF


def _step(x: int) -> int:
    x ^= (x << 13) & _MASK
    x ^= x >> 17
    x ^= (x << 5) & _MASK
    return x


def _step_vec(x: np.ndarray) -> np.ndarray:
    x = x ^ (x << np.uint32(13))
    x = x ^ (x >> np.uint32(17))
    return x ^ (x << np.uint32(5))


def _apply(cols: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bit matrix (as its 32 column images, uint32) times each uint32 in `v`."""
    out = np.zeros(v.shape, np.uint32)
    for b in range(cols.size):
        bit = (v >> np.uint32(b)) & np.uint32(1)
        out ^= bit * cols[b]
    return out


_BLOCK = 64
_POWERS: list[np.ndarray] = []  # _POWERS[j] = columns of M^(_BLOCK * 2^j)
_TABLES: list[np.ndarray] = []  # _TABLES[j] = [4, 256] byte lookup tables of _POWERS[j]


def _tables(cols: np.ndarray) -> np.ndarray:
    """Per-byte lookup tables: M v = T[0][v & 255] ^ T[1][(v >> 8) & 255] ^ ... (4 gathers per value)."""
    byte = np.arange(256, dtype=np.uint32)
    return np.stack([_apply(cols[8 * i : 8 * i + 8], byte) for i in range(4)])


def _apply_tables(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = t[0][v & np.uint32(255)]
    for i in range(1, 4):
        out ^= t[i][(v >> np.uint32(8 * i)) & np.uint32(255)]
    return out


def _power(j: int) -> np.ndarray:
    if not _POWERS:
        cols = np.array([1 << b for b in range(32)], np.uint32)
        for _ in range(_BLOCK):
            cols = _step_vec(cols)
        _POWERS.append(cols)
        _TABLES.append(_tables(cols))
    while len(_POWERS) <= j:
        a = _POWERS[-1]
        _POWERS.append(_apply(a, a))  # (M^L)^2: apply M^L to each column of M^L
        _TABLES.append(_tables(_POWERS[-1]))
    return _TABLES[j]


class Xorshift32:
    """The shared generator: `state` is the C `uint32_t` state (never 0)."""

    def __init__(self, seed: int = 0x2545F491) -> None:
        seed = int(seed) & _MASK
        if seed == 0:
            raise ValueError("xorshift32 seed must be non-zero")
        self.state = seed

    def next(self) -> int:
        """Advance once and return the new state (one draw)."""
        self.state = _step(self.state)
        return self.state

    def draw(self, n: int) -> np.ndarray:
        """The next `n` draws as uint32, in order; the state advances by `n`."""
        if n <= 0:
            return np.zeros(0, np.uint32)
        out = np.empty(max(n, _BLOCK), np.uint32)
        x = self.state
        for i in range(_BLOCK):
            x = _step(x)
            out[i] = x
        have, j = _BLOCK, 0
        while have < n:  # out[:have] holds draws 1..have; M^have maps draw i to draw i + have
            take = min(have, n - have)
            out[have : have + take] = _apply_tables(_power(j), out[:take])
            have += take
            j += 1
        out = out[:n]
        self.state = int(out[-1])
        return out

    def uniform(self, n: int) -> np.ndarray:
        """`u = f32(r >> 8) * 2^-24` for the next `n` draws: float32 in [0, 1)."""
        r = self.draw(n)
        return (r >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)
