"""The exported library's learned-state loader (firmware/export/tinytrain.c, `tinytrain_load`) on the host,
built from an exported folder's own sources under AddressSanitizer + UndefinedBehaviorSanitizer
(state_loader_harness.c), fed mutated flash images: byte edits, header words rewritten with and without a
valid header CRC (so the version, fingerprint, length and payload checks are reached), payloads edited
with and without a matching CRC, torn writes, erased and copied slots, sequence numbers around the wrap.

Each case is checked against the host's reader (tinytrain/export/state.py, a second implementation):
the two slot verdicts equal, the return code is the one the header documents for them, and the live
state after the load is the newest valid slot's payload, or the built-in state untouched when the load
refuses. No sanitizer report, no crash, for any case."""

from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tinytrain.export import state as st
from tinytrain.export.config import STATE_FORMAT_VERSION, ExportConfig

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")

HARNESS = Path(__file__).with_name("state_loader_harness.c")
SLOT_BYTES = 512  # >= TINYTRAIN_SLOT_MIN_BYTES of the exported model below (32 + 336)
CASES = 800
SAN_REPORT = ("ERROR: AddressSanitizer", "runtime error:", "SUMMARY: UndefinedBehavior")
# tinytrain.h's load codes
OK, NO_STATE, FINGERPRINT, VERSION, CORRUPT = 0, -7, -8, -9, -10


def _lib_sources(folder: Path) -> list[str]:
    """The library's translation units, as its Makefile lists them (LIB_SRCS)."""
    text = (folder / "Makefile").read_text()
    block = re.search(r"^LIB_SRCS := (.*?)(?:\n(?!  )|\Z)", text, re.S | re.M)
    assert block, "LIB_SRCS not found in the exported Makefile"
    return re.findall(r"(src/\S+\.c)", block.group(1))


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, Path]:
    """(the sanitized harness, the library's fingerprint, a flash image with two valid slots)."""
    from tinytrain.export.bundle import export_library

    tmp = tmp_path_factory.mktemp("state-loader")
    folder = tmp / "lib"
    export_library(ExportConfig(model="mcunet-5fps", scheme="last", resolution=48, cpu="cortex-m4"), folder)
    header = (folder / "include" / "tinytrain.h").read_text()
    lo, hi = (
        int(re.search(rf"#define TINYTRAIN_FINGERPRINT_{k} (0x[0-9a-f]+)u", header).group(1), 16)  # type: ignore[union-attr]
        for k in ("LO", "HI")
    )
    exe = tmp / "harness"
    cmd = [
        "gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
        "-fno-omit-frame-pointer", "-std=gnu11", "-ffp-contract=off", "-DTT_NO_PHASE_COUNTERS",
        f"-DSLOT_BYTES={SLOT_BYTES}", "-Iinclude", "-Isrc", str(HARNESS), *_lib_sources(folder), "-lm",
        "-o", str(exe),
    ]  # fmt: skip
    subprocess.run(cmd, cwd=folder, check=True, capture_output=True, text=True)
    good = tmp / "good.bin"
    subprocess.run([str(exe), "save", str(good)], check=True, capture_output=True, timeout=60)
    return exe, lo | (hi << 32), good


def _resign(b: bytearray, base: int) -> None:
    """A valid header CRC over the (edited) first 28 bytes of the slot at `base`."""
    struct.pack_into("<I", b, base + 28, zlib.crc32(bytes(b[base : base + 28])))


