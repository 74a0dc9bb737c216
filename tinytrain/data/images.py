"""Images to the model's int8 input: the shipped sets (`faces`, `digits`) and a folder of image files.

One rule for every image (`docs/data.md`):

1. decode with Pillow (PNG / JPEG / BMP; the EXIF orientation of a photo is applied), convert to the model's
   channels: 3 -> `RGB` (a gray image repeats its channel), 1 -> `L` (Pillow's ITU-R 601-2 luma); a 16-bit
   gray PNG is scaled to 0..255 (`x * 255 / 65535`, float) instead of being clipped;
2. centre-crop to the model's aspect ratio and resize to `H x W` in one resampling, **bilinear** on the float
   channel (Pillow `resize(..., BILINEAR, box=crop)` on mode `F`; a square image at a square input is just
   resized): the same as "shorter side to the target, then centre crop";
3. round half to even, clip to 0..255, `x = pixel - 128` (int8). The model's input scale and zero point say
   what real value a pixel means (the zoo: `x / 127.5`); images are never standardized.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinytrain.data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
RESIZE_RULE = "centre crop to the input's aspect ratio + bilinear resize (Pillow, float), round half to even"


def builtin_raw(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Shipped images as float 0..255 [N, h, w], labels, class names."""
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
    raise DataError(f"unknown dataset {name!r}")


def _crop_box(w: int, h: int, out_h: int, out_w: int) -> tuple[float, float, float, float]:
    """The centred source region with the output's aspect ratio."""
    if w * out_h > h * out_w:  # source wider than the target: crop the width
        cw = h * out_w / out_h
        return ((w - cw) / 2, 0.0, (w + cw) / 2, float(h))
    ch = w * out_h / out_w
    return (0.0, (h - ch) / 2, float(w), (h + ch) / 2)


def resize_plane(plane: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """One float channel [h, w] -> [out_h, out_w] float32 (centre crop + bilinear, see module doc)."""
    from PIL import Image

    h, w = plane.shape
    pil = Image.fromarray(np.asarray(plane, np.float32), mode="F")
    box = _crop_box(w, h, out_h, out_w)
    return np.asarray(pil.resize((out_w, out_h), Image.Resampling.BILINEAR, box=box), np.float32)


def pixels_to_int8(planes: np.ndarray) -> np.ndarray:
    """Float pixels 0..255 -> int8 `pixel - 128` (round half to even, clip)."""
    return (np.clip(np.rint(planes), 0, 255).astype(np.int16) - 128).astype(np.int8)


def gray_to_int8(images: np.ndarray, out_h: int, out_w: int, channels: int) -> np.ndarray:
    """Float gray images (0..255) [N, h, w] -> int8 [N, out_h, out_w, channels] (gray repeated)."""
    out = np.empty((len(images), out_h, out_w), np.float32)
    for i, im in enumerate(images):
        out[i] = resize_plane(im, out_h, out_w)
    return np.repeat(pixels_to_int8(out)[..., None], channels, axis=3)


# ---- a folder of images --------------------------------------------------------------------------------


def _class_dirs(root: Path) -> list[Path]:
    stray = [p for p in sorted(root.iterdir()) if p.is_file() and not p.name.startswith(".")]
    if stray:
        raise DataError(
            f"{stray[0]}: an image folder holds one subfolder per class (class name = folder name), not files"
        )
    dirs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if not dirs:
        raise DataError(f"{root}: no class subfolders; put each class's images in a subfolder named after it")
    return dirs


def _image_files(d: Path) -> list[Path]:
    files = [p for p in sorted(d.iterdir()) if not p.name.startswith(".")]
    for p in files:
        if p.is_dir():
            raise DataError(f"{p}: a folder inside class folder {d}; a class folder holds image files only")
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{p}: not a PNG, JPEG or BMP file (by its extension); remove it or convert it")
    if not files:
        raise DataError(f"{d}: empty class folder; add images or remove the folder")
    return files


def _decode(path: Path, channels: int, out_h: int, out_w: int) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I;16") or im.mode == "I":  # 16-bit gray: 0..65535 -> 0..255, not clipped
                a = np.asarray(im, np.float64) * (255.0 / 65535.0)
                a = np.repeat(a[..., None], channels, axis=2).astype(np.float32)
            else:
                a = np.asarray(im.convert("RGB" if channels == 3 else "L"), np.float32)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: unreadable or corrupt image ({exc}); fix or remove the file") from exc
    a = a[..., None] if a.ndim == 2 else a
    planes = np.stack([resize_plane(a[..., c], out_h, out_w) for c in range(channels)], axis=-1)
    return pixels_to_int8(planes)


def _read_classes(root: Path, channels: int, out_h: int, out_w: int) -> dict[str, list[np.ndarray]]:
    listing = {d.name: _image_files(d) for d in _class_dirs(root)}  # every folder checked before decoding
    return {name: [_decode(p, channels, out_h, out_w) for p in files] for name, files in listing.items()}


def load_image_folder(
    root: Path, input_shape: tuple[int, int, int]
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None, list[str], dict[str, object]]:
    """`root/<class>/*.png` (or `root/train/<class>/...` + `root/test/<class>/...`): int8 HWC arrays.

    Returns (train x, y), (test x, y) or None, class names (sorted folder names), provenance."""
    c, h, w = input_shape
    if c not in (1, 3):
        raise DataError(
            f"{root}: the model's input has {c} channels; images convert to 1 (gray) or 3 (RGB) channels"
        )
    subs = {p.name for p in root.iterdir() if p.is_dir()}
    split_given = {"train", "test"} <= subs
    if split_given:
        train = _read_classes(root / "train", c, h, w)
        test = _read_classes(root / "test", c, h, w)
        unknown = sorted(set(test) - set(train))
        if unknown:
            raise DataError(
                f"{root / 'test' / unknown[0]}: class {unknown[0]!r} is in the test set but not in the "
                f"training set ({root / 'train'})"
            )
    else:
        train, test = _read_classes(root, c, h, w), None
    names = sorted(train)
    if len(names) < 2:
        where = root / "train" if split_given else root
        raise DataError(
            f"{where}: only one class ({names[0]!r}); a classifier needs at least 2 class folders"
        )

    def arrays(by_class: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        xs = [x for n in names for x in by_class.get(n, [])]
        ys = [i for i, n in enumerate(names) for _ in by_class.get(n, [])]
        return np.stack(xs).astype(np.int8), np.asarray(ys, np.int64)

    prov = {
        "format": "image-folder",
        "layout": "train/ + test/ class folders" if split_given else "class folders",
        "images": sum(len(v) for v in train.values()) + (sum(len(v) for v in test.values()) if test else 0),
        "resize": RESIZE_RULE,
        "channels": "RGB" if c == 3 else "L (ITU-R 601-2 luma)",
        "pixel": "x = pixel - 128",
    }
    return arrays(train), (arrays(test) if test is not None else None), names, prov
