"""Fuzz targets for the data a user hands `--dataset` (image folders, long-format CSV series, `.npz`
arrays) and the saved-state flash images of an exported library (the host-side reader,
tinytrain/export/state.py).

Every case calls `load_dataset` as the CLI does (the model's input shape, scale and zero point given), so a
case ends with a Dataset or a DataError (one line, exit 2). The seeds are small valid data sets built here;
the mutations are byte-level and structural (see each target)."""

from __future__ import annotations

import codecs
import io
import random
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .fuzz import Campaign, mutate, random_array, run_case

# ---- image folders ---------------------------------------------------------------------------------------

IMAGE_MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "LA", "YCbCr"]


def _image_bytes(rng: random.Random, fmt: str, mode: str = "RGB", size: tuple[int, int] = (9, 7)) -> bytes:
    from PIL import Image

    a = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(a, "RGB")
    if mode != "RGB":
        im = im.convert(mode) if mode not in ("I;16", "I", "F") else im.convert("L").convert(mode)
    buf = io.BytesIO()
    save_fmt = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP"}[fmt]
    if save_fmt == "JPEG" and im.mode not in ("L", "RGB", "CMYK"):
        im = im.convert("RGB")
    if save_fmt == "BMP" and im.mode not in ("1", "L", "P", "RGB", "RGBA"):
        im = im.convert("RGB")
    try:
        im.save(buf, save_fmt)
    except OSError:  # a mode this format cannot hold (Pillow version dependent)
        buf = io.BytesIO()
        im.convert("RGB").save(buf, save_fmt)
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height and has no pixel data (a decompression-bomb / truncated header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def _good_folder(root: Path, rng: random.Random) -> None:
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for j, fmt in enumerate(("png", "jpg", "bmp")):
            (root / cls / f"{j}.{fmt}").write_bytes(_image_bytes(rng, fmt))


def _mutate_folder(root: Path, rng: random.Random) -> None:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        return
    k = rng.randrange(12)
    f = rng.choice(files)
    if k <= 2:  # corrupt bytes
        f.write_bytes(mutate(f.read_bytes(), rng))
    elif k == 3:  # truncated
        data = f.read_bytes()
        f.write_bytes(data[: rng.randrange(max(len(data), 1))])
    elif k == 4:  # another mode, maybe another format behind the same name
        f.write_bytes(_image_bytes(rng, rng.choice(["png", "bmp", "jpg"]), rng.choice(IMAGE_MODES)))
    elif k == 5:  # odd sizes: 1x1, long strips, a declared giant with no data
        f.write_bytes(
            rng.choice(
                [
                    _image_bytes(rng, "png", "RGB", (1, 1)),
                    _image_bytes(rng, "png", "L", (300, 1)),
                    _png_header(100_000, 100_000),
                    _png_header(0, 5),
                ]
            )
        )
    elif k == 6:  # an empty class folder
        d = root / rng.choice(["empty", "cat"])
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    elif k == 7:  # odd names
        name = rng.choice(
            ["é ñ 日本.png", " .png", "a.PNG", "x.png.txt", "noext", "-rf.jpg", "a" * 200 + ".png"]
        )
        (f.parent / name).write_bytes(f.read_bytes())
    elif k == 8:  # a stray file at the root, a nested folder, a hidden file
        rng.choice(
            [
                lambda: (root / "notes.txt").write_text("x"),
                lambda: (f.parent / "sub").mkdir(exist_ok=True),
                lambda: (f.parent / ".DS_Store").write_bytes(b"\0\1"),
            ]
        )()
    elif k == 9:  # one class only
        shutil.rmtree(root / "dog", ignore_errors=True)
    elif k == 10:  # train/ + test/ split, maybe with a class only in test
        tr, te = root / "train", root / "test"
        tr.mkdir(exist_ok=True)
        te.mkdir(exist_ok=True)
        for d in [p for p in root.iterdir() if p.is_dir() and p.name not in ("train", "test")]:
            shutil.copytree(d, te / (d.name if rng.random() < 0.7 else d.name + "_x"), dirs_exist_ok=True)
            d.rename(tr / d.name)
    else:  # a file that is not an image at all, or empty
        f.write_bytes(
            rng.choice([b"", b"GIF89a", b"not an image", bytes(rng.randrange(256) for _ in range(64))])
        )


def fuzz_image_folders(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    from tinytrain.data import load_dataset

    for i in range(n):
        root = tmp / f"img{i % 20}"
        shutil.rmtree(root, ignore_errors=True)
        _good_folder(root, rng)
        for _ in range(rng.randint(1, 3)):
            _mutate_folder(root, rng)
        shape = rng.choice([(3, 8, 8), (1, 8, 8), (3, 5, 13)])
        run_case(c, "image folder (dataset)", lambda r=root, s=shape: load_dataset(r, input_shape=s), None)


# ---- CSV series -------------------------------------------------------------------------------------------


def _good_csv(rng: random.Random) -> list[list[str]]:
    rows = [["sample", "label", "split", "ax", "ay", "az"]]
    for s in range(8):
        label = ("walk", "run")[s % 2]
        split = "test" if s >= 6 else "train"
        for _ in range(16):
            rows.append([f"s{s}", label, split, *(f"{rng.uniform(-2, 2):.4f}" for _ in range(3))])
    return rows


ODD_CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1e308", "1e308", "abc", "1,5", "0x10", "١٢",
             '"', "'", "None", "TRUE", "3.4e38", "1" * 400, "\t", "-0", "+5", "1_000"]  # fmt: skip


def _mutate_csv(rows: list[list[str]], rng: random.Random) -> list[list[str]]:
    rows = [list(r) for r in rows]
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(8)
        if len(rows) < 2:
            break
        r = rng.randrange(1, len(rows))
        if k in (1, 3, 4, 5) and len(rows[r]) < 6:
            k = 0
        if k == 0:  # ragged: a cell dropped or added
            if rng.random() < 0.5 and rows[r]:
                del rows[r][rng.randrange(len(rows[r]))]
            else:
                rows[r].append(rng.choice(ODD_CELLS))
        elif k == 1:  # an odd value in a channel
            rows[r][rng.randrange(3, len(rows[r]))] = rng.choice(ODD_CELLS)
        elif k == 2:  # a missing or renamed column
            j = rng.randrange(len(rows[0]))
            if rng.random() < 0.5:
                for row in rows:
                    if j < len(row):
                        del row[j]
            else:
                rows[0][j] = rng.choice(["", "label", "Sample", "ax", "x" * 50])
        elif k == 3:  # a label of another type, or a label change inside a sample
            rows[r][1] = rng.choice(["1", "1.5", "", "WALK", "🚶", "nan", "-1", "walk "])
        elif k == 4:  # split values
            rows[r][2] = rng.choice(["TEST", "valid", "", "train ", "test"])
        elif k == 5:  # sample ids out of order or reused
            rows[r][0] = rng.choice(["s0", "s7", "", "s3 ", "x"])
        elif k == 6:  # rows removed (a sample shorter than the others), blank lines
            del rows[r : r + rng.randint(1, 20)]
            if rng.random() < 0.5:
                rows.insert(rng.randrange(1, len(rows) + 1), [])
        else:  # huge magnitudes in a whole column
            j = rng.randrange(3, 6)
            v = rng.choice(["1e30", "1e-30", "3.4e38", "0"])
            for row in rows[1:]:
                if j < len(row):
                    row[j] = v
    return rows


def _csv_bytes(rows: list[list[str]], rng: random.Random) -> bytes:
    text = "\n".join(",".join(r) for r in rows) + ("\n" if rng.random() < 0.8 else "")
    k = rng.randrange(10)
    if k == 0:
        return codecs.BOM_UTF8 + text.encode()
    if k == 1:
        return text.encode("utf-16")
    if k == 2:
        return text.replace("\n", "\r\n").encode()
    if k == 3:
        return text.encode("latin-1", errors="replace") + b"\xe9\xff"
    if k == 4:
        return text.replace(",", ";").encode()
    return text.encode()


def fuzz_csv(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    from tinytrain.data import load_dataset

    good = _good_csv(rng)
    for i in range(n):
        f = tmp / f"c{i % 50}.csv"
        data = _csv_bytes(_mutate_csv(good, rng), rng)
        f.write_bytes(mutate(data, rng) if i % 4 == 3 else data)
        window = rng.choice([None, None, 8, 16, 17, 0])

        def load(f: Path = f, w: Any = window) -> None:
            load_dataset(f, input_shape=(3, 1, w or 16), input_scale=0.05, input_zero=0, window=w)

        run_case(c, "CSV series (dataset)", load, f)


# ---- .npz datasets --------------------------------------------------------------------------------------


def _good_npz(rng: random.Random) -> dict[str, np.ndarray]:
    r = np.random.default_rng(rng.randrange(2**32))
    return {
        "x": r.integers(-128, 128, (12, 3, 4, 4), dtype=np.int8),
        "y": np.arange(12) % 3,
        "x_test": r.integers(-128, 128, (6, 3, 4, 4), dtype=np.int8),
        "y_test": np.arange(6) % 3,
        "class_names": np.array(["a", "b", "c"]),
    }


def _mutate_npz_arrays(a: dict[str, np.ndarray], rng: random.Random) -> dict[str, Any]:
    a = dict(a)
    k = rng.randrange(7)
    key = rng.choice(sorted(a))
    if k <= 1:  # dtype / shape / values
        a[key] = random_array(rng, a[key])
    elif k == 2:  # an object array (np.savez pickles it; the loader must refuse, never unpickle)
        a[key] = np.array([1, "a", None, {"k": 1}], dtype=object)
    elif k == 3:
        del a[key]
    elif k == 4:
        a[rng.choice(["extra", "X", "labels"])] = np.zeros(3)
    elif k == 5:  # labels of another kind
        a[rng.choice(["y", "y_test"])] = rng.choice(
            [np.array(["a", "b"] * 6), np.full(12, np.nan), np.arange(12) - 5, np.arange(12) * 1000,
             np.zeros(0), np.arange(12).astype(np.float64) + 0.5, np.full(12, 2**40, np.int64)]
        )  # fmt: skip
    else:  # class names
        a["class_names"] = rng.choice(
            [np.array([]), np.array(["a"]), np.array(["a", "a", "b"]), np.arange(3)]
        )
    return a


def fuzz_npz(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    from tinytrain.data import load_dataset

    good = _good_npz(rng)
    buf = io.BytesIO()
    np.savez(buf, **good)
    raw = buf.getvalue()
    for i in range(n):
        f = tmp / f"d{i % 50}.npz"
        if i % 3 == 2:
            f.write_bytes(mutate(raw, rng))
        else:
            arrays = _mutate_npz_arrays(good, rng)
            if rng.random() < 0.3:
                arrays = _mutate_npz_arrays(arrays, rng)
            np.savez(f, **arrays)  # object arrays are written pickled (allow_pickle defaults on for saving)
        layout = rng.choice(["chw", "hwc"])

        def load(f: Path = f, lay: str = layout) -> None:
            load_dataset(f, input_shape=(3, 4, 4), input_scale=0.02, input_zero=-3, layout=lay)

        run_case(c, ".npz arrays (dataset)", load, f)


# ---- saved-state flash images (host reader) ---------------------------------------------------------------


def fuzz_state_images(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    """A flash image of two state slots, as the exported library writes it (tinytrain/export/state.py): the
    host's reader (split into slots, each slot's verdict as the device gives it, the newest valid slot, its
    tensors by the manifest's layout) fed images with flipped bytes, edited header words (magic, version,
    fingerprint, sequence, length, CRCs), torn writes (a slot partly erased to 0xFF) and the other slot's
    bytes. Flash images have a fixed size: mutations keep it. A case passes when the reader returns its
    verdicts and, for a valid slot, tensors equal to what was written; anything else is a finding."""
    from tinytrain.export import state as st

    layout = [
        {"name": "conv.weight", "dtype": "s8", "offset": 0, "bytes": 48, "shape": [4, 12]},
        {"name": "conv.bias", "dtype": "s32", "offset": 48, "bytes": 16, "shape": [4]},
        {"name": "head.w", "dtype": "f32", "offset": 64, "bytes": 32, "shape": [8]},
        {"name": "steps", "dtype": "u32", "offset": 96, "bytes": 4, "shape": [1]},
    ]
    state_bytes, slot_bytes, version, fp = 100, 256, 1, 0x1234_5678_9ABC_DEF0
    r = np.random.default_rng(rng.randrange(2**32))
    payloads = [r.integers(0, 256, state_bytes, dtype=np.uint8).tobytes() for _ in range(2)]

    def slot(seq: int, payload: bytes) -> bytes:
        body = st.header(version, fp, seq, payload) + payload
        return body + b"\xff" * (slot_bytes - len(body))

    good = slot(7, payloads[0]) + slot(8, payloads[1])

    def read(image: bytes) -> None:
        slots = [st.check_slot(p, version, fp, state_bytes) for p in st.split_image(image, slot_bytes)]
        i = st.newest(slots)
        if i is None:
            return
        params = st.params_from_state(slots[i].payload, layout)
        # a slot judged valid holds exactly what was written (a CRC collision would be a finding)
        assert slots[i].payload in payloads, "a corrupted slot was judged valid"
        assert params["conv.weight"].shape == (4, 12)

    for i in range(n):
        b = bytearray(good)
        k = i % 5
        if k == 0:
            b = bytearray(mutate(bytes(b), rng).ljust(len(good), b"\xff")[: len(good)])
        elif k == 1:  # header words of one slot
            base = rng.choice([0, slot_bytes])
            w = rng.randrange(8)
            struct.pack_into("<I", b, base + 4 * w, rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(2**32)]))
        elif k == 2:  # a torn write: a slot partly erased
            base = rng.choice([0, slot_bytes])
            a = base + rng.randrange(slot_bytes)
            b[a : base + slot_bytes] = b"\xff" * (base + slot_bytes - a)
        elif k == 3:  # bit flips in a payload
            for _ in range(rng.randint(1, 4)):
                j = rng.choice([0, slot_bytes]) + 32 + rng.randrange(state_bytes)
                b[j] ^= 1 << rng.randrange(8)
        else:  # a slot copied over the other, or erased, or a random sequence wrap
            if rng.random() < 0.5:
                b[slot_bytes:] = b[:slot_bytes]
            else:
                b[:slot_bytes] = b"\xff" * slot_bytes
        run_case(c, "saved-state flash image (host reader)", lambda d=bytes(b): read(d), None)


DATA_TARGETS: dict[str, Callable[[Campaign, Path, int, random.Random], None]] = {
    "images": fuzz_image_folders,
    "csv": fuzz_csv,
    "npz": fuzz_npz,
    "flashstate": fuzz_state_images,
}
