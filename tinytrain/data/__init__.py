"""Datasets that ship inside installed packages, preprocessed to a model's int8 input. Nothing is
downloaded.

- `faces`: `skimage.data.lfw_subset()`, 200 grayscale 25x25 images (floats in [0, 1]); 2 classes,
  `0 = non-face`, `1 = face`: the first 100 images are faces and the last 100 non-faces (the skimage
  docstring: "100 first images are faces and subsequent 100 are non-faces").
- `digits`: `sklearn.datasets.load_digits()`, 1797 grayscale 8x8 images, values 0..16; 10 classes.

Preprocessing, identical for both: scale to 0..255 (`faces` are floats in [0, 1]: x255; `digits`
0..16: x255/16), resize to `resolution x resolution` with PIL bilinear on the float image (mode `F`),
round half to even and clip to 0..255, gray -> RGB by repeating the channel, then `x = pixel - 128`
(int8; the zoo models' input convention, real value `x / 127.5`). Arrays are HWC, the device layout:
`[N, H, W, 3]`; `np.transpose(x, (0, 3, 1, 2))` gives the `[N, C, H, W]` that `reference.infer` and the
CLI take.

Split: stratified, seeded (`sklearn.model_selection.train_test_split(stratify=y, random_state=seed)`),
`test_fraction` (default 0.3) of every class goes to the test set: `faces` 140 train / 60 test,
`digits` 1257 / 540, each in the split's seeded shuffled order (so the training set does not list all of
one class first). The same seed gives the same split and order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinytrain import TinytrainError

DATASETS = ("faces", "digits")


@dataclass
class Dataset:
    name: str
    train_x: np.ndarray  # int8 [N, H, W, 3]
    train_y: np.ndarray  # int64 [N]
    test_x: np.ndarray
    test_y: np.ndarray
    classes: int
    class_names: list[str]

    @property
    def resolution(self) -> int:
        return int(self.train_x.shape[1])


def _raw(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images as float 0..255 [N, h, w], labels, class names."""
    if name == "faces":
        from skimage.data import lfw_subset

        imgs = np.asarray(lfw_subset(), dtype=np.float64)
        if imgs.max() <= 1.0:
            imgs = imgs * 255.0
        y = np.concatenate([np.ones(100, np.int64), np.zeros(len(imgs) - 100, np.int64)])
        return imgs, y, ["non-face", "face"]
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return (
            np.asarray(d.images, np.float64) * (255.0 / 16.0),
            np.asarray(d.target, np.int64),
            [str(i) for i in range(10)],
        )
    raise TinytrainError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def to_int8(images: np.ndarray, resolution: int) -> np.ndarray:
    """Float gray images (0..255) [N, h, w] -> int8 RGB [N, R, R, 3], `x = pixel - 128`."""
    from PIL import Image

    if resolution < 1:
        raise TinytrainError(f"resolution must be positive, got {resolution}")
    out = np.empty((len(images), resolution, resolution), np.float32)
    for i, im in enumerate(images):
        pil = Image.fromarray(np.asarray(im, np.float32), mode="F")
        out[i] = np.asarray(pil.resize((resolution, resolution), Image.Resampling.BILINEAR))
    pix = np.clip(np.rint(out), 0, 255).astype(np.int16)
    return np.repeat((pix - 128).astype(np.int8)[..., None], 3, axis=3)


def load_dataset(name: str, resolution: int = 128, seed: int = 0, test_fraction: float = 0.3) -> Dataset:
    """A shipped dataset at the given input resolution, split into train and test (see module doc)."""
    from sklearn.model_selection import train_test_split

    imgs, y, names = _raw(name)
    if not 0.0 < test_fraction < 1.0:
        raise TinytrainError(f"test_fraction must be in (0, 1), got {test_fraction}")
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=y
    )
    x = to_int8(imgs, resolution)
    return Dataset(name, x[idx_train], y[idx_train], x[idx_test], y[idx_test], len(names), names)
