"""The catalogue of bad inputs and faults (docs/reliability.md's table is generated from it by
test_catalog.py). Each case builds its input under a temporary directory and returns what the user sees:
(exit status, message). In-process CLI calls are fast; the few process-level faults run `tinytrain` as a
child."""

from __future__ import annotations

import json
import os
import signal
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .helpers import SHORT_JOB, run_cli, start, survivors, tiny_model, wait_for_child, write_model

Case = Callable[[Path], tuple[int, str]]


@dataclass
class Entry:
    area: str
    what: str
    run: Case
    expect_code: int = 2
    process: bool = False  # runs QEMU in a child process (seconds)
    expect_in: str = ""  # the message must contain this


CASES: list[Entry] = []


def case(
    area: str, what: str, expect_code: int = 2, process: bool = False, expect_in: str = ""
) -> Callable[[Case], Case]:
    def deco(fn: Case) -> Case:
        CASES.append(Entry(area, what, fn, expect_code, process, expect_in))
        return fn

    return deco


def _cli(argv: list[str]) -> tuple[int, str]:
    code, _, err = run_cli(argv)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]  # argparse prints its usage first
    return code, (errors[-1] if errors else "\n".join(lines))


# ---- model directories --------------------------------------------------------------------------------


def _compile(d: Path, scheme: str = "last") -> tuple[int, str]:
    return _cli(["compile", "--model", str(d), "--scheme", scheme, "--board", "m7"])


def _model_case(mutate: Callable[[dict, dict], None]) -> Case:
    def run(tmp: Path) -> tuple[int, str]:
        doc, arrays = tiny_model()
        mutate(doc, arrays)
        return _compile(write_model(tmp / "model", doc, arrays))

    return run


W = "blocks.0.pointwise1/weight"
B = "blocks.0.pointwise1/bias"
S = "blocks.0.pointwise1/w_scales"

MODEL_MUTATIONS: list[tuple[str, Callable[[dict, dict], None]]] = [
    ("weights float64 non-integers", lambda d, a: a.__setitem__(W, a[W].astype(np.float64) + 0.37)),
    ("weights all NaN", lambda d, a: a.__setitem__(W, np.full(a[W].shape, np.nan))),
    ("weights int32 values x1000", lambda d, a: a.__setitem__(W, a[W].astype(np.int32) * 1000)),
    ("biases int64 of 2**40", lambda d, a: a.__setitem__(B, np.full(a[B].shape, 2**40, np.int64))),
    ("biases float32", lambda d, a: a.__setitem__(B, a[B].astype(np.float32))),
    ("w_scales all 0", lambda d, a: a.__setitem__(S, np.zeros_like(a[S]))),
    ("one w_scales entry NaN", lambda d, a: a[S].__setitem__(3, np.nan)),
    ("one w_scales entry negative", lambda d, a: a[S].__setitem__(0, -0.01)),
    ("one w_scales entry +inf", lambda d, a: a[S].__setitem__(1, np.inf)),
    ("w_scales integer dtype", lambda d, a: a.__setitem__(S, np.ones(a[S].shape, np.int32))),
    ("w_scales of the wrong length", lambda d, a: a.__setitem__(S, a[S][:-1])),
    ("weight with too few values", lambda d, a: a.__setitem__(W, a[W].ravel()[:-3])),
    ("bias of the wrong shape", lambda d, a: a.__setitem__(B, a[B][:, None])),
    ("an array missing from weights.npz", lambda d, a: a.pop(B)),
    ("x_scale 0 in model.json", lambda d, a: d["blocks"][0]["depthwise"].__setitem__("x_scale", 0)),
    ("y_scale NaN in model.json", lambda d, a: d["classifier"].__setitem__("y_scale", float("nan"))),
    ("y_zero 300 in model.json", lambda d, a: d["first_conv"].__setitem__("y_zero", 300)),
    ("kernel_size even", lambda d, a: d["first_conv"].__setitem__("kernel_size", [2, 2])),
    ("stride 0", lambda d, a: d["first_conv"].__setitem__("stride", 0)),
    ("in_channel mismatch", lambda d, a: d["classifier"].__setitem__("in_channel", 9)),
    ("in_shape (resolution) 100000", lambda d, a: d["first_conv"].__setitem__("in_shape", 100000)),
    ("wrong format string", lambda d, a: d.__setitem__("format", "other/2")),
    ("blocks is not a list", lambda d, a: d.__setitem__("blocks", {"a": 1})),
    ("layer name is a number", lambda d, a: d["blocks"][0]["pointwise2"].__setitem__("name", 7)),
]
for _what, _mut in MODEL_MUTATIONS:
    case("model directory", _what)(_model_case(_mut))


