"""The saved-state slot format (firmware/export/tinytrain.c) on the host: parse a flash image, check a slot
the way the device does, and write headers (to craft another model's or format's state in tests)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

from tinytrain import TinytrainError

MAGIC = 0x4C535454  # "TTSL"
HEADER = struct.Struct("<8I")
HEADER_BYTES = HEADER.size  # 32

# verdicts, as TINYTRAIN_SLOT_* in tinytrain.h
VALID, EMPTY, BAD_HEADER, BAD_VERSION, BAD_FINGERPRINT, BAD_LENGTH, BAD_CRC = range(7)
VERDICTS = ("valid", "empty", "bad header", "bad version", "bad fingerprint", "bad length", "bad crc")


@dataclass
class Slot:
    verdict: int
    sequence: int
    payload: bytes  # the state bytes when valid, else b""


def header(version: int, fingerprint: int, sequence: int, payload: bytes) -> bytes:
    words = [
        MAGIC,
        version,
        fingerprint & 0xFFFFFFFF,
        fingerprint >> 32,
        sequence,
        len(payload),
        zlib.crc32(payload),
    ]
    head = struct.pack("<7I", *words)
    return head + struct.pack("<I", zlib.crc32(head))


def check_slot(data: bytes, version: int, fingerprint: int, state_bytes: int) -> Slot:
    """The device's verdict on one slot's bytes."""
    w = HEADER.unpack_from(data, 0)
    if all(v == 0xFFFFFFFF for v in w):
        return Slot(EMPTY, 0, b"")
    if w[0] != MAGIC or zlib.crc32(data[:28]) != w[7]:
        return Slot(BAD_HEADER, 0, b"")
    if w[1] != version:
        return Slot(BAD_VERSION, 0, b"")
    if (w[2] | (w[3] << 32)) != fingerprint:
        return Slot(BAD_FINGERPRINT, 0, b"")
    if w[5] != state_bytes:
        return Slot(BAD_LENGTH, 0, b"")
    payload = bytes(data[HEADER_BYTES : HEADER_BYTES + state_bytes])
    if zlib.crc32(payload) != w[6]:
        return Slot(BAD_CRC, 0, b"")
    return Slot(VALID, w[4], payload)


def newest(slots: list[Slot]) -> int | None:
    """Index of the newest valid slot (serial-number order, as the device), None when none is valid."""
    ok = [i for i, s in enumerate(slots) if s.verdict == VALID]
    if len(ok) == 2:
        d = (slots[1].sequence - slots[0].sequence) & 0xFFFFFFFF
        return 1 if 0 < d < 0x80000000 else 0
    return ok[0] if ok else None


def split_image(image: bytes, slot_bytes: int, name: str = "flash image") -> list[bytes]:
    """The two slots of a flash image; TinytrainError (one line, naming `name`) when it is not 2 slots."""
    if len(image) != 2 * slot_bytes:
        raise TinytrainError(
            f"{name}: {len(image):,} bytes, but a flash image of this library is two slots of "
            f"{slot_bytes:,} bytes ({2 * slot_bytes:,}); was it written by another export?"
        )
    return [image[:slot_bytes], image[slot_bytes:]]


def params_from_state(payload: bytes, layout: list[dict[str, Any]]) -> dict[str, Any]:
    """The trainable tensors of a saved state (a slot's payload or a loaded.bin dump) by buffer name, from
    the export manifest's `state_layout` (tinytrain.json); `steps` and `rng` as 1-element arrays."""
    import numpy as np

    dtypes = {"s8": np.int8, "u8": np.uint8, "s32": np.int32, "f32": np.float32, "u32": np.uint32}
    end = max(int(e["offset"]) + int(e["bytes"]) for e in layout)
    if len(payload) != end:
        raise ValueError(f"state has {len(payload)} bytes, the layout {end}")
    out = {}
    for e in layout:
        arr = np.frombuffer(
            payload,
            dtypes[e["dtype"]],
            int(e["bytes"]) // np.dtype(dtypes[e["dtype"]]).itemsize,
            int(e["offset"]),
        )
        out[e["name"]] = arr.reshape(e.get("shape", [-1])).copy()
    return out
