"""An `.npz` of arrays: `x`, `y`, optional `x_test`, `y_test`, `class_names`.

- `x` int8: already the model's input, in the model's **source layout** (`layout="chw"`: `[N, C, H, W]`
  or, for a 1-D model, `[N, C, L]`; `layout="hwc"`: `[N, H, W, C]` / `[N, L, C]`), used as is (only
  transposed to the device layout HWC);
- `x` uint8: pixels, `x = pixel - 128` like every image (no resize: the shape must fit);
- `x` float: real values, normalized per channel with training statistics (`normalize`), then quantized with
  the model's input scale and zero point (`tinytrain.data.quantize`).
- `y`: integer or string labels. With `class_names` (one per class) integer labels index it; without, the
  classes are the sorted distinct labels of the training set.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from tinytrain.data.errors import DataError

LAYOUTS = ("chw", "hwc")


def _to_device(x: np.ndarray, layout: str, src: str) -> np.ndarray:
    """Source layout -> device layout [N, H, W, C] (a 1-D sample becomes H = 1)."""
    if layout not in LAYOUTS:
        raise DataError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if x.ndim == 3:  # [N, C, L] or [N, L, C]
        x = x[:, :, None, :] if layout == "chw" else x[:, None, :, :]
    elif x.ndim != 4:
        raise DataError(
            f"{src}: x has shape {x.shape}; expected [N, C, H, W] / [N, C, L] (layout chw) or "
            "[N, H, W, C] / [N, L, C] (layout hwc)"
        )
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if layout == "chw" else x)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (
        OSError,
        ValueError,
        zipfile.BadZipFile,
        EOFError,
        NotImplementedError,
        RuntimeError,
        zlib.error,
    ) as exc:
        raise DataError(f"{path}: not a readable .npz without pickled objects ({exc})") from exc
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(
            f"{path}: missing array {missing[0]!r} (found: {', '.join(sorted(arrays)) or 'none'})"
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: x_test and y_test come together (found only one of them)")
    unknown = sorted(set(arrays) - {"x", "y", "x_test", "y_test", "class_names"})
    if unknown:
        raise DataError(f"{path}: unknown array {unknown[0]!r}; expected x, y, x_test, y_test, class_names")
    return arrays


def check_pair(path: Path, x: np.ndarray, y: np.ndarray, xk: str, yk: str) -> None:
    if x.ndim == 0:
        raise DataError(f"{path}: {xk} is a single value (shape ()); expected an array of samples [N, ...]")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(
            f"{path}: {yk} must be 1-D with one label per sample of {xk} ({len(x)}), got {y.shape}"
        )
    if len(x) == 0:
        raise DataError(f"{path}: {xk} has no samples")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            raise DataError(f"{path}: {xk}[{int(np.argmax(bad))}] contains NaN or inf; clean the data")
    elif x.dtype not in (np.int8, np.uint8):
        raise DataError(
            f"{path}: {xk} has dtype {x.dtype}; expected int8 (the model's input), uint8 (pixels) or float"
        )


def _integral(path: Path, y: np.ndarray, key: str) -> np.ndarray:
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            k = int(np.argmax(bad))
            raise DataError(f"{path}: {key}[{k}] = {y[k]} is not a class label (an integer or a string)")
        return y.astype(np.int64)
    if y.dtype.kind not in "iuU":
        raise DataError(f"{path}: {key} has dtype {y.dtype}; labels are integers or strings")
    return y


def labels(
    path: Path, y: np.ndarray, y_test: np.ndarray | None, names: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Labels -> class indices 0..K-1 and class names; a test label unknown to training is an error, unless
    `class_names` declare the classes (a vocabulary: a character the user never typed is still a class).
    Float labels with integral values (a common way to save them) count as integers."""
    y, y_test = _integral(path, y, "y"), (_integral(path, y_test, "y_test") if y_test is not None else None)
    if y_test is not None and (y.dtype.kind == "U") != (y_test.dtype.kind == "U"):
        raise DataError(f"{path}: y holds {y.dtype} labels, y_test {y_test.dtype}; use one kind for both")
    if names is not None:
        class_names = [str(n) for n in np.asarray(names).ravel()]
        if y.dtype.kind not in "iu":
            raise DataError(f"{path}: with class_names, y holds integer class indices, got dtype {y.dtype}")
        for key, arr in (("y", y), ("y_test", y_test)):
            if arr is not None and arr.size and (arr.min() < 0 or arr.max() >= len(class_names)):
                bad = int(np.argmax((arr < 0) | (arr >= len(class_names))))
                raise DataError(
                    f"{path}: {key}[{bad}] = {arr[bad]} is not a class index 0..{len(class_names) - 1} "
                    f"of class_names"
                )
        classes = np.arange(len(class_names))
    else:
        classes = np.unique(y)
        class_names = [str(c) for c in classes]
    present = set(np.unique(y).tolist())
    if y_test is not None and names is None:
        unknown = [v for v in np.unique(y_test).tolist() if v not in present]
        if unknown:
            row = int(np.argmax(y_test == unknown[0]))
            raise DataError(
                f"{path}: y_test[{row}] = {unknown[0]!r}: label not in the training set y; the model cannot "
                "learn a class it never sees"
            )
    index = {v: i for i, v in enumerate(classes.tolist())}
    to_idx = np.vectorize(lambda v: index[v], otypes=[np.int64])
    return to_idx(y), (to_idx(y_test) if y_test is not None else None), class_names
