"""Build the training firmware: generate model.c/model.h (+ the dataset blob for flash runs), then compile
the training app, the generated model and the runtime kernels for a board (emulation.build) or the host."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tinytrain import FIRMWARE_DIR, TinytrainError
from tinytrain.codegen import datafile
from tinytrain.codegen.generate import GeneratedModel, generate_model

APP_DIR = FIRMWARE_DIR / "app" / "train"
RUNTIME_DIR = FIRMWARE_DIR / "runtime"


def generate(
    program: Any, plan: Any, job: datafile.TrainingJob, build_dir: Path, source: str
) -> GeneratedModel:
    """model.c/model.h under build_dir/gen (with dataset_blob.c for a flash run) and the run directory
    build_dir/run with the job's dataset.bin (a stale params.bin removed)."""
    gen_dir, run_dir = build_dir / "gen", build_dir / "run"
    gen = generate_model(program, plan.offsets, plan.arena)
    gen.write(gen_dir)
    if source == "flash":
        (gen_dir / "dataset_blob.c").write_text(datafile.blob_c(job))
    run_dir.mkdir(parents=True, exist_ok=True)
    datafile.write(job, run_dir / "dataset.bin")
    (run_dir / "params.bin").unlink(missing_ok=True)
    return gen


def app_sources(source: str) -> list[Path]:
    src = {"semihost": "source_semihost.c", "flash": "source_flash.c"}.get(source)
    if src is None:
        raise TinytrainError(f"unknown sample source {source!r}: semihost or flash")
    return [APP_DIR / "main.c", APP_DIR / src]


def runtime_sources() -> list[Path]:
    srcs = sorted(RUNTIME_DIR.glob("*.c"))
    if not srcs:
        raise TinytrainError(f"no runtime kernels in {RUNTIME_DIR}")
    return srcs


def build_board(board: str, gen_dir: Path, out_dir: Path, source: str) -> Any:
    from emulation.build import build_firmware

    sources = [gen_dir / "model.c", *app_sources(source), *runtime_sources()]
    if source == "flash":
        sources.append(gen_dir / "dataset_blob.c")
    return build_firmware(
        board, sources, include_dirs=[gen_dir, APP_DIR, RUNTIME_DIR], out_dir=out_dir, name="train"
    )


HOST_CFLAGS = ("-O2", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wextra")


def build_host(gen_dir: Path, out_dir: Path, source: str = "semihost") -> Path:
    """The same training app, model and runtime built with the host gcc (tt_board.h on stdio)."""
    from tinytrain import children

    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise TinytrainError("no host C compiler (gcc) found; install it with: sudo apt-get install -y gcc")
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "train-host"
    sources = [gen_dir / "model.c", APP_DIR / "host_board.c", *app_sources(source), *runtime_sources()]
    if source == "flash":
        sources.append(gen_dir / "dataset_blob.c")
    objs = []
    for s in sources:
        obj = out_dir / (s.stem + ".o")
        defines = ["-Dmain=tt_app_main"] if s.name == "main.c" else []
        c = [
            gcc,
            *HOST_CFLAGS,
            "-DTT_NO_PHASE_COUNTERS",
            *defines,
            f"-I{gen_dir}",
            f"-I{APP_DIR}",
            f"-I{RUNTIME_DIR}",
            f"-I{FIRMWARE_DIR / 'include'}",
            "-c",
            str(s),
            "-o",
            str(obj),
        ]
        proc = children.run(c, text=True)
        if proc.returncode != 0:
            raise TinytrainError(f"host build failed ({s.name}):\n{proc.stderr.strip()}")
        objs.append(str(obj))
    proc = children.run([gcc, *objs, "-lm", "-o", str(exe)], text=True)
    if proc.returncode != 0:
        raise TinytrainError(f"host link failed:\n{proc.stderr.strip()}")
    return exe


# ---- running ------------------------------------------------------------------------------------------
