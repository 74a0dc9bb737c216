"""BasicMotions read offline and the rotated-watch personalization scenario."""

from __future__ import annotations

import gzip

import numpy as np

from tinytrain.data import load_dataset, quantize
from tinytrain.data.sensor import (
    CLASS_NAMES,
    DATA_DIR,
    ROTATION,
    _rot_z,
    basic_motions,
    rotate,
    sensor_scenario,
)


def test_basic_motions_shipped_files() -> None:
    xa, ya, xb, yb = basic_motions()
    assert xa.shape == (40, 100, 6) and xb.shape == (40, 100, 6)
    assert np.bincount(ya).tolist() == [10] * 4 and np.bincount(yb).tolist() == [10] * 4
    first = gzip.decompress((DATA_DIR / "BasicMotions_TRAIN.ts.gz").read_bytes()).decode().split("@data")[1]
    case = first.strip().splitlines()[0].split(":")
    assert np.allclose(xa[0, :, 2], [float(v) for v in case[2].split(",")]) and case[-1] == CLASS_NAMES[ya[0]]


def test_the_same_file_through_load_dataset(tmp_path) -> None:
    for part in ("TRAIN", "TEST"):
        (tmp_path / f"BM_{part}.ts").write_bytes(
            gzip.decompress((DATA_DIR / f"BasicMotions_{part}.ts.gz").read_bytes())
        )
    ds = load_dataset(tmp_path / "BM_TRAIN.ts", input_shape=(6, 1, 100), input_scale=4 / 127, input_zero=0)
    assert ds.class_names == CLASS_NAMES and len(ds.train_y) == 40 and len(ds.test_y) == 40
    s = sensor_scenario(0, rotation=np.eye(3))
    assert np.allclose(ds.provenance["mean"], s.norm.mean)  # both normalize with the archive's train split
    assert np.array_equal(ds.train_x, quantize(s.pretrain[0], 4 / 127, 0)[:, None])


def test_rotation_turns_both_triples() -> None:
    assert np.allclose(ROTATION, _rot_z(180.0))
    x = np.arange(12.0).reshape(2, 6)
    r = rotate(x, ROTATION)
    assert r[0].tolist() == [-0.0, -1.0, 2.0, -3.0, -4.0, 5.0]
    assert np.allclose(np.linalg.norm(r[:, :3], axis=1), np.linalg.norm(x[:, :3], axis=1))


def test_scenario_splits() -> None:
    s = sensor_scenario(1)
    assert (
        s.pretrain[0].shape == (40, 100, 6)
        and s.adapt[0].shape == (20, 100, 6)
        and s.test[0].shape == (20, 100, 6)
    )
    assert np.bincount(s.adapt[1]).tolist() == [5] * 4 and np.bincount(s.test[1]).tolist() == [5] * 4
    flat = {a.tobytes() for a in s.adapt[0]}
    assert not flat & {a.tobytes() for a in s.test[0]}
    assert np.allclose(s.pretrain[0].reshape(-1, 6).mean(0), 0, atol=1e-9)  # statistics of the pretrain split
    assert not np.allclose(s.test[0].reshape(-1, 6).mean(0)[:2], 0, atol=0.05)  # the shift is visible
    again, other = sensor_scenario(1), sensor_scenario(2)
    assert np.array_equal(again.adapt[0], s.adapt[0]) and not np.array_equal(other.adapt[0], s.adapt[0])
    x8, y8 = s.int8("adapt", 0.05, -3)
    assert (
        x8.shape == (20, 1, 100, 6)
        and x8.dtype == np.int8
        and np.array_equal(x8[:, 0], quantize(s.adapt[0], 0.05, -3))
    )
    assert s.provenance["rotation"] == ROTATION.tolist() and s.provenance["seed"] == 1


def test_scenario_as_the_jobs_dataset() -> None:
    s = sensor_scenario(0)
    ds = s.dataset(input_scale=4 / 127, input_zero=0, input_shape=(6, 1, 100))
    assert (
        ds.train_x.shape == (20, 1, 100, 6)
        and ds.test_x.shape == (20, 1, 100, 6)
        and ds.input_shape == (6, 1, 100)
    )
    assert np.array_equal(ds.train_x, s.int8("adapt", 4 / 127, 0)[0]) and ds.class_names == CLASS_NAMES
    assert ds.provenance["train_split"] == "adapt" and 0 < ds.provenance["quantize"]["clipped"] < 0.02