def _mutations(good: bytes, n: int, rng: random.Random) -> list[bytes]:
    from .fuzz import mutate

    state_bytes = struct.unpack_from("<I", good, 20)[0]
    out = [b"\xff" * len(good)]  # both erased: the built-in state's reference
    for i in range(n):
        b = bytearray(good)
        base = rng.choice([0, SLOT_BYTES])
        k = i % 8
        if k == 0:  # byte-level edits, the size kept
            b = bytearray(mutate(bytes(b), rng).ljust(len(good), b"\xff")[: len(good)])
        elif k == 1:  # a header word, header CRC left as it was
            struct.pack_into("<I", b, base + 4 * rng.randrange(8), rng.randrange(2**32))
        elif (
            k == 2
        ):  # a header word with a valid header CRC (one slot or both): the deeper checks are reached
            w = rng.choice([1, 2, 3, 4, 5, 6])
            picks = [0, 1, 2, state_bytes - 1, state_bytes + 1, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(2**32)]
            for bb in [base] if rng.random() < 0.5 else [0, SLOT_BYTES]:
                struct.pack_into("<I", b, bb + 4 * w, rng.choice(picks))
                _resign(b, bb)
        elif k == 3:  # a payload edited, its CRC and the header re-signed: a valid slot with new contents
            for _ in range(rng.randint(1, 8)):
                b[base + 32 + rng.randrange(state_bytes)] = rng.randrange(256)
            struct.pack_into("<I", b, base + 24, zlib.crc32(bytes(b[base + 32 : base + 32 + state_bytes])))
            _resign(b, base)
        elif k == 4:  # bit flips in a payload (CRC not fixed)
            for _ in range(rng.randint(1, 4)):
                b[base + 32 + rng.randrange(state_bytes)] ^= 1 << rng.randrange(8)
        elif k == 5:  # a torn write: the slot erased from a random point on
            a = base + rng.randrange(SLOT_BYTES)
            b[a : base + SLOT_BYTES] = b"\xff" * (base + SLOT_BYTES - a)
        elif k == 6:  # sequence numbers around the wrap, both slots valid
            s0 = rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, rng.randrange(2**32)])
            for bb, s in ((0, s0), (SLOT_BYTES, (s0 + rng.choice([1, -1, 0x80000000, 2])) & 0xFFFFFFFF)):
                struct.pack_into("<I", b, bb + 16, s)
                _resign(b, bb)
        else:  # one slot copied over the other, or erased
            if rng.random() < 0.5:
                b[SLOT_BYTES:] = b[:SLOT_BYTES]
            else:
                b[base : base + SLOT_BYTES] = b"\xff" * SLOT_BYTES
        out.append(bytes(b))
    return out


def _expected(image: bytes, fingerprint: int, state_bytes: int) -> tuple[int, list[int], int | None]:
    slots = [
        st.check_slot(p, STATE_FORMAT_VERSION, fingerprint, state_bytes)
        for p in st.split_image(image, SLOT_BYTES)
    ]
    verdicts = [s.verdict for s in slots]
    i = st.newest(slots)
    if i is not None:
        return OK, verdicts, zlib.crc32(slots[i].payload)
    if verdicts == [st.EMPTY, st.EMPTY]:
        return NO_STATE, verdicts, None
    if st.BAD_FINGERPRINT in verdicts:
        return FINGERPRINT, verdicts, None
    if st.BAD_VERSION in verdicts:
        return VERSION, verdicts, None
    return CORRUPT, verdicts, None


def test_the_loader_agrees_with_the_host_reader_on_mutated_images(harness, tmp_path: Path) -> None:
    exe, fingerprint, good_path = harness
    good = good_path.read_bytes()
    state_bytes = struct.unpack_from("<I", good, 20)[0]
    images = _mutations(good, CASES, random.Random(0))
    paths = []
    for j, img in enumerate(images):
        p = tmp_path / f"{j:04d}.bin"
        p.write_bytes(img)
        paths.append(str(p))
    run = subprocess.run([str(exe), "load", *paths], capture_output=True, text=True, timeout=300)
    assert not any(s in run.stderr for s in SAN_REPORT), run.stderr[-3000:]
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert len(lines) == len(images)
    builtin = int(lines[0].split()[3], 16)  # both slots erased: NO_STATE, the built-in state
    assert lines[0].split()[:3] == [str(NO_STATE), str(st.EMPTY), str(st.EMPTY)]
    kinds: dict[int, int] = {}
    verdicts: set[int] = set()
    for j, (img, line) in enumerate(zip(images, lines, strict=True)):
        rc, v0, v1, crc = line.split()
        want_rc, want_v, want_crc = _expected(img, fingerprint, state_bytes)
        assert [int(v0), int(v1)] == want_v, f"case {j}: verdicts {v0} {v1}, the host reader {want_v}"
        assert int(rc) == want_rc, f"case {j}: load returned {rc}, expected {want_rc}"
        # a refused load leaves the built-in state; an accepted one holds exactly the newest valid payload
        assert int(crc, 16) == (builtin if want_crc is None else want_crc), f"case {j}"
        kinds[want_rc] = kinds.get(want_rc, 0) + 1
        verdicts.update(want_v)
    assert set(kinds) == {OK, NO_STATE, FINGERPRINT, VERSION, CORRUPT}, kinds  # every outcome reached
    assert verdicts == set(range(len(st.VERDICTS))), verdicts  # and every slot verdict
