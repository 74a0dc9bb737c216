"""`tinytrain powercut`: fault injection on the learned-state persistence of an exported library.

The firmware (firmware/export/powercut/main.c) is the exported library + the emulated flash driver + a main
that, at every boot, loads the newest valid slot, dumps what it loaded (loaded.bin), trains one step, dumps
the state it is about to save (pending.bin) and saves it. The campaign:

1. boot 0 on an erased flash: nothing to load; it saves; the plugin measures the save window W;
2. cut i = 1..N: boot with the power cut at the i-th of N different instruction numbers of the save window
   (`cut_points`: evenly spread, the last N/20 at the very end of the window). The window runs from the save's
   first erase (`emu_erase`) to its return (`tt_powercut_save_end`): the slot scan before it only reads, and
   the written part is the same length at every boot. The next boot's loaded.bin must equal, bit for bit, the
   cut boot's loaded.bin (the save was lost: the previous state) or its pending.bin (the save completed).
   Anything else is "lost" (an older or no state: the last good state is gone) or a "corrupt load" (bytes
   that are no state any boot saved). A boot that was not cut must be followed by its new state;
3. bit flips: one bit of the newest slot's header or payload flipped in flash.bin; the next boot must reject
   that slot and load the other slot's state exactly;
4. refusals: both slots rewritten as another model's (fingerprint) and another format version's state, with
   valid CRCs: the boot must return TINYTRAIN_ERR_FINGERPRINT / _VERSION and keep the built-in weights.

Last line: `N cuts: X lost, Y corrupt loads`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinytrain import FIRMWARE_DIR, REPO_ROOT, TinytrainError
from tinytrain.export import state as st
from tinytrain.export.bundle import render_library, write_folder
from tinytrain.export.config import STATE_FORMAT_VERSION, ExportConfig, Prepared, prepare

POWERCUT_MAIN = FIRMWARE_DIR / "export" / "powercut" / "main.c"
SECTOR = 4096  # EMU_SECTOR_BYTES
ERR_NO_STATE, ERR_FINGERPRINT, ERR_VERSION = -7, -8, -9

Say = Callable[[str], None]


@dataclass
class Firmware:
    elf: Path
    board: str
    state_bytes: int
    slot_bytes: int
    fingerprint: int
    bytes_per_save: int
    trigger: int
    end: int


@dataclass
class Campaign:
    cuts: int = 0
    lost: int = 0
    corrupt: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # "previous" / "new" per cut
    flips: int = 0
    flips_rejected: int = 0
    refusals: dict[str, bool] = field(default_factory=dict)
    window: int = 0
    runs: int = 0
    seconds: float = 0.0  # the whole campaign, build included
    boot_seconds: float = 0.0  # the QEMU boots only
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.corrupt == 0
            and self.flips_rejected == self.flips
            and all(self.refusals.values())
            and not self.problems
        )


def cut_points(window: int, cuts: int) -> list[int]:
    """`cuts` distinct instruction numbers in the save window [1, window]: evenly spread, plus the last few
    instructions of the window (after the header's final write: the save has completed, the cut must keep
    the new state). Fewer when the window is shorter than `cuts`."""
    tail = min(max(1, cuts // 20), window)
    spread = cuts - tail
    pts = [1 + ((2 * i + 1) * (window - tail)) // (2 * spread) for i in range(spread)] if spread else []
    pts += list(range(window - tail + 1, window + 1))
    return sorted(set(pts))


Patch = Callable[[dict[str, str | bytes]], None]


def build(prep: Prepared, board: str, build_dir: Path, patch: Patch | None = None) -> Firmware:
    """The power-cut firmware for `board` from the exported library's files (`patch` may edit them first:
    the tests break the library on purpose to show the campaign notices)."""
    from emulation.build import build_firmware
    from emulation.powercut import symbol_address

    files = render_library(prep)
    if patch is not None:
        patch(files)
    lib = build_dir / "lib"
    write_folder(files, lib, force=True)
    info = json.loads(str(files["tinytrain.json"]))
    sources = [
        *(lib / f for f in info["lib_sources"]),  # src/ and src/ops/: only what the model uses
        lib / "board" / "flash_emulated.c",
        lib / "example" / "example_data.c",
        POWERCUT_MAIN,
    ]
    res = build_firmware(
        board,
        sources,
        include_dirs=[lib / "include", lib / "src", lib / "example", lib / "board"],
        out_dir=build_dir / "bin",
        defines={"TT_NO_PHASE_COUNTERS": None},
        name="powercut",
    )
    slot = -(-(st.HEADER_BYTES + info["state_bytes"]) // SECTOR) * SECTOR
    return Firmware(
        elf=res.elf,
        board=board,
        state_bytes=int(info["state_bytes"]),
        slot_bytes=slot,
        fingerprint=int(info["fingerprint"], 16),
        bytes_per_save=int(info["bytes_per_save"]),
        trigger=symbol_address(res.elf, "emu_erase"),
        end=symbol_address(res.elf, "tt_powercut_save_end"),
    )


class Device:
    """Boots of the power-cut firmware in one run directory (flash.bin persists between boots)."""

    def __init__(self, fw: Firmware, run_dir: Path, timeout: float) -> None:
        self.fw, self.dir, self.timeout = fw, run_dir, timeout
        self.runs = 0
        self.seconds = 0.0

    def boot(self, after: int = 0) -> dict[str, Any]:
        from emulation.powercut import run_until

        t0 = time.perf_counter()
        for name in ("loaded.bin", "pending.bin"):
            (self.dir / name).unlink(missing_ok=True)
        r = run_until(
            self.fw.elf,
            self.fw.board,
            self.dir,
            trigger=self.fw.trigger,
            end=self.fw.end,
            after=after,
            timeout=self.timeout,
        )
        self.runs += 1
        self.seconds += time.perf_counter() - t0
        if r.status == "timeout":
            raise TinytrainError(
                f"the power-cut firmware did not finish in {self.timeout:.0f} s:\n{r.uart[-2000:]}"
            )
        load = next((e for e in r.events if e.get("ev") == "load"), None)
        if load is None or not (self.dir / "loaded.bin").exists():
            raise TinytrainError(
                f"the power-cut firmware did not reach its load (status {r.status}):\n{r.uart[-2000:]}"
            )
        if r.status == "exited" and r.exit_code != 0:
            raise TinytrainError(f"the power-cut firmware failed (exit {r.exit_code}):\n{r.uart[-2000:]}")
        return {
            "status": r.status,
            "window": r.window,
            "load": load,
            "loaded": (self.dir / "loaded.bin").read_bytes(),
            "pending": (self.dir / "pending.bin").read_bytes()
            if (self.dir / "pending.bin").exists()
            else None,
            "saved": next((e for e in r.events if e.get("ev") == "saved"), None),
        }

    @property
    def image_path(self) -> Path:
        return self.dir / "flash.bin"

    def slots(self) -> list[st.Slot]:
        parts = st.split_image(self.image_path.read_bytes(), self.fw.slot_bytes, str(self.image_path))
        return [
            st.check_slot(p, STATE_FORMAT_VERSION, self.fw.fingerprint, self.fw.state_bytes) for p in parts
        ]


def run_campaign(
    prep: Prepared,
    board: str,
    cuts: int,
    flips: int,
    build_dir: Path,
    say: Say,
    timeout: float = 120.0,
    patch: Patch | None = None,
) -> Campaign:
    if cuts < 1:
        raise TinytrainError("--cuts must be at least 1")
    if flips < 0:
        raise TinytrainError("--flips must be >= 0")
    t0 = time.perf_counter()
    fw = build(prep, board, build_dir, patch)
    run_dir = build_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = Device(fw, run_dir, timeout)
    dev.image_path.unlink(missing_ok=True)
    camp = Campaign(cuts=cuts)

    first = dev.boot()
    if first["load"]["rc"] != ERR_NO_STATE:
        camp.problems.append(f"an erased flash loaded with rc {first['load']['rc']}, expected {ERR_NO_STATE}")
    builtin = first["loaded"]
    window = int(first["window"] or 0)
    if window <= 0:
        raise TinytrainError("the save window was not measured (tt_powercut_save_end never ran)")
    camp.window = window
    say(
        f"powercut: {prep.program.model} scheme {prep.cfg.scheme} on {board}: state {fw.state_bytes:,} B, "
        f"{fw.bytes_per_save:,} B written per save (+ 1 erase of a {fw.slot_bytes:,}-B slot); "
        f"save window {window:,} instructions"
    )
    known = {builtin, first["pending"]}
    prev = first
    points = cut_points(window, cuts)
    camp.cuts = len(points)
    for i, at in enumerate(points):
        cur = dev.boot(after=at)
        _judge(camp, prev, cur, known, builtin, label=f"after the boot before cut {i + 1}")
        known.add(cur["pending"])
        prev = {**cur, "cut_at": at}
    last = dev.boot()  # checks the last cut
    _judge(camp, prev, last, known, builtin, label=f"after cut {len(points)}")
    known.add(last["pending"])

    for f in range(flips):
        slots = dev.slots()
        s = st.newest(slots)
        other = 1 - s if s is not None else None
        if s is None or other is None or slots[other].verdict != st.VALID:
            dev.boot()  # make both slots valid first
            slots = dev.slots()
            s = st.newest(slots)
            if s is None:
                camp.problems.append("no valid slot to flip a bit in")
                break
            other = 1 - s
        span = st.HEADER_BYTES + fw.state_bytes
        byte = (f * 7919 + 3) % span
        bit = (f * 5) % 8
        image = bytearray(dev.image_path.read_bytes())
        image[s * fw.slot_bytes + byte] ^= 1 << bit
        dev.image_path.write_bytes(bytes(image))
        camp.flips += 1
        r = dev.boot()
        verdicts = [v for v, _ in r["load"]["slots"]]
        if verdicts[s] != st.VALID and r["load"]["rc"] == 0 and r["loaded"] == slots[other].payload:
            camp.flips_rejected += 1
        else:
            where = "header" if byte < st.HEADER_BYTES else "payload"
            camp.problems.append(
                f"bit {bit} of {where} byte {byte} flipped in slot {s}: not rejected cleanly"
            )

    for kind, expected in (("fingerprint", ERR_FINGERPRINT), ("version", ERR_VERSION)):
        payload = next((sl.payload for sl in dev.slots() if sl.verdict == st.VALID), builtin)
        fp = fw.fingerprint ^ 0x1 if kind == "fingerprint" else fw.fingerprint
        ver = STATE_FORMAT_VERSION + 1 if kind == "version" else STATE_FORMAT_VERSION
        slot_img = st.header(ver, fp, 7, payload) + payload
        slot_img += b"\xff" * (fw.slot_bytes - len(slot_img))
        dev.image_path.write_bytes(slot_img * 2)
        r = dev.boot()
        camp.refusals[kind] = r["load"]["rc"] == expected and r["loaded"] == builtin

    camp.runs = dev.runs
    camp.boot_seconds = dev.seconds
    camp.seconds = time.perf_counter() - t0
    return camp


def _judge(
    camp: Campaign, prev: dict[str, Any], cur: dict[str, Any], known: set[bytes], builtin: bytes, label: str
) -> None:
    loaded, rc = cur["loaded"], cur["load"]["rc"]
    was_cut = prev.get("status") == "cut"
    if rc == 0 and loaded == prev["pending"]:
        outcome = "new"
    elif was_cut and rc == 0 and loaded == prev["loaded"] and prev["loaded"] != builtin:
        outcome = "previous"
    elif was_cut and prev["loaded"] == builtin and loaded == builtin and rc == ERR_NO_STATE:
        outcome = "previous"  # the very first save was cut: still nothing saved, as before
    elif loaded in known:
        outcome = "lost"
    else:
        outcome = "corrupt"
    if "cut_at" in prev or was_cut:
        camp.outcomes[outcome] = camp.outcomes.get(outcome, 0) + 1
    if outcome == "lost":
        camp.lost += 1
        camp.problems.append(f"{label}: the boot loaded an older state (rc {rc})")
    elif outcome == "corrupt":
        camp.corrupt += 1
        camp.problems.append(f"{label}: the boot loaded bytes that no boot saved (rc {rc})")


def powercut(
    cfg: ExportConfig, board: str, cuts: int, flips: int, say: Say, build_dir: Path | None = None
) -> Campaign:
    """Prepare, build and run a campaign in `build_dir` (default build/powercut/<job>). A second campaign on
    the same directory waits for the first (a lock file beside it): they would share flash.bin."""
    import fcntl

    if cuts < 1:
        raise TinytrainError("--cuts must be at least 1")
    if flips < 0:
        raise TinytrainError("--flips must be >= 0")
    prep = prepare(cfg)
    res = f"r{cfg.model_resolution}" if cfg.model_resolution else "own"
    batch = f"-acc{cfg.accumulate}" if cfg.accumulate > 1 else ""
    job = f"{Path(cfg.model).name}-{Path(cfg.scheme).name.replace(':', '-')}-{res}{batch}-{board}".replace(
        "/", "_"
    )
    d = build_dir or (REPO_ROOT / "build" / "powercut" / job)
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(d.parent / f"{d.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another campaign is using {d}; waiting for it ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return run_campaign(prep, board, cuts, flips, d, say)
