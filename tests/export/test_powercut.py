"""Persistence of the learned state: the slot format on the host, and power cuts in QEMU (a short campaign;
the Robot suite robot_tests/powercut.robot runs 200 cuts). A library broken on purpose (saving over the last
good slot) must be caught, so the campaign's zeros mean something."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import pytest

from tinytrain.cli import main as cli_main
from tinytrain.export import state as st
from tinytrain.export.config import ExportConfig, prepare
from tinytrain.export.powercut import cut_points, run_campaign

HAVE_TOOLS = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "gcc"))
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="arm toolchain / QEMU / host gcc not installed")
TINY = ExportConfig(model="mcunet-5fps", scheme="last", resolution=48, cpu="cortex-m4")


def test_slot_roundtrip_and_every_single_bit_flip_is_rejected() -> None:
    payload = bytes(range(256)) * 3
    fp = 0x0123456789ABCDEF
    img = st.header(1, fp, 5, payload) + payload
    ok = st.check_slot(img, 1, fp, len(payload))
    assert (ok.verdict, ok.sequence, ok.payload) == (st.VALID, 5, payload)
    for i in range(0, len(img), 7):
        for bit in (0, 3, 7):
            bad = bytearray(img)
            bad[i] ^= 1 << bit
            assert st.check_slot(bytes(bad), 1, fp, len(payload)).verdict != st.VALID, (i, bit)
    assert st.check_slot(b"\xff" * 64, 1, fp, 0).verdict == st.EMPTY
    assert st.check_slot(img, 2, fp, len(payload)).verdict == st.BAD_VERSION
    assert st.check_slot(img, 1, fp ^ 1, len(payload)).verdict == st.BAD_FINGERPRINT
    assert zlib.crc32(b"123456789") == 0xCBF43926  # the device's CRC-32 (tinytrain_crc32) is this one


def test_newest_slot_uses_serial_arithmetic() -> None:
    def valid(seq: int) -> st.Slot:
        return st.Slot(st.VALID, seq, b"x")

    assert st.newest([valid(1), valid(2)]) == 1
    assert st.newest([valid(0xFFFFFFFF), valid(0)]) == 1  # the counter wrapped
    assert st.newest([valid(3), st.Slot(st.BAD_CRC, 0, b"")]) == 0
    assert st.newest([st.Slot(st.EMPTY, 0, b""), st.Slot(st.EMPTY, 0, b"")]) is None


def test_cut_points_are_distinct_and_cover_the_end_of_the_window() -> None:
    pts = cut_points(6000, 200)
    assert len(pts) == 200 == len(set(pts)) and pts == sorted(pts)
    assert pts[0] >= 1 and pts[-1] == 6000 and 6000 - 9 in pts
    assert cut_points(5, 50) == [1, 2, 3, 4, 5]


@needs_tools
@pytest.mark.qemu
def test_short_campaign_loses_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--model", "mcunet-5fps", "--scheme", "last", "--resolution", "48", "--board", "m7"]
    rc = cli_main(["powercut", *args, "--cuts", "24", "--flips", "4", "--build-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.strip().splitlines()[-1] == "24 cuts: 0 lost, 0 corrupt loads"
    assert "4/4 slots rejected" in out and out.count("refused, built-in weights kept") == 2
    assert "new" in out and "previous" in out  # cuts landed both before and after the save took effect
    _same_cut_same_flash(tmp_path)
    _sequence_wraps(tmp_path)


def _sequence_wraps(build: Path) -> None:
    """Slot A at sequence 0xFFFFFFFF, slot B at 0 (it wrapped): the device loads B, then saves over A."""
    import json

    from emulation.powercut import run_until, symbol_address

    info = json.loads((build / "lib" / "tinytrain.json").read_text())
    n, fp = info["state_bytes"], int(info["fingerprint"], 16)
    slot_bytes = -(-(st.HEADER_BYTES + n) // 4096) * 4096
    d = build / "wrap"
    d.mkdir()
    states = []
    for k in range(2):
        payload = bytearray((build / "run" / "loaded.bin").read_bytes())
        payload[0:4] = (1000 + k).to_bytes(4, "little")  # step counters tell the two apart
        states.append(bytes(payload))
    image = b"".join(
        (st.header(info["state_format_version"], fp, seq, p) + p).ljust(slot_bytes, b"\xff")
        for seq, p in zip((0xFFFFFFFF, 0), states, strict=True)
    )
    (d / "flash.bin").write_bytes(image)
    elf = build / "bin" / "powercut.elf"
    r = run_until(elf, "m7", d, trigger=symbol_address(elf, "emu_erase"), after=0)
    assert r.status == "exited" and r.exit_code == 0
    load = next(e for e in r.events if e.get("ev") == "load")
    assert load["rc"] == 0 and load["steps"] == 1001 and (d / "loaded.bin").read_bytes() == states[1]
    after = [
        st.check_slot(p, info["state_format_version"], fp, n)
        for p in st.split_image((d / "flash.bin").read_bytes(), slot_bytes)
    ]
    assert after[0].sequence == 1 and after[1].sequence == 0 and after[1].payload == states[1]


def _same_cut_same_flash(build: Path) -> None:
    """The cut is deterministic: one instruction number, one flash image before -> one image after."""
    from emulation.powercut import run_until, symbol_address

    elf = build / "bin" / "powercut.elf"
    start = (build / "run" / "flash.bin").read_bytes()
    trigger, end = symbol_address(elf, "emu_erase"), symbol_address(elf, "tt_powercut_save_end")
    images, counts = [], []
    for k in range(2):
        d = build / f"again{k}"
        d.mkdir()
        (d / "flash.bin").write_bytes(start)
        r = run_until(elf, "m7", d, trigger=trigger, end=end, after=2000)
        assert r.status == "cut"
        images.append((d / "flash.bin").read_bytes())
        counts.append(r.count)
    assert images[0] == images[1] and images[0] != start and counts == [2000, 2000]


@needs_tools
@pytest.mark.qemu
def test_campaign_catches_a_save_over_the_last_good_slot(tmp_path: Path) -> None:
    """Break the A/B rule (save into the newest valid slot): a cut mid-save then loses the state."""

    def break_ab(files: dict[str, str | bytes]) -> None:
        src = str(files["src/tinytrain.c"])
        rule = "int target = newest < 0 ? 0 : 1 - newest;"
        assert rule in src
        files["src/tinytrain.c"] = src.replace(rule, "int target = newest < 0 ? 0 : newest;")

    camp = run_campaign(prepare(TINY), "m4", 12, 0, tmp_path, lambda _: None, patch=break_ab)
    assert camp.lost > 0 and not camp.ok


@needs_tools
@pytest.mark.qemu
def test_imported_model_with_minibatches_survives_cuts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An imported .tflite (its op kernels under src/ops/) with mini-batches: the saved state holds the
    gradient accumulators; cuts inside saves lose nothing."""
    from tinytrain import REPO_ROOT

    model = tmp_path / "sensor"
    assert (
        cli_main(["import", str(REPO_ROOT / "tests/models/data/sensor_conv1d.tflite"), "--out", str(model)])
        == 0
    )
    args = [
        "--model",
        str(model),
        "--scheme",
        "full",
        "--dataset",
        "sensor",
        "--accumulate",
        "2",
        "--board",
        "m4",
    ]
    rc = cli_main(["powercut", *args, "--cuts", "8", "--flips", "2", "--build-dir", str(tmp_path / "pc")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.strip().splitlines()[-1] == "8 cuts: 0 lost, 0 corrupt loads"
    assert "2/2 slots rejected" in out
