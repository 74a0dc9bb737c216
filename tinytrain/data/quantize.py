"""The one quantization of float samples to the model's int8 input, and the per-channel normalization.

`quantize(x, scale, zero) = clip(round_half_even(x / scale) + zero, -128, 127)` (numpy `rint`: round half
to even, the rule of the image path and of docs/numerics.md). The device never quantizes a sample: it
receives these int8 bytes, so host and device see the same input by construction.

Normalization (`normalize="standard"`): per channel, `(x - mean_c) / std_c` with the mean and the population
standard deviation of the **training split only** (all its samples and time steps; a constant channel gets
`std = 1`). `normalize="none"` leaves the values as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinytrain.data.errors import DataError

NORMALIZE = ("standard", "none")


def quantize(x: np.ndarray, scale: float, zero: int) -> np.ndarray:
    """Real values -> int8 with the model's input scale and zero point (round half to even, saturate)."""
    if not scale > 0 or not np.isfinite(scale):
        raise DataError(f"the model's input scale must be a positive number, got {scale}")
    if not -128 <= int(zero) <= 127:
        raise DataError(f"the model's input zero point must be in -128..127, got {zero}")
    x = np.asarray(x, np.float64)
    if np.isnan(x).any():
        raise DataError("a value to quantize is NaN (after normalization); clean or rescale the data")
    with np.errstate(over="ignore"):  # |x| / scale beyond float64 (or inf): saturates like any large value
        q = np.rint(x / float(scale)) + int(zero)
    return np.clip(q, -128, 127).astype(np.int8)


def clipped_fraction(x: np.ndarray, scale: float, zero: int) -> float:
    """Fraction of values outside the int8 range (they saturate at -128 or 127)."""
    if x.size == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.rint(np.asarray(x, np.float64) / float(scale)) + int(zero)
    return float(np.mean((q < -128) | (q > 127)))


@dataclass(frozen=True)
class Normalization:
    """Per-channel affine map fitted on the training split; `apply` works on channels-last arrays."""

    mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, mode: str, train: np.ndarray, where: str = "the data") -> Normalization:
        """`train`: float, channels last (`[..., C]`). Statistics that overflow float64 are a DataError
        naming `where` and the channel."""
        if mode not in NORMALIZE:
            raise DataError(f"normalize must be one of {', '.join(NORMALIZE)}, got {mode!r}")
        c = train.shape[-1]
        if mode == "none":
            return cls(mode, (0.0,) * c, (1.0,) * c)
        flat = np.asarray(train, np.float64).reshape(-1, c)
        with np.errstate(over="ignore", invalid="ignore"):
            mean = flat.mean(axis=0)
            std = flat.std(axis=0)
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            j = int(np.argmax(bad))
            big = float(np.max(np.abs(flat[:, j])))
            raise DataError(
                f"{where}: channel {j} has values up to {big:.3g}: its mean / standard deviation overflow; "
                "rescale the data"
            )
        std = np.where(std > 0, std, 1.0)
        return cls(mode, tuple(float(v) for v in mean), tuple(float(v) for v in std))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - np.asarray(self.mean)) / np.asarray(self.std)

    def record(self) -> dict[str, object]:
        return {"normalize": self.mode, "mean": list(self.mean), "std": list(self.std)}
