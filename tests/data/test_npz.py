"""`.npz` datasets: int8 used as is (in the model's source layout), uint8 pixels, float quantized."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinytrain.data import DataError, load_dataset, quantize


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_int8_chw_used_as_is(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (12, 2, 3, 5), dtype=np.int8)  # [N, C, H, W]
    y = np.repeat([0, 1, 2], 4)
    p = _save(tmp_path / "d.npz", x=x, y=y, x_test=x[:3], y_test=y[:3], class_names=np.array(["a", "b", "c"]))
    ds = load_dataset(p, input_shape=(2, 3, 5))
    assert np.array_equal(ds.train_x, x.transpose(0, 2, 3, 1)) and np.array_equal(ds.train_y, y)
    assert ds.class_names == ["a", "b", "c"] and ds.provenance["split"] == "given" and len(ds.test_y) == 3
    hwc = load_dataset(_save(tmp_path / "h.npz", x=x.transpose(0, 2, 3, 1), y=y), layout="hwc", seed=1)
    assert hwc.input_shape == (2, 3, 5) and len(hwc.train_y) + len(hwc.test_y) == 12


def test_series_shaped_int8_and_string_labels(tmp_path: Path) -> None:
    x = np.arange(8 * 3 * 10).astype(np.int8).reshape(8, 3, 10)  # [N, C, L]
    y = np.array(["walk", "run"] * 4)
    ds = load_dataset(_save(tmp_path / "s.npz", x=x, y=y), input_shape=(3, 10), test_fraction=0.25)
    assert ds.train_x.shape == (6, 1, 10, 3) and ds.class_names == ["run", "walk"]


def test_uint8_pixels(tmp_path: Path) -> None:
    x = np.full((6, 4, 4, 3), 200, np.uint8)
    ds = load_dataset(
        _save(tmp_path / "u.npz", x=x, y=np.array([0, 1] * 3)), layout="hwc", test_fraction=0.34
    )
    assert np.all(ds.train_x == 72)


def test_float_normalized_with_train_statistics(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 3.0, (20, 2, 1, 16)).astype(np.float32)
    xt = x[:4] + 100.0  # test statistics must not leak into the normalization
    y = np.repeat([0, 1], 10)
    p = _save(tmp_path / "f.npz", x=x, y=y, x_test=xt, y_test=y[:4])
    ds = load_dataset(p, input_shape=(2, 1, 16), input_scale=0.05, input_zero=3)
    dev = x.transpose(0, 2, 3, 1).astype(np.float64)
    mean, std = dev.reshape(-1, 2).mean(0), dev.reshape(-1, 2).std(0)
    assert np.array_equal(ds.train_x, quantize((dev - mean) / std, 0.05, 3))
    assert np.allclose(ds.provenance["mean"], mean) and ds.provenance["normalize"] == "standard"
    assert np.all(ds.test_x == 127)  # +100 sigma saturates
    raw = load_dataset(p, input_shape=(2, 1, 16), input_scale=0.05, normalize="none")
    assert np.array_equal(raw.train_x, quantize(dev, 0.05, 0))


def test_quantize_rounds_half_to_even() -> None:
    assert quantize(np.array([0.5, 1.5, 2.5, -0.5, 300.0, -300.0]), 1.0, 0).tolist() == [
        0,
        2,
        2,
        0,
        127,
        -128,
    ]


def _err(path: Path, **kw: object) -> str:
    with pytest.raises(DataError) as e:
        load_dataset(path, **kw)  # type: ignore[arg-type]
    assert "\n" not in str(e.value)
    return str(e.value)


def test_bad_npz(tmp_path: Path) -> None:
    x = np.zeros((6, 1, 4, 4), np.int8)
    y = np.array([0, 1] * 3)
    assert "missing array 'y'" in _err(_save(tmp_path / "a.npz", x=x))
    (tmp_path / "b.npz").write_bytes(b"garbage")
    assert "b.npz: not a readable .npz" in _err(tmp_path / "b.npz")
    assert "x_test and y_test come together" in _err(_save(tmp_path / "c.npz", x=x, y=y, x_test=x))
    msg = _err(_save(tmp_path / "d.npz", x=x, y=y, x_test=x[:2], y_test=np.array([0, 5])))
    assert "d.npz: y_test[1] = 5: label not in the training set" in msg
    f = np.zeros((6, 1, 4, 4), np.float32)
    f[4, 0, 2, 1] = np.nan
    assert "x[4] contains NaN or inf" in _err(_save(tmp_path / "e.npz", x=f, y=y), input_scale=0.1)
    assert "the model's input is (3, 4, 4)" in _err(
        _save(tmp_path / "g.npz", x=x, y=y), input_shape=(3, 4, 4)
    )
    assert "only one class" in _err(_save(tmp_path / "h.npz", x=x, y=np.zeros(6, np.int64)))
    assert "dtype int32" in _err(_save(tmp_path / "i.npz", x=x.astype(np.int32), y=y))
    assert "needs the model's input scale" in _err(_save(tmp_path / "j.npz", x=np.zeros_like(f), y=y))
    assert "y[0] = 7 is not a class index" in _err(
        _save(tmp_path / "k.npz", x=x, y=np.array([7, 1, 0, 1, 0, 1]), class_names=np.array(["a", "b"]))
    )
    assert "one label per sample" in _err(_save(tmp_path / "l.npz", x=x, y=y[:5]))
    assert "y[2] = 0.5 is not a class label" in _err(
        _save(tmp_path / "m.npz", x=x, y=np.array([0, 1, 0.5, 1, 0, 1]))
    )
    ok = load_dataset(_save(tmp_path / "n.npz", x=x, y=y.astype(np.float64)), test_fraction=0.34)
    assert ok.class_names == ["0", "1"] and ok.train_y.dtype == np.int64
    assert "use one kind for both" in _err(
        _save(tmp_path / "o.npz", x=x, y=y, x_test=x[:1], y_test=np.array(["a"]))
    )
