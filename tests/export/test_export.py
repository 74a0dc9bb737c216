"""`tinytrain export`: the folder builds outside the repository with only the Arm toolchain (make and CMake,
PATH=/usr/bin:/bin, no project Python) and `make qemu` reproduces the host reference's losses bit for bit on
m4 and m7; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.export.standalone import HAVE_TOOLS, STEP, needs_tools
from tests.export.standalone import bits as _bits
from tests.export.standalone import run as _run
from tinytrain import REPO_ROOT
from tinytrain.cli import main as cli_main
from tinytrain.export import save_model
from tinytrain.export import state as st
from tinytrain.export.config import ExportConfig, Prepared, prepare
from tinytrain.models import load_model
from tinytrain.reference import infer

TINY = ["--model", "mcunet-5fps", "--scheme", "last", "--resolution", "48", "--steps", "3"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "lib"
    measure = ["--measure"] if HAVE_TOOLS else []
    assert cli_main(["export", *TINY, "--cpu", "cortex-m4", "--out", str(out), *measure]) == 0
    return out


def test_folder_is_self_contained(exported: Path) -> None:
    files = {str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file()}
    assert {"include/tinytrain.h", "src/model.c", "src/tinytrain.c", "Makefile", "CMakeLists.txt"} <= files
    assert {"cmake/arm-none-eabi.cmake", "example/main.c", "README.md", "port/flash_stm32_hal.c"} <= files
    # only the runtime files the model uses: this scheme trains the classifier only (no backward kernels)
    assert "src/tt_backward.c" not in files and "src/tt_optim.c" not in files
    text = "\n".join((exported / f).read_text() for f in files if f.endswith((".c", ".h")))
    assert "malloc" not in text and "tt_arena[TT_ARENA_BYTES]" not in (exported / "src/model.c").read_text()
    assert str(REPO_ROOT) not in "\n".join((exported / f).read_text() for f in files)
    readme = (exported / "README.md").read_text()
    assert "predicted SRAM total" in readme and "20,000 saves" in readme
    measured = json.loads((exported / "tinytrain.json").read_text())["measured"]
    if not HAVE_TOOLS:
        assert measured is None and "Not measured at export" in readme
        return
    assert measured["board"] == "m4" and measured["instructions_per_step"] > 1_000_000
    assert f"{measured['instructions_per_step']:,} instructions per training step" in readme
    assert "**Estimated** time per step" in readme


@needs_tools
@pytest.mark.qemu
def test_standalone_make_and_cmake_match_the_host_reference(exported: Path, tmp_path: Path) -> None:
    work = tmp_path / "copied"
    shutil.copytree(exported, work)
    ref = prepare(ExportConfig(model="mcunet-5fps", scheme="last", resolution=48, steps=3), check_fit=False)
    want = [_bits(v) for v in ref.check.losses]
    for board in ("m4", "m7"):
        proc = _run(["make", f"BOARD={board}", "qemu"], work)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        steps = STEP.findall(proc.stdout)
        assert [s[3] for s in steps] == want, proc.stdout
        assert [int(s[2]) for s in steps] == ref.check.labels
        assert "self-check: PASS" in proc.stdout
        if board == "m4":
            _device_state_back_out(work, ref, tmp_path / "adapted")
        # the second boot finds the state the first one saved (flash.bin kept in build/<board>/)
        again = _run(["make", f"BOARD={board}", "qemu"], work)
        assert again.returncode == 0 and "boot: loaded the learned state from flash (step 3)" in again.stdout
    build = work / "cbuild"
    cfg = _run(
        [
            "cmake",
            "-S",
            ".",
            "-B",
            str(build),
            "-DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake",
            "-DTINYTRAIN_BOARD=m7",
        ],
        work,
    )
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    run = _run(["cmake", "--build", str(build), "--target", "qemu"], work)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [s[3] for s in STEP.findall(run.stdout)] == want


def _device_state_back_out(work: Path, ref: Prepared, out: Path) -> None:
    """The state the device saved to its (emulated) flash, parsed on the host and written as a model
    directory: the host reference's inference on it gives the logits the device computed."""
    manifest = json.loads((work / "tinytrain.json").read_text())
    n = manifest["state_bytes"]
    slot_bytes = -(-(st.HEADER_BYTES + n) // 4096) * 4096
    parts = st.split_image((work / "build" / "m4" / "flash.bin").read_bytes(), slot_bytes)
    slots = [
        st.check_slot(p, manifest["state_format_version"], int(manifest["fingerprint"], 16), n) for p in parts
    ]
    i = st.newest(slots)
    assert i is not None
    params = st.params_from_state(slots[i].payload, manifest["state_layout"])
    assert int(params["steps"][0]) == 3
    adapted = load_model(save_model(out, ref.graph, params))
    logits = infer(adapted, ref.check.test_sample.transpose(2, 0, 1))
    assert list(logits) == manifest["self_check"]["test_logits"] == list(ref.check.test_logits)


@needs_tools
@pytest.mark.qemu
def test_self_check_fails_when_the_expected_losses_differ(exported: Path, tmp_path: Path) -> None:
    work = tmp_path / "tampered"
    shutil.copytree(exported, work)
    data = work / "example" / "example_data.c"
    text = data.read_text()
    m = re.search(r"ex_loss_bits\[EX_STEPS\] = \{0x([0-9a-f]{8})u", text)
    assert m
    wrong = f"{int(m.group(1), 16) ^ 1:08x}"
    data.write_text(text.replace(f"{{0x{m.group(1)}u", f"{{0x{wrong}u", 1))
    proc = _run(["make", "qemu"], work)
    assert proc.returncode != 0 and "MISMATCH" in proc.stdout and "self-check: FAIL" in proc.stdout


def test_existing_out_refused_unless_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "there"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert cli_main(["export", *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and len(err.strip().splitlines()) == 1
    assert (out / "keep.txt").read_text() == "mine"


def test_plan_too_big_exits_2_with_breakdown_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "big"
    rc = cli_main(
        ["export", "--model", "mcunet-5fps", "--scheme", "full", "--resolution", "96", "--out", str(out)]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "does not fit" in err and "memory plan" in err and "arena" in err
    assert not out.exists() and not list(tmp_path.iterdir())


# The STM32 HAL declarations the port uses (STM32F7 HAL: stm32f7xx_hal_flash.h / _flash_ex.h), to check that
# port/flash_stm32_hal.c compiles against that API; the port itself is not run anywhere.
HAL_MOCK = """
#include <stdint.h>
typedef enum { HAL_OK = 0, HAL_ERROR, HAL_BUSY, HAL_TIMEOUT } HAL_StatusTypeDef;
typedef struct { uint32_t TypeErase; uint32_t Sector; uint32_t NbSectors; uint32_t VoltageRange; }
  FLASH_EraseInitTypeDef;
#define FLASH_TYPEERASE_SECTORS 0u
#define FLASH_VOLTAGE_RANGE_3 2u
#define FLASH_TYPEPROGRAM_WORD 2u
#define FLASH_SECTOR_6 6u
#define FLASH_SECTOR_7 7u
HAL_StatusTypeDef HAL_FLASH_Unlock(void);
HAL_StatusTypeDef HAL_FLASH_Lock(void);
HAL_StatusTypeDef HAL_FLASHEx_Erase(FLASH_EraseInitTypeDef *pEraseInit, uint32_t *SectorError);
HAL_StatusTypeDef HAL_FLASH_Program(uint32_t TypeProgram, uint32_t Address, uint64_t Data);
"""


@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="arm toolchain not installed")
def test_stm32_port_compiles_against_the_hal_api(exported: Path, tmp_path: Path) -> None:
    (tmp_path / "stm32f7xx_hal.h").write_text(HAL_MOCK)
    cmd = ["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-std=gnu11", "-Wall", "-Wextra", "-Werror"]
    cmd += [
        "-fsyntax-only",
        f"-I{tmp_path}",
        f"-I{exported / 'include'}",
        str(exported / "port/flash_stm32_hal.c"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
