"""Training data for a model's int8 input: shipped sets and the user's own files. Nothing is downloaded.

`load_dataset(spec, ...)` takes a shipped name or a path (docs/data.md has every rule):

- `faces`: `skimage.data.lfw_subset()`, 200 grayscale 25x25 images (floats in [0, 1]); 2 classes,
  `0 = non-face`, `1 = face`: the first 100 images are faces and the last 100 non-faces (the skimage
  docstring: "100 first images are faces and subsequent 100 are non-faces").
- `digits`: `sklearn.datasets.load_digits()`, 1797 grayscale 8x8 images, values 0..16; 10 classes.
- `sensor`: the rotated-watch scenario on BasicMotions (`tinytrain.data.sensor`): train = the 20 adapt
  recordings, test = the 20 held out, both seen through a watch worn rotated; `seed` picks the adapt split.
- a folder of images, one subfolder per class (or `train/` and `test/` each with class subfolders);
- an `.npz` with `x`, `y`, optional `x_test`, `y_test`, `class_names`;
- a long-format `.csv` time series or a UCR/UEA `.ts` file.

Shipped images: scale to 0..255 (`faces` are floats in [0, 1]: x255; `digits` 0..16: x255/16), resize to
the input size with PIL bilinear on the float image (mode `F`), round half to even and clip to 0..255, gray
-> RGB by repeating the channel, then `x = pixel - 128` (int8; the zoo models' input convention, real value
`x / 127.5`). Image files follow the same rule (`tinytrain.data.images`). Float data (series, float `.npz`)
are normalized per channel with training statistics and quantized with the model's input scale and zero
point (`tinytrain.data.quantize`). Arrays are the device layout, HWC: `[N, H, W, C]` (a series of length L
with C channels: `[N, 1, L, C]`, the input of a 1-D model whose logical input is `(C, 1, L)`);
`np.transpose(x, (0, 3, 1, 2))` gives the `[N, C, H, W]` that `reference.infer` and the CLI take.

Split when the data bring no test set: stratified, seeded
(`sklearn.model_selection.train_test_split(stratify=y, random_state=seed)`), `test_fraction` (default 0.3)
of every class goes to the test set: `faces` 140 train / 60 test, `digits` 1257 / 540, each in the split's
seeded shuffled order (so the training set does not list all of one class first). The same seed gives the
same split and order. Series are split by recording before windowing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain.data.errors import DataError
from tinytrain.data.quantize import NORMALIZE, Normalization, clipped_fraction, quantize
from tinytrain.data.split import stratified_split

DATASETS = ("faces", "digits")
#: shipped scenarios of float series, quantized with the model's input (`tinytrain.data.sensor`)
SCENARIOS = ("sensor",)
ROUNDING = "round half to even (numpy rint), saturate to -128..127"

__all__ = [
    "DATASETS",
    "NORMALIZE",
    "DataError",
    "Dataset",
    "load_dataset",
    "model_input",
    "quantize",
    "to_int8",
]


@dataclass
class Dataset:
    name: str
    train_x: np.ndarray  # int8 [N, H, W, C], the device layout
    train_y: np.ndarray  # int64 [N], class indices
    test_x: np.ndarray
    test_y: np.ndarray
    classes: int
    class_names: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)  # source and preprocessing, for the run record

    @property
    def resolution(self) -> int:
        return int(self.train_x.shape[1])

    def summary(self) -> str:
        """One line for progress output."""
        p = self.provenance
        names = ", ".join(self.class_names[:6]) + (", ..." if self.classes > 6 else "")
        extra = ""
        if isinstance(p.get("quantize"), dict):
            extra = (
                f", normalize {p.get('normalize')}, {100 * p['quantize']['clipped']:.1f}% of values saturated"
            )
        return (
            f"dataset {self.name}: {self.classes} classes ({names}), {len(self.train_y)} train / "
            f"{len(self.test_y)} test samples of {self.input_shape} (C, H, W){extra}"
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The logical (C, H, W) input these samples fit (a series: (C, 1, L))."""
        _, h, w, c = self.train_x.shape
        return (int(c), int(h), int(w))


def model_input(graph: Any) -> dict[str, Any]:
    """`load_dataset` keyword arguments describing a graph's input: shape (C, H, W), scale, zero point."""
    t = graph.tensors[graph.input]
    return {
        "input_shape": tuple(int(v) for v in t.shape),
        "input_scale": float(t.scale),
        "input_zero": int(t.zero),
    }


