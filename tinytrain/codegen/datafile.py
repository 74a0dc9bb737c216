"""The packed dataset/job file the training app reads through a `tt_source`
(firmware/app/train/tt_dataset.h): samples, labels, the host-decided training order and the
per-step learning rates, so the device and the host reference see exactly the same stream."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinytrain import TinytrainError

MAGIC = 0x53445454  # "TTDS"
VERSION = 1
HEADER = struct.Struct("<16I")  # tt_dataset_header: 16 uint32 = 64 bytes

EVAL_BEFORE = 0x1
EVAL_AFTER = 0x2
DUMP_PARAMS = 0x4
TEST_PREDS = 0x8
PROFILE_CALLS = 0x10  # the first step runs tt_train_step_calls: one phase per kernel call (per-layer counts)


@dataclass
class TrainingJob:
    """What the device does: train on `x_train[order[i]]` with `lr[i]` at step i, test on `x_test`."""

    x_train: np.ndarray  # int8 [N, H, W, C]
    y_train: np.ndarray  # labels [N]
    x_test: np.ndarray  # int8 [M, H, W, C]
    y_test: np.ndarray  # labels [M]
    order: np.ndarray  # uint32 [steps]: index into the train split at each step
    lr: np.ndarray  # float32 [steps]
    num_classes: int
    rng_seed: int = 0x2545F491
    flags: int = EVAL_BEFORE | EVAL_AFTER | TEST_PREDS
    meta: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return int(len(self.order))

    @property
    def sample_bytes(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    def samples(self) -> list[tuple[np.ndarray, int, float]]:
        """The training stream (sample HWC int8, label, lr) in step order."""
        return [
            (self.x_train[int(i)], int(self.y_train[int(i)]), float(self.lr[k]))
            for k, i in enumerate(self.order)
        ]


def make_order(n_train: int, steps: int, seed: int) -> np.ndarray:
    """Epochs over the train split, each a fresh permutation from `seed`, cut to `steps`."""
    if n_train <= 0:
        raise TinytrainError("the train split is empty")
    rng = np.random.default_rng(seed)
    epochs = -(-steps // n_train)
    return np.concatenate([rng.permutation(n_train) for _ in range(max(epochs, 1))])[:steps].astype(np.uint32)


def pack(job: TrainingJob) -> bytes:
    """The bytes of dataset.bin."""
    xs, xt = np.ascontiguousarray(job.x_train, np.int8), np.ascontiguousarray(job.x_test, np.int8)
    if xs.shape[1:] != xt.shape[1:]:
        raise TinytrainError(f"train samples {xs.shape[1:]} and test samples {xt.shape[1:]} differ in shape")
    for name, y in (("train", job.y_train), ("test", job.y_test)):
        if len(y) and (int(np.min(y)) < 0 or int(np.max(y)) >= job.num_classes or job.num_classes > 255):
            raise TinytrainError(f"{name} labels must lie in [0, {job.num_classes})")
    if len(job.order) and int(np.max(job.order)) >= len(xs):
        raise TinytrainError("training order indexes past the train split")
    if len(job.lr) != len(job.order):
        raise TinytrainError("one learning rate per step is needed")
    parts = [
        xs.tobytes(),
        np.asarray(job.y_train, np.uint8).tobytes(),
        xt.tobytes(),
        np.asarray(job.y_test, np.uint8).tobytes(),
        np.asarray(job.order, "<u4").tobytes(),
        np.asarray(job.lr, "<f4").tobytes(),
    ]
    offsets, off = [], HEADER.size
    for p in parts:
        off = (off + 3) // 4 * 4
        offsets.append(off)
        off += len(p)
    header = HEADER.pack(
        MAGIC,
        VERSION,
        job.sample_bytes,
        job.num_classes,
        len(xs),
        len(xt),
        job.steps,
        job.rng_seed & 0xFFFFFFFF,
        job.flags,
        *offsets,
        0,
    )
    out = bytearray(header)
    for o, p in zip(offsets, parts, strict=True):
        out += bytes(o - len(out))
        out += p
    return bytes(out)


def check_image(data: bytes, what: str = "dataset image") -> tuple[int, ...]:
    """The header of a packed dataset if it is one the device accepts whole (tt_dataset.h's
    `tt_dataset_layout_ok` with the image's size: every region in order, inside the bytes); else
    TinytrainError naming the field. Returns the 16 header words."""
    if len(data) < HEADER.size:
        raise TinytrainError(f"{what}: {len(data)} bytes, shorter than the {HEADER.size}-byte header")
    h = HEADER.unpack_from(data, 0)
    magic, version, sample_bytes, num_classes, n_train, n_test, n_steps = h[:7]
    if magic != MAGIC or version != VERSION:
        raise TinytrainError(f"{what}: not a tinytrain dataset (magic {magic:#x}, version {version})")
    if sample_bytes == 0 or num_classes == 0:
        raise TinytrainError(f"{what}: header has sample_bytes {sample_bytes}, num_classes {num_classes}")
    off = dict(zip(("train", "train_labels", "test", "test_labels", "order", "lr"), h[9:15], strict=True))
    ends = {
        "train": off["train"] + n_train * sample_bytes,
        "train_labels": off["train_labels"] + n_train,
        "test": off["test"] + n_test * sample_bytes,
        "test_labels": off["test_labels"] + n_test,
        "order": off["order"] + 4 * n_steps,
        "lr": off["lr"] + 4 * n_steps,
    }
    start = HEADER.size
    for name in off:
        if off[name] < start:
            raise TinytrainError(f"{what}: region {name} at byte {off[name]} overlaps what precedes it")
        start = ends[name]
    if ends["lr"] > len(data):
        raise TinytrainError(f"{what}: its regions end at byte {ends['lr']}, past its {len(data)} bytes")
    return h


def write(job: TrainingJob, path: str | Path) -> Path:
    p = Path(path)
    p.write_bytes(pack(job))
    return p


def blob_c(job: TrainingJob) -> str:
    """dataset_blob.c for the flash source (source_flash.c): the same bytes as a const array in .rodata."""
    data = pack(job)
    check_image(data, "the packed dataset for the flash source")  # what the device checks, before building
    return blob_source(data)


def blob_source(data: bytes) -> str:
    """dataset_blob.c holding `data` as is (tt_dataset_blob[] and tt_dataset_blob_size, which
    source_flash.c bounds every read by)."""
    lines = [",".join(str(b) for b in data[i : i + 32]) for i in range(0, len(data), 32)]
    body = ",\n  ".join(lines)
    return (
        "/* Generated by tinytrain.codegen.datafile: the packed dataset for source_flash.c. */\n"
        "#include <stdint.h>\n\n"
        f"const uint8_t tt_dataset_blob[{max(len(data), 1)}] __attribute__((aligned(8))) = {{\n  {body}\n"
        "};\n"
        f"const uint32_t tt_dataset_blob_size = {len(data)}u;\n"
    )
