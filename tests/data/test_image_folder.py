"""A folder of images, one subfolder per class: resize rule, channels, split, and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinytrain import TinytrainError
from tinytrain.data import DataError, load_dataset
from tinytrain.data.images import resize_plane


def _img(
    path: Path, value: int | tuple[int, int, int], size: tuple[int, int] = (20, 12), mode: str = "RGB"
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def _folder(root: Path, per_class: int = 4) -> Path:
    for i in range(per_class):
        _img(root / "red" / f"{i}.png", (200, 10, 10))
        _img(root / "gray" / f"{i}.jpg", 90, mode="L", size=(9, 30))
        _img(root / "blue" / f"{i}.bmp", (0, 0, 255), size=(16, 16))
    return root


def test_folder_classes_sorted_split_and_rgb(tmp_path: Path) -> None:
    ds = load_dataset(_folder(tmp_path / "imgs"), input_shape=(3, 8, 8), seed=0, test_fraction=0.25)
    assert ds.class_names == ["blue", "gray", "red"] and ds.classes == 3
    assert (
        ds.train_x.shape == (9, 8, 8, 3) and ds.test_x.shape == (3, 8, 8, 3) and ds.train_x.dtype == np.int8
    )
    assert sorted(np.bincount(ds.test_y).tolist()) == [1, 1, 1]  # stratified
    red = ds.train_x[ds.train_y == 2]
    assert np.all(red[..., 0] == 200 - 128) and np.all(red[..., 2] == 10 - 128)  # x = pixel - 128
    gray = ds.train_x[ds.train_y == 1]
    assert np.all(gray == 90 - 128)  # a gray image repeats its channel
    assert ds.provenance["format"] == "image-folder" and ds.provenance["split"]["seed"] == 0
    again = load_dataset(tmp_path / "imgs", input_shape=(3, 8, 8), seed=0, test_fraction=0.25)
    assert np.array_equal(again.train_x, ds.train_x) and np.array_equal(again.test_y, ds.test_y)


def test_folder_gray_model_uses_luma(tmp_path: Path) -> None:
    ds = load_dataset(_folder(tmp_path / "imgs"), input_shape=(1, 6, 6), test_fraction=0.25)
    assert ds.train_x.shape[1:] == (6, 6, 1)
    blue = ds.train_x[ds.train_y == 0]
    assert np.all(blue == round(255 * 114 / 1000) - 128)  # ITU-R 601-2 luma of pure blue


def test_16bit_gray_is_scaled_not_clipped(tmp_path: Path) -> None:
    for c, v in (("dark", 4096), ("light", 60000)):
        (tmp_path / "g" / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((6, 6), v, np.uint16)).save(tmp_path / "g" / c / f"{i}.png")
    ds = load_dataset(tmp_path / "g", input_shape=(1, 3, 3), test_fraction=0.5)
    both = np.concatenate([ds.train_x, ds.test_x])
    assert sorted({int(v) for v in both.ravel()}) == [
        round(4096 * 255 / 65535) - 128,
        round(60000 * 255 / 65535) - 128,
    ]


def test_centre_crop_then_bilinear() -> None:
    plane = np.zeros((10, 30), np.float32)
    plane[:, 8:22] = (
        255.0  # a bright centre band of a wide image (the filter reaches 1 pixel beyond the crop)
    )
    out = resize_plane(plane, 5, 5)
    assert out.shape == (5, 5) and np.allclose(out, 255.0)  # the centre square is all that is kept
    sides = 255.0 - plane
    assert resize_plane(sides, 5, 5).max() < 255.0 * 0.2  # the cropped sides barely reach the output
    tall = np.arange(40, dtype=np.float32).reshape(20, 2).repeat(5, axis=1)  # 20 x 10
    assert resize_plane(tall, 4, 4).shape == (4, 4)


def test_train_test_folders(tmp_path: Path) -> None:
    _folder(tmp_path / "d" / "train")
    _folder(tmp_path / "d" / "test", per_class=2)
    ds = load_dataset(tmp_path / "d", resolution=4)
    assert len(ds.train_y) == 12 and len(ds.test_y) == 6 and ds.provenance["split"] == "given"


def _err(spec: Path, **kw: object) -> str:
    kw.setdefault("input_shape", (3, 8, 8))
    with pytest.raises(DataError) as e:
        load_dataset(spec, **kw)  # type: ignore[arg-type]
    assert isinstance(e.value, TinytrainError) and e.value.exit_code == 2
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_bad_folders(tmp_path: Path) -> None:
    root = _folder(tmp_path / "a")
    (root / "empty").mkdir()
    assert f"{root / 'empty'}: empty class folder" in _err(root)

    one = tmp_path / "one"
    _img(one / "cat" / "0.png", (1, 2, 3))
    _img(one / "cat" / "1.png", (1, 2, 3))
    assert f"{one}: only one class ('cat')" in _err(one)

    bad = _folder(tmp_path / "b")
    (bad / "red" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert f"{bad / 'red' / '9.png'}: unreadable or corrupt image" in _err(bad)

    other = _folder(tmp_path / "c")
    (other / "red" / "notes.txt").write_text("x")
    assert "notes.txt: not a PNG, JPEG or BMP" in _err(other)

    stray = _folder(tmp_path / "s")
    _img(stray / "loose.png", (0, 0, 0))
    assert "loose.png: an image folder holds one subfolder per class" in _err(stray)

    assert "the model's input has 2 channels" in _err(_folder(tmp_path / "e"), input_shape=(2, 8, 8))

    split = tmp_path / "sp"
    _folder(split / "train")
    _folder(split / "test", per_class=1)
    _img(split / "test" / "green" / "0.png", (0, 255, 0))
    assert "class 'green' is in the test set but not in the training set" in _err(split)

    assert "needs the model's input size" in _err(_folder(tmp_path / "f"), input_shape=None)
    assert "the data have 3 classes" in _err(_folder(tmp_path / "g"), classes=2)
    tiny = tmp_path / "t"
    for c in ("a", "b"):
        _img(tiny / c / "0.png", (5, 5, 5))
    assert "class 'a' has only 1 sample" in _err(tiny)