@case("model directory", "model.json missing")
def _no_json(tmp: Path) -> tuple[int, str]:
    d = tmp / "m"
    d.mkdir()
    np.savez(d / "weights.npz", a=np.zeros(1))
    return _compile(d)


@case("model directory", "weights.npz missing")
def _no_npz(tmp: Path) -> tuple[int, str]:
    doc, _ = tiny_model()
    return _compile(write_model(tmp / "m", doc, None))


@case("model directory", "weights.npz truncated to half")
def _trunc_npz(tmp: Path) -> tuple[int, str]:
    doc, arrays = tiny_model()
    d = write_model(tmp / "m", doc, arrays)
    raw = (d / "weights.npz").read_bytes()
    (d / "weights.npz").write_bytes(raw[: len(raw) // 2])
    return _compile(d)


@case("model directory", "model.json truncated")
def _trunc_json(tmp: Path) -> tuple[int, str]:
    doc, arrays = tiny_model()
    d = write_model(tmp / "m", doc, arrays)
    raw = (d / "model.json").read_bytes()
    (d / "model.json").write_bytes(raw[: len(raw) // 3])
    return _compile(d)


@case("model directory", "model.json not UTF-8")
def _latin1_json(tmp: Path) -> tuple[int, str]:
    doc, arrays = tiny_model()
    d = write_model(tmp / "m", doc, arrays)
    (d / "model.json").write_bytes(b'{"format": "\xff\xfe"}')
    return _compile(d)


@case("model directory", "weights.npz holds a pickled object array")
def _pickle_npz(tmp: Path) -> tuple[int, str]:
    doc, arrays = tiny_model()
    arrays[W] = np.array([{"x": 1}], dtype=object)
    d = tmp / "m"
    d.mkdir()
    (d / "model.json").write_text(json.dumps(doc))
    np.savez(d / "weights.npz", allow_pickle=True, **arrays)
    return _compile(d)


@case("model directory", "weights.npz is a zip of garbage members")
def _garbage_zip(tmp: Path) -> tuple[int, str]:
    doc, _ = tiny_model()
    d = write_model(tmp / "m", doc, None)
    with zipfile.ZipFile(d / "weights.npz", "w") as z:
        z.writestr(f"{W}.npy", b"not an npy file")
    return _compile(d)


@case("model directory", "unknown zoo model name")
def _unknown_model(tmp: Path) -> tuple[int, str]:
    return _compile(tmp / "no-such-model")


# ---- scheme files ---------------------------------------------------------------------------------------


def _scheme_case(content: bytes | str) -> Case:
    def run(tmp: Path) -> tuple[int, str]:
        doc, arrays = tiny_model()
        d = write_model(tmp / "model", doc, arrays)
        f = tmp / "scheme.json"
        f.write_bytes(content if isinstance(content, bytes) else content.encode())
        return _compile(d, str(f))

    return run


SCHEMES: list[tuple[str, bytes | str]] = [
    ("scheme file not UTF-8", b'{"bias_last_n": 1, "weights": [], "about": "\xff\xfe\xfa"}'),
    ("scheme file invalid JSON", '{"bias_last_n": 1,'),
    ("scheme file empty", ""),
    ("scheme with an unknown key", '{"bias_last_n": 1, "weight": []}'),
    ("scheme naming an unknown layer", '{"weights": [{"layer": "blocks.9.conv", "input_channel_ratio": 1}]}'),
    ("scheme ratio 1.5", '{"weights": [{"layer": "blocks.0.pointwise1", "input_channel_ratio": 1.5}]}'),
    ("scheme ratio 0", '{"weights": [{"layer": "blocks.0.pointwise1", "input_channel_ratio": 0}]}'),
    ("scheme ratio a string", '{"weights": [{"layer": "blocks.0.pointwise1", "input_channel_ratio": "1"}]}'),
    (
        "scheme layer listed twice",
        '{"weights": [{"layer": "blocks.0.depthwise", "input_channel_ratio": 1},'
        ' {"layer": "blocks.0.depthwise", "input_channel_ratio": 0.5}]}',
    ),  # fmt: skip
    ("scheme bias_last_n 99", '{"bias_last_n": 99}'),
    ("scheme bias_last_n -1", '{"bias_last_n": -1}'),
    ("scheme weights not a list", '{"weights": {"layer": "classifier"}}'),
    ("scheme layer name not a string", '{"weights": [{"layer": ["x"], "input_channel_ratio": 1}]}'),
    ("scheme is a JSON list", "[1, 2]"),
]
for _what, _content in SCHEMES:
    case("scheme", _what)(_scheme_case(_content))


@case("scheme", "scheme file missing")
def _scheme_missing(tmp: Path) -> tuple[int, str]:
    doc, arrays = tiny_model()
    return _compile(write_model(tmp / "model", doc, arrays), str(tmp / "nope.json"))


@case("scheme", "unknown paper budget")
def _paper_budget(tmp: Path) -> tuple[int, str]:
    return _cli(
        ["compile", "--model", "mcunet-5fps", "--scheme", "paper:1kb", "--classes", "2", "--resolution", "32"]
    )


# ---- emulate options: refused before anything is loaded or run ------------------------------------------

BASE = ["emulate", "--defaults", "--no-save"]
OPTIONS: list[tuple[str, list[str]]] = [
    ("--steps 0 (would overwrite the committed main-job report)", ["--steps", "0"]),
    ("--steps -5", ["--steps", "-5"]),
    ("--epochs 0", ["--epochs", "0"]),
    ("--lr 0", ["--lr", "0"]),
    ("--lr nan", ["--lr", "nan"]),
    ("--lr inf", ["--lr", "inf"]),
    ("--lr -0.1", ["--lr", "-0.1"]),
    ("--momentum 1", ["--momentum", "1"]),
    ("--momentum -0.5", ["--momentum", "-0.5"]),
    ("--accumulate 0", ["--accumulate", "0"]),
    ("--timeout 0", ["--timeout", "0"]),
    ("--timeout -1", ["--timeout", "-1"]),
    ("--timeout nan", ["--timeout", "nan"]),
    ("--resolution 7", ["--resolution", "7"]),
    ("--resolution 100000", ["--resolution", "100000"]),
    ("--classes 1", ["--classes", "1"]),
    ("--head-lr-scale 0", ["--head-lr-scale", "0"]),
    ("--seed -1", ["--seed", "-1"]),
    ("--max-test -1", ["--max-test", "-1"]),
    ("--report /proc/nope (unwritable report folder)", ["--steps", "2", "--report", "/proc/nope"]),
    ("--dump-params /missing/dir/p.npz", ["--steps", "2", "--dump-params", "/missing/dir/p.npz"]),
    ("--steps abc", ["--steps", "abc"]),
]
for _what, _args in OPTIONS:
    case("emulate options", _what)(lambda tmp, a=_args: _cli([*BASE, *a]))


@case("emulate options", "--dump-params names a directory")
def _dump_dir(tmp: Path) -> tuple[int, str]:
    return _cli([*BASE, "--steps", "2", "--dump-params", str(tmp)])


@case("emulate options", "--report names an existing file")
def _report_file(tmp: Path) -> tuple[int, str]:
    f = tmp / "report.txt"
    f.write_text("x")
    return _cli([*BASE, "--steps", "2", "--report", str(f)])


@case("emulate options", "--report in a read-only directory")
def _report_ro(tmp: Path) -> tuple[int, str]:
    d = tmp / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        if os.access(d, os.W_OK):  # root ignores permissions: use a path under a file instead
            (tmp / "file").write_text("x")
            return _cli([*BASE, "--steps", "2", "--report", str(tmp / "file" / "sub")])
        return _cli([*BASE, "--steps", "2", "--report", str(d / "sub")])
    finally:
        d.chmod(0o700)


@case("emulate options", "unknown board")
def _board(tmp: Path) -> tuple[int, str]:
    return _cli([*BASE, "--steps", "2", "--board", "m99"])


@case("emulate options", "no --model without --defaults")
def _no_model(tmp: Path) -> tuple[int, str]:
    return _cli(["emulate", "--steps", "2"])


# ---- bench gate -------------------------------------------------------------------------------------------

GOOD = Path(__file__).resolve().parents[2] / "results" / "baseline.csv"


def _gate(make: Callable[[str], str | bytes]) -> Case:
    def run(tmp: Path) -> tuple[int, str]:
        f = tmp / "baseline.csv"
        content = make(GOOD.read_text())
        f.write_bytes(content if isinstance(content, bytes) else content.encode())
        return _cli(["bench", "--check", str(f), "--out", str(tmp / "out"), "--quiet"])

    return run


def _lines(t: str) -> list[str]:
    return t.splitlines(keepends=True)


def _ok_line(t: str) -> int:
    return next(i for i, ln in enumerate(_lines(t)) if ",ok," in ln)


def _set_cell(t: str, col: str, value: str) -> str:
    ls = _lines(t)
    header = ls[0].rstrip("\n").split(",")
    i = _ok_line(t)
    import csv
    import io

    row = next(csv.reader([ls[i]]))
    row[header.index(col)] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    ls[i] = buf.getvalue()
    return "".join(ls)


def _drop_column(t: str, col: str) -> str:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(t)))
    k = rows[0].index(col)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([r[:k] + r[k + 1 :] for r in rows])
    return buf.getvalue()


def _cut_row(t: str) -> str:
    ls = _lines(t)
    return "".join(ls[:2]) + ",".join(ls[2].split(",")[:10]) + "\n"


def _paper_only(t: str) -> str:
    header = _lines(t)[0]
    cells = ["paper", "mcunet-5fps", "x", "m7", "128", "", "", "", "reference"]
    return header + ",".join(cells + [""] * (len(header.split(",")) - len(cells))) + "\n"


GATES: list[tuple[str, Callable[[str], str | bytes]]] = [
    ("empty baseline file", lambda t: ""),
    ("header only, no rows", lambda t: _lines(t)[0]),
    ("truncated in the middle of a row", lambda t: t[: len(t) // 2]),
    ("truncated at a field boundary (no final newline)", lambda t: t.rstrip("\n")[:-1]),
    ("a row with fields missing", lambda t: _cut_row(t)),
    ("missing sram_total column", lambda t: _drop_column(t, "sram_total")),
    ("missing instr_total column", lambda t: _drop_column(t, "instr_total")),
    ("empty sram_total cell of an ok row", lambda t: _set_cell(t, "sram_total", "")),
    ("cell abc", lambda t: _set_cell(t, "instr_total", "abc")),
    ("cell nan", lambda t: _set_cell(t, "sram_total", "nan")),
    ("cell inf", lambda t: _set_cell(t, "instr_forward", "inf")),
    ("fractional byte count", lambda t: _set_cell(t, "sram_total", "1.5")),
    ("duplicated row", lambda t: t + _lines(t)[_ok_line(t)]),
    ("binary file", lambda t: bytes(range(256)) * 4),
    ("not UTF-8", lambda t: t.encode().replace(b"mcunet", b"mc\xffnet", 1)),
    ("unterminated quote", lambda t: t + 'device,"mcunet\n'),
    ("no device rows (only a paper row)", lambda t: _paper_only(t)),
]  # fmt: skip
for _what, _make in GATES:
    case("bench gate", _what)(_gate(_make))


@case("bench gate", "baseline file missing")
def _gate_missing(tmp: Path) -> tuple[int, str]:
    return _cli(["bench", "--check", str(tmp / "none.csv"), "--out", str(tmp / "o")])


@case("bench gate", "--update-baseline into a truncated baseline (refused before the run)")
def _update_damaged(tmp: Path) -> tuple[int, str]:
    f = tmp / "baseline.csv"
    f.write_text(GOOD.read_text()[:5000])
    return _cli(["bench", "--config", CI_TOML, "--out", str(tmp / "o"), "--update-baseline", str(f), "-q"])


@case("bench gate", "run and baseline share no row (compare)", expect_code=1)
def _gate_disjoint(tmp: Path) -> tuple[int, str]:
    from tinytrain.bench.gate import compare, load_baseline

    base = load_baseline(GOOD)
    cur = [{**r, "board": "m99"} for r in base if r.get("kind") == "device"]
    res = compare(base, cur)
    return (0 if res.ok else 1), next(ln for ln in res.report().splitlines() if "NOTHING" in ln).strip()


@case("bench gate", "re-run ok row lost instr_total (compare)", expect_code=1)
def _gate_lost(tmp: Path) -> tuple[int, str]:
    from tinytrain.bench.gate import compare, load_baseline

    base = load_baseline(GOOD)
    cur = [dict(r) for r in base if r.get("kind") == "device"]
    for r in cur:
        if r["status"] == "ok":
            r["instr_total"] = None
            break
    res = compare(base, cur)
    return (0 if res.ok else 1), next(ln for ln in res.report().splitlines() if "REGRESSION" in ln).strip()


BENCH_OPTS: list[tuple[str, list[str]]] = [
    ("bench --jobs 0", ["--jobs", "0"]),
    ("bench --out /proc/nope", ["--out", "/proc/nope"]),
    ("bench --update-baseline /missing/dir/b.csv", ["--update-baseline", "/missing/dir/b.csv"]),
    ("bench --instr-tolerance -1", ["--instr-tolerance", "-1"]),
    ("bench --config missing.toml", []),
    ("bench without --config or --check", None),  # type: ignore[list-item]
]
CI_TOML = str(Path(__file__).resolve().parents[2] / "bench" / "ci.toml")
for _what, _a in BENCH_OPTS:
    if _a is None:
        case("bench options", _what)(lambda tmp: _cli(["bench"]))
    elif _a:
        case("bench options", _what)(lambda tmp, a=_a: _cli(["bench", "--config", CI_TOML, *a]))
    else:
        case("bench options", _what)(lambda tmp: _cli(["bench", "--config", str(tmp / "missing.toml")]))


@case("bench", "a corrupt cached row is detected and re-run (Runner._cached)", expect_code=0)
def _corrupt_cache(tmp: Path) -> tuple[int, str]:
    from tinytrain.bench.runner import Runner

    said: list[str] = []
    r = Runner(tmp, progress=said.append, fingerprint="f")
    r.rows_dir.mkdir(parents=True)
    (r.rows_dir / "row.json").write_text('{"row": {"status": "ok", "mod')
    assert r._cached("row") is None
    return 0, said[0]


# ---- ELF files given to the runner ------------------------------------------------------------------------


def tiny_arm_elf() -> bytes:
    """A minimal 32-bit ARM executable: the ELF header, one PT_LOAD program header, 256 bytes of code at
    file offset 0x1000 loaded at address 0 (the m7 board's flash)."""
    import struct

    ehdr = struct.pack(
        "<4s5B7xHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, 0, 2, 40, 1, 0, 52, 0, 0x05000000, 52, 32, 1, 40, 0, 0
    )
    phdr = struct.pack("<8I", 1, 0x1000, 0, 0, 0x100, 0x100, 5, 0x1000)
    body = ehdr + phdr
    return body + bytes(0x1000 - len(body)) + bytes(range(256))


def _elf_case(make: Callable[[bytes], bytes]) -> Case:
    def run(tmp: Path) -> tuple[int, str]:
        from emulation.runner import run_elf
        from tinytrain import TinytrainError

        f = tmp / "fw.elf"
        f.write_bytes(make(tiny_arm_elf()))
        try:
            run_elf(f, "m7", run_dir=tmp / "run", timeout=5)
        except TinytrainError as exc:
            return 2, str(exc)
        return 0, "ran"

    return run


for _what, _mk in [
    ("ELF truncated to 1/3", lambda b: b[: len(b) // 3]),
    ("ELF truncated to 40 bytes", lambda b: b[:40]),
    ("ELF header only (64 bytes)", lambda b: b[:64]),
    ("not an ELF (text)", lambda b: b"hello world\n"),
]:
    case("runner", _what)(_elf_case(_mk))


@case("runner", "run_elf timeout=0")
def _elf_timeout0(tmp: Path) -> tuple[int, str]:
    from emulation.runner import run_elf
    from tinytrain import TinytrainError

    try:
        run_elf(tmp / "x.elf", "m7", timeout=0)
    except TinytrainError as exc:
        return 2, str(exc)
    return 0, "ran"


# ---- infer inputs ---------------------------------------------------------------------------------------


@case("infer", "--input is a pickled object array")
def _infer_pickle(tmp: Path) -> tuple[int, str]:
    f = tmp / "x.npy"
    np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return _cli(["infer", "--model", "mcunet-5fps", "--input", str(f)])


@case("infer", "--input of the wrong shape")
def _infer_shape(tmp: Path) -> tuple[int, str]:
    f = tmp / "x.npy"
    np.save(f, np.zeros((2, 2), np.int8))
    return _cli(["infer", "--model", "mcunet-5fps", "--input", str(f)])


# ---- imported model files and the user's data (their rows live in catalog_files.py) ----------------------

from . import catalog_files  # noqa: E402, F401  (registers its cases here, in table order)

# ---- process-level faults (QEMU in a child process) -----------------------------------------------------


def _signal_case(sig: signal.Signals) -> Case:
    def run(tmp: Path) -> tuple[int, str]:
        proc = start([*SHORT_JOB, "--steps", "3000"])
        qemu = wait_for_child(proc.pid, "qemu-system-arm")
        time.sleep(0.3)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        left = survivors([qemu] if qemu else [])
        return proc.returncode, err.strip().splitlines()[-1] + (
            "; QEMU left running" if left else "; no qemu-system-arm left"
        )

    return run


for _sig, _code in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)):
    case(
        "signals",
        f"{_sig.name} to a running emulate",
        _code,
        process=True,
        expect_in="no qemu-system-arm left",
    )(_signal_case(_sig))


@case("signals", "QEMU killed from outside (SIGKILL)", expect_code=4, process=True, expect_in="not a timeout")
def _qemu_killed(tmp: Path) -> tuple[int, str]:
    proc = start([*SHORT_JOB, "--steps", "3000"])
    qemu = wait_for_child(proc.pid, "qemu-system-arm")
    time.sleep(0.3)
    if qemu:
        os.kill(qemu, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    lines = err.strip().splitlines()
    return proc.returncode, next((ln for ln in lines if "error" in ln), lines[-1])


@case(
    "signals",
    "emulation exceeds --timeout 1.5",
    expect_code=3,
    process=True,
    expect_in="timed out after 1.5 s",
)
def _timeout(tmp: Path) -> tuple[int, str]:
    proc = start([*SHORT_JOB, "--steps", "3000", "--timeout", "1.5"])
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    return proc.returncode, next((ln for ln in lines if "error" in ln), lines[-1])