def to_int8(images: np.ndarray, resolution: int) -> np.ndarray:
    """Float gray images (0..255) [N, h, w] -> int8 RGB [N, R, R, 3], `x = pixel - 128`."""
    from tinytrain.data.images import gray_to_int8

    if resolution < 1:
        raise DataError(f"resolution must be positive, got {resolution}")
    return gray_to_int8(images, resolution, resolution, 3)


def load_dataset(
    spec: str | Path,
    resolution: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    *,
    input_shape: tuple[int, ...] | None = None,
    input_scale: float | None = None,
    input_zero: int = 0,
    layout: str = "chw",
    classes: int | None = None,
    window: int | None = None,
    stride: int | None = None,
    normalize: str = "standard",
) -> Dataset:
    """A dataset as the model's int8 input, split into train and test (module doc, docs/data.md).

    `spec`: `faces`, `digits`, `sensor` or a path (image folder, `.npz`, `.csv`, `.ts`). The model's input:
    `input_shape` (its logical `(C, H, W)`; a 1-D model `(C, 1, L)` or `(C, L)`), `input_scale` and
    `input_zero` (needed by float data), or `model_input(graph)`; `resolution` is the older shorthand for
    `(3, R, R)`. `layout`: how an int8 `.npz` stores samples (the model's source layout, `chw` or `hwc`).
    `classes`: a check of the data's class count. `window`/`stride`: cut series into windows.
    `normalize`: `standard` | `none` (float data). Every input error is a `DataError` naming the file and
    the place, raised before anything is returned.
    """
    if normalize not in NORMALIZE:
        raise DataError(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    shape = _shape(input_shape, resolution)
    text = str(spec)
    if text in DATASETS:
        ds = _builtin(text, shape or (3, 128, 128), seed, test_fraction)
    elif text in SCENARIOS:
        if input_scale is None:
            raise DataError(
                f"dataset {text!r} is float sensor data: give the model's input (model_input(graph))"
            )
        from tinytrain.data.sensor import sensor_scenario

        ds = sensor_scenario(seed).dataset(input_scale, input_zero)
    else:
        path = Path(spec)
        if not path.exists():
            raise DataError(
                f"unknown dataset {text!r}: choose one of {', '.join(DATASETS)} or give an existing image "
                "folder, .npz, .csv or .ts file"
            )
        if path.is_dir():
            ds = _folder(path, shape, seed, test_fraction)
        elif path.suffix.lower() == ".npz":
            ds = _npz(path, shape, input_scale, input_zero, layout, normalize, seed, test_fraction)
        elif path.suffix.lower() in (".csv", ".ts"):
            ds = _series(path, shape, input_scale, input_zero, window, stride, normalize, seed, test_fraction)
        else:
            raise DataError(f"{path}: unknown data format {path.suffix!r}; use a folder, .npz, .csv or .ts")
    if classes is not None and classes != ds.classes:
        raise DataError(
            f"{spec}: the data have {ds.classes} classes ({', '.join(ds.class_names[:8])}"
            f"{', ...' if ds.classes > 8 else ''}) but {classes} were requested; the class count comes from "
            "the data"
        )
    if shape is not None and ds.input_shape != shape:
        raise DataError(f"{spec}: samples are {ds.input_shape} (C, H, W), the model's input is {shape}")
    return ds


def _shape(input_shape: tuple[int, ...] | None, resolution: int | None) -> tuple[int, int, int] | None:
    if input_shape is not None:
        s = tuple(int(v) for v in input_shape)
        if len(s) == 2:
            s = (s[0], 1, s[1])
        if len(s) != 3 or min(s) < 1:
            raise DataError(f"input_shape must be (C, H, W) or (C, L) with positive sizes, got {input_shape}")
        if resolution is not None and s[1:] != (resolution, resolution):
            raise DataError(f"resolution {resolution} contradicts input_shape {s}")
        return s  # type: ignore[return-value]
    if resolution is not None:
        if resolution < 1:
            raise DataError(f"resolution must be positive, got {resolution}")
        return (3, resolution, resolution)
    return None


def _builtin(name: str, shape: tuple[int, int, int], seed: int, test_fraction: float) -> Dataset:
    from tinytrain.data.images import builtin_raw, gray_to_int8

    c, h, w = shape
    if c not in (1, 3):
        raise DataError(f"dataset {name!r} gives 1 (gray) or 3 (RGB) channels; the model's input has {c}")
    imgs, y, names = builtin_raw(name)
    idx_train, idx_test = stratified_split(y, test_fraction, seed, name)
    x = gray_to_int8(imgs, h, w, c)
    prov = {
        "source": name,
        "format": "builtin",
        "resize": "bilinear (Pillow, float), round half to even",
        "pixel": "x = pixel - 128",
        "split": {"seed": seed, "test_fraction": test_fraction},
    }
    return Dataset(name, x[idx_train], y[idx_train], x[idx_test], y[idx_test], len(names), names, prov)


def _finish(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None,
    names: list[str],
    prov: dict[str, Any],
    seed: int,
    test_fraction: float,
) -> Dataset:
    """Split when no test set was given (stratified, seeded); record it."""
    x, y = train
    if len(names) < 2:
        raise DataError(
            f"{name}: only one class ({names[0] if names else 'none'}); a classifier needs 2 or more"
        )
    if test is None:
        tr, te = stratified_split(y, test_fraction, seed, name, names=names)
        test = (x[te], y[te])
        x, y = x[tr], y[tr]
        prov["split"] = {"seed": seed, "test_fraction": test_fraction, "stratified": True}
    else:
        prov.setdefault("split", "given")
    prov["source"] = name
    prov["train"], prov["test"] = int(len(y)), int(len(test[1]))
    return Dataset(Path(name).name, x, y, test[0], test[1], len(names), names, prov)


def _folder(path: Path, shape: tuple[int, int, int] | None, seed: int, test_fraction: float) -> Dataset:
    from tinytrain.data.images import load_image_folder

    if shape is None:
        raise DataError(f"{path}: an image folder needs the model's input size (input_shape or resolution)")
    train, test, names, prov = load_image_folder(path, shape)
    return _finish(str(path), train, test, names, prov, seed, test_fraction)


def _npz(
    path: Path,
    shape: tuple[int, int, int] | None,
    scale: float | None,
    zero: int,
    layout: str,
    normalize: str,
    seed: int,
    test_fraction: float,
) -> Dataset:
    from tinytrain.data import arrays as A

    z = A.read_npz(path)
    x, y = z["x"], z["y"]
    A.check_pair(path, x, y, "x", "y")
    xt, yt = z.get("x_test"), z.get("y_test")
    if xt is not None and yt is not None:
        A.check_pair(path, xt, yt, "x_test", "y_test")
        if xt.dtype != x.dtype or xt.shape[1:] != x.shape[1:]:
            raise DataError(
                f"{path}: x_test is {xt.dtype} {xt.shape[1:]} per sample, x is {x.dtype} {x.shape[1:]}; "
                "they must match"
            )
    y_idx, yt_idx, names = A.labels(path, y, yt, z.get("class_names"))
    dx = A._to_device(x, layout, str(path))
    dxt = A._to_device(xt, layout, str(path)) if xt is not None else None
    if shape is not None and tuple(dx.shape[1:]) != (shape[1], shape[2], shape[0]):
        got = (dx.shape[3], dx.shape[1], dx.shape[2])
        raise DataError(
            f"{path}: x samples are {got} (C, H, W) read in layout {layout}, the model's input is {shape}; "
            "reshape the arrays or check the layout"
        )
    if len(names) < 2:
        raise DataError(
            f"{path}: only one class ({names[0] if names else 'none'}); a classifier needs 2 or more"
        )
    prov: dict[str, Any] = {"format": "npz", "dtype": str(x.dtype), "layout": layout}
    if dxt is None or yt_idx is None:  # split before any statistics are taken
        tr, te = stratified_split(y_idx, test_fraction, seed, str(path), names=names)
        dxt, yt_idx = dx[te], y_idx[te]
        dx, y_idx = dx[tr], y_idx[tr]
        prov["split"] = {"seed": seed, "test_fraction": test_fraction, "stratified": True}
    if x.dtype == np.int8:
        prov["preprocess"] = "none (int8 model input)"
    elif x.dtype == np.uint8:
        dx, dxt = (dx.astype(np.int16) - 128).astype(np.int8), (dxt.astype(np.int16) - 128).astype(np.int8)
        prov["preprocess"] = "pixels: x = pixel - 128"
    else:
        if scale is None:
            raise DataError(f"{path}: float x needs the model's input scale and zero point to quantize")
        norm = Normalization.fit(normalize, dx, str(path))
        fx, fxt = norm.apply(dx), norm.apply(dxt)
        prov.update(norm.record())
        prov["quantize"] = {
            "scale": scale,
            "zero": zero,
            "rounding": ROUNDING,
            "clipped": clipped_fraction(fx, scale, zero),
        }
        dx, dxt = quantize(fx, scale, zero), quantize(fxt, scale, zero)
    return _finish(str(path), (dx, y_idx), (dxt, yt_idx), names, prov, seed, test_fraction)


def _series(
    path: Path,
    shape: tuple[int, int, int] | None,
    scale: float | None,
    zero: int,
    window: int | None,
    stride: int | None,
    normalize: str,
    seed: int,
    test_fraction: float,
) -> Dataset:
    from tinytrain.data import series as S

    rec = S.read_csv(path) if path.suffix.lower() == ".csv" else S.read_ts(path)
    parts = [rec] + ([rec.test] if rec.test is not None else [])
    for r in parts:
        S.check_window(r, window, stride)
    if window is None:
        S.check_equal_lengths(parts)
    if shape is not None and shape[0] != len(rec.channels):
        raise DataError(
            f"{path}: {len(rec.channels)} channels ({', '.join(rec.channels)}), the model's input has "
            f"{shape[0]}"
        )
    if shape is not None and shape[1] != 1:
        raise DataError(
            f"{path}: a time series needs a 1-D model input (C, 1, L); the model's input is {shape}"
        )
    if scale is None:
        raise DataError(f"{path}: a time series needs the model's input scale and zero point to quantize")
    # recordings -> train / test (by recording, before windowing)
    if rec.test is not None:
        train_rec, test_rec = rec, rec.test
        tr, te = np.arange(len(rec.series)), np.arange(len(rec.test.series))
        given = True
    elif rec.split:
        sp = np.asarray(rec.split)
        tr, te = np.flatnonzero(sp == "train"), np.flatnonzero(sp == "test")
        if len(tr) == 0 or len(te) == 0:
            raise DataError(f"{path}: the split column names no {'train' if len(tr) == 0 else 'test'} sample")
        train_rec = test_rec = rec
        given = True
    else:
        names_all = S.sort_labels(set(rec.labels))
        if len(names_all) < 2:
            raise DataError(f"{path}: only one class ({names_all[0]!r}); a classifier needs 2 or more")
        tr, te = stratified_split(np.asarray(rec.labels), test_fraction, seed, str(path), unit="recording")
        train_rec = test_rec = rec
        given = False
    train_labels = [train_rec.labels[i] for i in tr]
    names = S.sort_labels(set(train_labels))
    if len(names) < 2:
        raise DataError(
            f"{path}: only one class ({names[0]!r}) in the training set; a classifier needs 2 or more"
        )
    for i in te:
        if test_rec.labels[i] not in names:
            raise DataError(
                f"{test_rec.source}: line {test_rec.lines[i]}: label {test_rec.labels[i]!r} of test sample "
                f"{test_rec.ids[i]!r} is not in the training set ({', '.join(names)})"
            )
    fx, own = S.windows(train_rec, tr, window, stride)
    fxt, own_t = S.windows(test_rec, te, window, stride)
    length = fx.shape[1]
    if shape is not None and shape[2] != length:
        if window is not None:
            hint = f"use --window {shape[2]}"
        elif length > shape[2]:
            hint = f"give --window {shape[2]} to cut them into windows"
        else:
            hint = "the recordings are too short for this model"
        raise DataError(f"{path}: samples are {length} steps long, the model's input is {shape[2]}: {hint}")
    index = {n: i for i, n in enumerate(names)}
    y = np.asarray([index[train_rec.labels[i]] for i in own], np.int64)
    yt = np.asarray([index[test_rec.labels[i]] for i in own_t], np.int64)
    norm = Normalization.fit(normalize, fx, str(path))
    nx, nxt = norm.apply(fx), norm.apply(fxt)
    prov: dict[str, Any] = {
        "format": "ts" if path.suffix.lower() == ".ts" else "csv-long",
        "channels": list(rec.channels),
        "recordings": {"train": int(len(tr)), "test": int(len(te))},
        "window": window,
        "stride": stride if stride is not None else window,
        **norm.record(),
        "quantize": {
            "scale": scale,
            "zero": zero,
            "rounding": ROUNDING,
            "clipped": clipped_fraction(nx, scale, zero),
        },
    }
    if given:
        prov["split"] = "given" if rec.test is None else f"given ({rec.test.source.name})"
    else:
        prov["split"] = {"seed": seed, "test_fraction": test_fraction, "stratified": True, "by": "recording"}
    # [N, L, C] -> device [N, 1, L, C]
    x8 = quantize(nx, scale, zero)[:, None]
    xt8 = quantize(nxt, scale, zero)[:, None]
    prov["source"] = str(path)
    prov["train"], prov["test"] = int(len(y)), int(len(yt))
    return Dataset(path.name, x8, y, xt8, yt, len(names), names, prov)
