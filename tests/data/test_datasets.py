"""Datasets shipped in packages, preprocessed to the int8 input."""

from __future__ import annotations

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.data import load_dataset, to_int8


def test_faces() -> None:
    d = load_dataset("faces", 32, seed=0)
    assert d.train_x.shape == (140, 32, 32, 3) and d.test_x.shape == (60, 32, 32, 3)
    assert d.train_x.dtype == np.int8 and d.classes == 2 and d.class_names == ["non-face", "face"]
    assert d.train_y.sum() == 70 and d.test_y.sum() == 30  # stratified
    assert np.array_equal(d.train_x[..., 0], d.train_x[..., 2])  # gray -> RGB
    from skimage.data import lfw_subset

    raw = lfw_subset()
    # label 1 = the first 100 images (faces, per the skimage docstring): find one in the split
    first = to_int8(raw[:1] * 255.0, 32)[0]
    idx = [i for i in range(len(d.train_x)) if np.array_equal(d.train_x[i], first)]
    idx_t = [i for i in range(len(d.test_x)) if np.array_equal(d.test_x[i], first)]
    assert (idx and d.train_y[idx[0]] == 1) or (idx_t and d.test_y[idx_t[0]] == 1)
    assert 0 < d.train_y[:20].sum() < 20  # shuffled: not all of one class first


def test_digits_and_determinism() -> None:
    a = load_dataset("digits", 16, seed=1)
    assert a.train_x.shape == (1257, 16, 16, 3) and a.test_x.shape == (540, 16, 16, 3) and a.classes == 10
    assert np.all(np.bincount(a.test_y) >= 52)
    assert a.train_x.min() == -128 and a.train_x.max() == 127  # 0..16 scaled to the full 0..255
    b = load_dataset("digits", 16, seed=1)
    assert np.array_equal(a.train_x, b.train_x) and np.array_equal(a.test_y, b.test_y)
    c = load_dataset("digits", 16, seed=2)
    assert not np.array_equal(a.test_y, c.test_y)
    assert load_dataset("digits", 8).train_x.shape[1:] == (8, 8, 3)


def test_errors() -> None:
    with pytest.raises(TinytrainError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(TinytrainError, match="resolution"):
        load_dataset("faces", 0)


def test_model_input_form_is_the_resolution_form() -> None:
    """Callers moving from `load_dataset(name, R)` to the model's input description get the same bytes."""
    old = load_dataset("faces", 24, seed=2)
    new = load_dataset("faces", input_shape=(3, 24, 24), input_scale=1 / 127.5, input_zero=0, seed=2)
    for a, b in zip(
        (old.train_x, old.train_y, old.test_x, old.test_y),
        (new.train_x, new.train_y, new.test_x, new.test_y),
        strict=True,
    ):
        assert np.array_equal(a, b)
    gray = load_dataset("digits", input_shape=(1, 8, 8))
    assert gray.train_x.shape[1:] == (8, 8, 1) and np.array_equal(
        gray.train_x[..., 0], load_dataset("digits", 8).train_x[..., 0]
    )
    assert new.provenance["source"] == "faces" and new.provenance["split"]["seed"] == 2
