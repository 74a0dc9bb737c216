"""The sensor personalization scenario on BasicMotions (a smart watch's accelerometer + gyroscope).

Data: BasicMotions from the UEA/UCR time-series classification archive, as bundled in aeon 1.6.0's wheel
(`aeon/datasets/data/BasicMotions/BasicMotions_{TRAIN,TEST}.ts`, copied byte for byte, gzipped, into
`tinytrain/data/basicmotions/`; see its README): 80 recordings of 100 steps (10 s at 10 Hz), 6 channels,
4 activities (Standing, Running, Walking, Badminton), 40 + 40 in the archive's train / test files. Channels
1-3 are read as the accelerometer (x, y, z) and 4-6 as the gyroscope (x, y, z).

Scenario ("the watch worn rotated"), `sensor_scenario(seed)`:

- **pretrain**: the archive's 40 training recordings, as recorded;
- **the shift**: every recording of the archive's test file is seen through a watch worn rotated: one fixed
  rotation `ROTATION` (180 degrees about the watch's z axis, the axis normal to its face: the watch worn
  turned around on the wrist, x -> -x, y -> -y) applied to both the accelerometer triple and the gyroscope
  triple (they share the watch's frame);
- **adapt**: `adapt_per_class` rotated test-file recordings per class (seeded, stratified), the data the
  device learns from; **test**: the other rotated test-file recordings, held out (never used for training or
  for choosing anything).

Normalization: per channel, mean and standard deviation of the pretraining split only (the device knows
nothing else), applied to every split; the int8 samples are then `quantize(x, scale, zero)` with the model's
input quantization (`SensorScenario.int8`), the one quantization of `tinytrain.data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain.data import ROUNDING, Dataset
from tinytrain.data.quantize import Normalization, clipped_fraction, quantize

DATA_DIR = Path(__file__).resolve().parent / "basicmotions"
CLASS_NAMES = ["Badminton", "Running", "Standing", "Walking"]  # sorted, as every loader orders classes


def _rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


#: The fixed sensor rotation of the scenario: 180 degrees about the watch's z axis (x -> -x, y -> -y).
ROTATION = np.diag([-1.0, -1.0, 1.0])  # == _rot_z(180.0) up to rounding


def basic_motions() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The archive's split: train x [40, 100, 6] float64, y [40] (index into CLASS_NAMES), test x, y."""
    from tinytrain.data.series import read_ts

    out = []
    for part in ("TRAIN", "TEST"):
        rec = read_ts(DATA_DIR / f"BasicMotions_{part}.ts.gz", _pair=False)
        out += [np.stack(rec.series), np.asarray([CLASS_NAMES.index(v) for v in rec.labels], np.int64)]
    return out[0], out[1], out[2], out[3]


def rotate(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Apply rotation `r` (3x3) to the accelerometer (channels 0-2) and gyroscope (3-5) of `x` [..., 6]."""
    out = np.array(x, np.float64, copy=True)
    out[..., 0:3] = x[..., 0:3] @ r.T
    out[..., 3:6] = x[..., 3:6] @ r.T
    return out


@dataclass
class SensorScenario:
    """Normalized float splits, channels last `[N, L, C]`, and what made them."""

    pretrain: tuple[np.ndarray, np.ndarray]
    adapt: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    norm: Normalization
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    provenance: dict[str, Any] = field(default_factory=dict)

    def int8(self, part: str, scale: float, zero: int) -> tuple[np.ndarray, np.ndarray]:
        """A split as the model's int8 input in the device layout `[N, 1, L, C]`."""
        x, y = getattr(self, part)
        return quantize(x, scale, zero)[:, None], y

    def dataset(self, input_scale: float, input_zero: int, **_: Any) -> Dataset:
        """The on-device job's data: train = the adapt split, test = the held-out split, int8 device layout.

        Takes `**model_input(graph)` (its `input_shape` is checked by the job against the samples)."""
        xs, ys = self.int8("adapt", input_scale, input_zero)
        xt, yt = self.int8("test", input_scale, input_zero)
        prov = {
            **self.provenance,
            "format": "sensor-scenario",
            "train_split": "adapt",
            "quantize": {
                "scale": input_scale,
                "zero": input_zero,
                "rounding": ROUNDING,
                "clipped": clipped_fraction(self.adapt[0], input_scale, input_zero),
            },
        }
        return Dataset("sensor", xs, ys, xt, yt, len(self.class_names), list(self.class_names), prov)


def sensor_scenario(
    seed: int, adapt_per_class: int = 5, rotation: np.ndarray | None = None
) -> SensorScenario:
    """Pretrain / adapt / test splits of the rotated-watch scenario (module doc); `seed` picks adapt."""
    r = ROTATION if rotation is None else np.asarray(rotation, np.float64)
    xa, ya, xb, yb = basic_motions()
    xb = rotate(xb, r)
    rng = np.random.default_rng(seed)
    adapt_idx = np.sort(
        np.concatenate(
            [rng.choice(np.flatnonzero(yb == c), adapt_per_class, replace=False) for c in range(4)]
        )
    )
    test_idx = np.setdiff1d(np.arange(len(yb)), adapt_idx)
    norm = Normalization.fit("standard", xa)
    prov = {
        "source": "BasicMotions (UEA/UCR archive, from aeon 1.6.0's wheel)",
        "scenario": "watch worn rotated: 180 deg about z, accelerometer and gyroscope",
        "rotation": r.tolist(),
        "seed": seed,
        "adapt_per_class": adapt_per_class,
        "pretrain": int(len(ya)),
        "adapt": int(len(adapt_idx)),
        "test": int(len(test_idx)),
        **norm.record(),
    }
    return SensorScenario(
        (norm.apply(xa), ya),
        (norm.apply(xb[adapt_idx]), yb[adapt_idx]),
        (norm.apply(xb[test_idx]), yb[test_idx]),
        norm,
        provenance=prov,
    )
