"""Mutation fuzzing of every file a user can hand tinytrain: model directories (model.json + weights.npz),
scheme JSON, baseline CSV, .npy inputs, learned-state .npz (Trainer.load), ELF files given to the runner,
and the device's sample reader (the training app's dataset.bin, host-native build under ASan + UBSan).

The outcome of every case must be a result or a TinytrainError (the CLI's one-line error, exit 2); any other
exception is a traceback, a case over its time limit is a hang, and for the native reader a signal or a
sanitizer report is a crash. `Campaign` counts them; failing inputs are kept for reproduction."""

from __future__ import annotations

import atexit
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import REPO_ROOT, TinytrainError

from .helpers import tiny_model, write_model

CASE_SECONDS = 10  # a case running longer is a hang


class Hang(Exception):
    pass


@dataclass
class Campaign:
    cases: dict[str, int] = field(default_factory=dict)
    ok: dict[str, int] = field(default_factory=dict)
    clean_errors: dict[str, int] = field(default_factory=dict)
    tracebacks: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_cases": self.total,
            "cases": self.cases,
            "ok": self.ok,
            "clean_errors": self.clean_errors,
            "tracebacks": len(self.tracebacks),
            "hangs": len(self.hangs),
            "crashes_or_sanitizer_reports": len(self.crashes),
            "failures": (self.tracebacks + self.hangs + self.crashes)[:20],
            "seconds": round(self.seconds, 1),
        }


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def run_case(c: Campaign, target: str, fn: Callable[[], Any], keep: Path | None = None) -> None:
    c.cases[target] = c.cases.get(target, 0) + 1
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        fn()
        c.ok[target] = c.ok.get(target, 0) + 1
    except TinytrainError as exc:
        msg = str(exc)
        if "Traceback" in msg or not msg.strip():
            c.tracebacks.append(f"{target}: unclear TinytrainError {msg!r}")
        else:
            c.clean_errors[target] = c.clean_errors.get(target, 0) + 1
    except Hang:
        c.hangs.append(f"{target}: over {CASE_SECONDS} s (input kept in {keep})")
    except Exception as exc:
        tb = traceback.format_exc(limit=-3)
        c.tracebacks.append(f"{target}: {type(exc).__name__}: {exc} (input kept in {keep})\n{tb}")
        if keep is not None:
            keep.rename(keep.with_name(keep.name + f".fail{len(c.tracebacks)}"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---- mutations ------------------------------------------------------------------------------------------

INTERESTING = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x20, 0x22, 0x2C, 0x0A, 0x5B, 0x7B]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """1-4 random byte-level edits: bit flips, random/interesting bytes, inserts, deletes, truncation,
    duplicated chunks."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        n = len(b)
        if n == 0:
            b += bytes([rng.randrange(256)])
            continue
        i = rng.randrange(n)
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            b[i] = rng.choice(INTERESTING)
        elif op == 3:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 4:
            del b[i : i + rng.randint(1, 16)]
        elif op == 5:
            del b[rng.randrange(n) :]
        else:
            j = rng.randrange(n)
            b[j:j] = b[i : i + rng.randint(1, 32)]
    return bytes(b)


def random_json_value(rng: random.Random, depth: int = 0) -> Any:
    k = rng.randrange(12 if depth < 2 else 9)
    return [
        lambda: None,
        lambda: rng.choice([True, False]),
        lambda: rng.choice([0, -1, 1, 2, 3, 127, 128, -129, 255, 2**31, -(2**31) - 1, 2**63, 10**30]),
        lambda: rng.randint(-1000, 1000),
        lambda: rng.choice([0.0, -0.0, 1e-45, 1e308, -1.5, 0.5, float("nan"), float("inf"), float("-inf")]),
        lambda: rng.uniform(-10, 10),
        lambda: rng.choice(["", "x", "classifier", "first_conv/weight", "\u00ff", "a" * 300, "../../etc"]),
        lambda: "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randint(0, 12))),
        lambda: rng.choice([[], {}, [1, 1], [3, 3], [0]]),
        lambda: [random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))],
        lambda: {
            str(random_json_value(rng, 9)): random_json_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))
        },
        lambda: rng.choice([[2, 2], [1], [-1, -1], [10**9, 10**9]]),
    ][k]()


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def mutate_json(doc: Any, rng: random.Random) -> Any:
    """Replace, delete or add one node of a JSON document (structure-aware)."""
    doc = json.loads(json.dumps(doc))
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return random_json_value(rng)
    p = rng.choice(paths)
    parent = doc
    for k in p[:-1]:
        parent = parent[k]
    op = rng.randrange(3)
    if op == 0 or isinstance(parent, list):
        parent[p[-1]] = random_json_value(rng)
    elif op == 1:
        del parent[p[-1]]
    else:
        parent[str(random_json_value(rng, 9))] = random_json_value(rng)
    return doc


def random_array(rng: random.Random, like: np.ndarray) -> np.ndarray:
    dtype = rng.choice(
        [
            np.int8,
            np.uint8,
            np.int16,
            np.int32,
            np.int64,
            np.float16,
            np.float32,
            np.float64,
            np.bool_,
            np.complex64,
        ]
    )
    shape = rng.choice(
        [like.shape, (), (0,), (like.size,), (like.size + 1,), (*like.shape, 1), (1, *like.shape)]
    )
    vals = np.random.default_rng(rng.randrange(2**32)).standard_normal(int(np.prod(shape))) * rng.choice(
        [1, 100, 1e6, 1e12]
    )
    if rng.random() < 0.2:
        vals[:1] = rng.choice([np.nan, np.inf, -np.inf, 0.0])
    with np.errstate(all="ignore"):
        return vals.reshape(shape).astype(dtype)


# ---- targets ----------------------------------------------------------------------------------------------


def fuzz_model_dirs(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    from tinytrain.models.mcu_format import load_mcu_model

    doc, arrays = tiny_model()
    good = write_model(tmp / "good", doc, arrays)
    npz_bytes = (good / "weights.npz").read_bytes()
    json_bytes = (good / "model.json").read_bytes()
    for i in range(n):
        d = tmp / f"m{i % 50}"
        d.mkdir(exist_ok=True)
        kind = i % 4
        if kind == 0:  # structured JSON edit
            (d / "model.json").write_text(json.dumps(mutate_json(doc, rng)))
            (d / "weights.npz").write_bytes(npz_bytes)
        elif kind == 1:  # model.json bytes
            (d / "model.json").write_bytes(mutate(json_bytes, rng))
            (d / "weights.npz").write_bytes(npz_bytes)
        elif kind == 2:  # weights.npz bytes
            (d / "model.json").write_bytes(json_bytes)
            (d / "weights.npz").write_bytes(mutate(npz_bytes, rng))
        else:  # one array replaced (dtype, shape, values)
            a = dict(arrays)
            k = rng.choice(sorted(a))
            a[k] = random_array(rng, a[k])
            (d / "model.json").write_bytes(json_bytes)
            np.savez(d / "weights.npz", **a)
        run_case(c, "model directory", lambda d=d: load_mcu_model(d).validate(), d)


def fuzz_schemes(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    from tinytrain.models.mcu_format import load_mcu_model
    from tinytrain.sparse import resolve_scheme

    doc, arrays = tiny_model()
    graph = load_mcu_model(write_model(tmp / "model", doc, arrays))
    base = {"bias_last_n": 2, "weights": [{"layer": "blocks.0.pointwise2", "input_channel_ratio": 0.5}]}
    raw = json.dumps(base).encode()
    for i in range(n):
        f = tmp / f"s{i % 50}.json"
        f.write_bytes(json.dumps(mutate_json(base, rng)).encode() if i % 2 else mutate(raw, rng))
        run_case(c, "scheme JSON", lambda f=f: resolve_scheme(str(f), graph), f)


def fuzz_baselines(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    from tinytrain.bench.gate import compare, load_baseline

    lines = (REPO_ROOT / "results" / "baseline.csv").read_text().splitlines(keepends=True)
    raw = "".join(lines[:12]).encode()

    def check(f: Path) -> None:
        rows = load_baseline(f)
        compare(rows, rows).report()

    for i in range(n):
        f = tmp / f"b{i % 50}.csv"
        f.write_bytes(mutate(raw, rng))
        run_case(c, "baseline CSV", lambda f=f: check(f), f)


def fuzz_npy_inputs(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    from tinytrain.cli.infer import load_input

    good = tmp / "good.npy"
    np.save(good, np.zeros((1, 3, 16, 16), np.int8))
    raw = good.read_bytes()
    for i in range(n):
        f = tmp / f"x{i % 50}.npy"
        f.write_bytes(mutate(raw, rng))
        run_case(c, ".npy input (infer)", lambda f=f: load_input(f, 3), f)


def fuzz_state_npz(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    from tinytrain.compiler import compile_training
    from tinytrain.models.mcu_format import load_mcu_model
    from tinytrain.reference.training import Trainer

    doc, arrays = tiny_model()
    graph = load_mcu_model(write_model(tmp / "model", doc, arrays))
    trainer = Trainer(compile_training(graph, "full"), seed=1)
    good = tmp / "state.npz"
    trainer.save(good)
    raw = good.read_bytes()
    for i in range(n):
        f = tmp / f"p{i % 50}.npz"
        f.write_bytes(mutate(raw, rng))
        run_case(c, "learned-state .npz (Trainer.load)", lambda f=f: trainer.load(f), f)


def fuzz_elfs(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    from emulation.boards import get_board
    from emulation.elfinfo import ElfSymbols, check_arm_elf
    from emulation.runner import _check_elf_for_board

    from .catalog import tiny_arm_elf

    board = get_board("m7")
    elf = next(iter(sorted((REPO_ROOT / "build").glob("emulate/*/bin/train.elf"))), None)
    raw = elf.read_bytes() if elf is not None and elf.stat().st_size < 2_000_000 else tiny_arm_elf()

    def check(f: Path) -> None:
        # what run_elf does before QEMU starts (a file that passes is one QEMU may load)
        try:
            p = check_arm_elf(f)
        except TinytrainError:
            raise
        except Exception as exc:
            raise TinytrainError(f"corrupt ELF ({exc})") from None  # run_elf's own wrapping
        _check_elf_for_board(p, board)
        try:
            ElfSymbols(p)
        except TinytrainError:
            raise
        except Exception as exc:
            raise TinytrainError(f"corrupt ELF ({exc})") from None  # run_elf's own wrapping

    for i in range(n):
        f = tmp / f"e{i % 50}.elf"
        f.write_bytes(mutate(raw, rng) if i % 3 else raw[: rng.randrange(len(raw))])
        run_case(c, "ELF (runner)", lambda f=f: check(f), f)


# ---- the device's sample reader, host-native under ASan + UBSan --------------------------------------------

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]


def sanitizer_gcc(tmp: Path) -> Path:
    """A `gcc` that adds the sanitizer flags to every compile and link (first on PATH for a build)."""
    d = tmp / "san-bin"
    d.mkdir(parents=True, exist_ok=True)
    gcc = d / "gcc"
    gcc.write_text(f'#!/bin/sh\nexec /usr/bin/gcc {" ".join(SANITIZE)} "$@"\n')
    gcc.chmod(0o755)
    return d


def build_sanitized_trainer(
    tmp: Path, model_dir: Path | None = None, classes: int = 4, source: str = "semihost"
) -> tuple[Path, bytes]:
    """The training app + generated model + runtime, built for the host with ASan + UBSan; and a valid
    dataset.bin for it (source "flash": the app reads it from the linked-in dataset_blob.c instead;
    `relink_flash` swaps in other bytes). The tiny model's build is made once per process and shared
    (both sources link the same objects)."""
    if model_dir is None and classes == 4:
        flash_exe, semihost_exe, good = _tiny_builds()
        return (flash_exe if source == "flash" else semihost_exe), good
    return _build_sanitized(tmp, model_dir, classes, source)


@functools.cache
def _tiny_builds() -> tuple[Path, Path, bytes]:
    from tinytrain import FIRMWARE_DIR
    from tinytrain.job.firmware import APP_DIR, HOST_CFLAGS, RUNTIME_DIR

    tmp = Path(tempfile.mkdtemp(prefix="tt-asan-"))
    atexit.register(shutil.rmtree, tmp, True)
    flash_exe, good = _build_sanitized(tmp, None, 4, "flash")
    host = flash_exe.parent
    gcc = str(tmp / "san-bin" / "gcc")
    semi = tmp / "semihost"
    semi.mkdir()
    obj = semi / "source_semihost.o"
    inc = [f"-I{d}" for d in (tmp / "gen", APP_DIR, RUNTIME_DIR, FIRMWARE_DIR / "include")]
    cmd = [gcc, *HOST_CFLAGS, "-DTT_NO_PHASE_COUNTERS", *inc, "-c", str(APP_DIR / "source_semihost.c")]
    subprocess.run([*cmd, "-o", str(obj)], check=True, timeout=120)
    objs = [str(o) for o in sorted(host.glob("*.o")) if o.name not in ("source_flash.o", "dataset_blob.o")]
    subprocess.run([gcc, *objs, str(obj), "-lm", "-o", str(semi / "train-host")], check=True, timeout=120)
    return flash_exe, semi / "train-host", good


def _build_sanitized(tmp: Path, model_dir: Path | None, classes: int, source: str) -> tuple[Path, bytes]:
    from tinytrain import emulate
    from tinytrain.codegen import datafile
    from tinytrain.codegen.generate import generate_model
    from tinytrain.compiler import compile_training
    from tinytrain.models.mcu_format import load_mcu_model
    from tinytrain.schedule import plan_memory

    if model_dir is None:
        doc, arrays = tiny_model()
        model_dir = write_model(tmp / "model", doc, arrays)
    graph = load_mcu_model(model_dir)
    program = compile_training(graph, "full")
    plan = plan_memory(program, "m7")
    gen = generate_model(program, plan.offsets, plan.arena)
    gen.write(tmp / "gen")
    job = _tiny_job(program, classes)
    if source == "flash":
        (tmp / "gen" / "dataset_blob.c").write_text(datafile.blob_c(job))
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{sanitizer_gcc(tmp)}:{old}"
    try:
        exe = emulate.build_host(tmp / "gen", tmp / "host", source)
    finally:
        os.environ["PATH"] = old
    return exe, datafile.pack(job)


def _tiny_job(program: Any, classes: int) -> Any:
    from tinytrain.codegen import datafile

    shape = program.buffers[program.input_buffer].shape
    r = np.random.default_rng(0)
    xs = r.integers(-128, 128, (6, *shape), dtype=np.int8)
    ys = np.arange(6) % classes
    flags = datafile.EVAL_BEFORE | datafile.EVAL_AFTER | datafile.TEST_PREDS | datafile.DUMP_PARAMS
    job = datafile.TrainingJob(
        xs, ys, xs[:3], ys[:3], datafile.make_order(6, 4, 0), np.full(4, 0.01, np.float32), classes,
        rng_seed=1, flags=flags,
    )  # fmt: skip
    return job


def relink_flash(exe: Path, data: bytes) -> Path:
    """The flash-source build of `build_sanitized_trainer(..., source="flash")` with `data` as its
    dataset_blob.c (recompiles that one file, relinks; sanitizers on)."""
    from tinytrain.codegen.datafile import blob_source

    host = exe.parent
    src = host / "blob" / "dataset_blob.c"
    src.parent.mkdir(exist_ok=True)
    src.write_text(blob_source(data))
    gcc = str(host.parent / "san-bin" / "gcc")
    subprocess.run([gcc, "-O0", "-c", str(src), "-o", str(host / "dataset_blob.o")], check=True, timeout=60)
    objs = sorted(str(o) for o in host.glob("*.o"))
    subprocess.run([gcc, *objs, "-lm", "-o", str(exe)], check=True, timeout=60)
    return exe


SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
    "UBSAN_OPTIONS": "halt_on_error=1:exitcode=87",
}


def run_native(exe: Path, run_dir: Path, data: bytes) -> tuple[int, str]:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "dataset.bin").write_bytes(data)
    p = subprocess.run(
        [str(exe)], cwd=run_dir, capture_output=True, text=True, errors="replace", timeout=CASE_SECONDS,
        env={**os.environ, **SAN_ENV},
    )  # fmt: skip
    return p.returncode, p.stdout + p.stderr


def judge_native(
    c: Campaign, target: str, keep: Path, data: bytes, run: Callable[[], tuple[int, str]]
) -> None:
    """One native case: a clean run, an error event, or (kept for reproduction) a hang or crash."""
    c.cases[target] = c.cases.get(target, 0) + 1
    try:
        code, out = run()
    except subprocess.TimeoutExpired:
        keep.write_bytes(data)
        c.hangs.append(f"{target}: over {CASE_SECONDS} s ({keep})")
        return
    if code < 0 or code in (86, 87) or "Sanitizer" in out or "runtime error" in out:
        keep.write_bytes(data)
        c.crashes.append(f"{target}: status {code} ({keep}): {out[-600:]}")
    elif code == 0:
        c.ok[target] = c.ok.get(target, 0) + 1
    elif '"ev":"error"' in out:
        c.clean_errors[target] = c.clean_errors.get(target, 0) + 1
    else:
        keep.write_bytes(data)
        c.crashes.append(f"{target}: status {code} without an error event ({keep}): {out[-300:]}")


def mutate_dataset(good: bytes, rng: random.Random, i: int) -> bytes:
    """Byte mutations (odd i) or one of the 16 uint32 header words of tt_dataset_header set to an edge
    value (even i)."""
    if i % 2:
        return mutate(good, rng)
    words = [int(w) for w in np.frombuffer(good[:64], "<u4")]
    k = rng.randrange(16)
    edge = [0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, words[k] + rng.randint(-70, 70), rng.randrange(2**32)]
    words[k] = rng.choice(edge) % 2**32
    return np.array(words, "<u4").tobytes() + good[64:]


def fuzz_flash_source(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    """The flash sample source (source_flash.c) fed mutated dataset blobs, host-native under ASan + UBSan:
    each case recompiles dataset_blob.c and relinks."""
    exe, good = build_sanitized_trainer(tmp, source="flash")
    code, out = run_native(relink_flash(exe, good), tmp / "run-good", b"")  # the build is shared
    assert code == 0, out[-2000:]
    target = "flash dataset blob (device flash source, ASan+UBSan)"
    for i in range(n):
        data = mutate_dataset(good, rng, i) if i % 5 else good[: rng.randrange(len(good))]
        keep = tmp / f"blob{i}.bin"
        judge_native(c, target, keep, data, lambda d=data: run_native(relink_flash(exe, d), tmp / "run", b""))


def fuzz_sample_reader(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    exe, good = build_sanitized_trainer(tmp)
    code, out = run_native(exe, tmp / "run-good", good)
    assert code == 0, out[-2000:]
    target = "dataset.bin (device sample reader, ASan+UBSan)"
    for i in range(n):
        data = mutate_dataset(good, rng, i)
        judge_native(c, target, tmp / f"ds{i}.bin", data, lambda d=data: run_native(exe, tmp / "run", d))


TARGETS: dict[str, Callable[[Campaign, Path, int, random.Random], None]] = {
    "model": fuzz_model_dirs,
    "scheme": fuzz_schemes,
    "baseline": fuzz_baselines,
    "npy": fuzz_npy_inputs,
    "state": fuzz_state_npz,
    "elf": fuzz_elfs,
    "reader": fuzz_sample_reader,
    "flash": fuzz_flash_source,
}


def all_targets() -> dict[str, Callable[[Campaign, Path, int, random.Random], None]]:
    """TARGETS and the targets of the file kinds in fuzz_models.py (.tflite, .onnx) and fuzz_data.py
    (image folders, CSV, .npz datasets, saved-state flash images)."""
    from .fuzz_data import DATA_TARGETS
    from .fuzz_models import MODEL_TARGETS

    return {**TARGETS, **MODEL_TARGETS, **DATA_TARGETS}


def campaign(tmp: Path, per_target: dict[str, int], seed: int) -> Campaign:
    targets = all_targets()
    c = Campaign()
    t0 = time.perf_counter()
    for name, n in per_target.items():
        d = tmp / name
        d.mkdir(parents=True, exist_ok=True)
        targets[name](c, d, n, random.Random(f"{seed}-{name}"))
    c.seconds = time.perf_counter() - t0
    return c
