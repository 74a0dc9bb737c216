"""Shared pieces of the reliability tests: a tiny model directory, in-process CLI calls, child processes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import REPO_ROOT, TinytrainError

TINY_RES = 16


def _conv(
    name: str, cin: int, cout: int, k: int, stride: int, groups: int, xs: float, ys: float
) -> dict[str, Any]:
    return {
        "name": name, "in_channel": cin, "out_channel": cout, "kernel_size": [k, k], "stride": stride,
        "groups": groups, "x_scale": xs, "x_zero": 0, "y_scale": ys, "y_zero": -128,
        "weight": f"{name}/weight", "bias": f"{name}/bias", "w_scales": f"{name}/w_scales",
    }  # fmt: skip


def tiny_model(seed: int = 0) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A valid mcu-int8-mbnet/1 model: stem 3->8 (3x3, stride 2), one inverted-residual block, classifier
    8->4."""
    rng = np.random.default_rng(seed)
    s_in, s1, s2, s3, s4 = 0.0078125, 0.02, 0.03, 0.025, 0.02
    first = {**_conv("first_conv", 3, 8, 3, 2, 1, s_in, s1), "in_shape": TINY_RES}
    first["x_zero"] = 0
    pw1 = _conv("blocks.0.pointwise1", 8, 16, 1, 1, 1, s1, s2)
    dw = _conv("blocks.0.depthwise", 16, 16, 3, 1, 16, s2, s3)
    pw2 = _conv("blocks.0.pointwise2", 16, 8, 1, 1, 1, s3, s4)
    for c in (pw1, dw, pw2):
        c["x_zero"] = -128
    block = {"name": "blocks.0", "pointwise1": pw1, "depthwise": dw, "pointwise2": pw2,
             "residual": {"y_scale": s4, "y_zero": -128}}  # fmt: skip
    cls = _conv("classifier", 8, 4, 1, 1, 1, s4, 0.1)
    cls["x_zero"] = -128
    cls["y_zero"] = 0
    doc = {
        "format": "mcu-int8-mbnet/1",
        "name": "tiny",
        "first_conv": first,
        "blocks": [block],
        "classifier": cls,
    }
    arrays: dict[str, np.ndarray] = {}
    for c in (first, pw1, dw, pw2, cls):
        per = c["in_channel"] // c["groups"]
        k = c["kernel_size"][0]
        arrays[c["weight"]] = rng.integers(-127, 128, (c["out_channel"], per, k, k), dtype=np.int8)
        arrays[c["bias"]] = rng.integers(-2000, 2000, c["out_channel"], dtype=np.int32)
        arrays[c["w_scales"]] = rng.uniform(0.002, 0.01, c["out_channel"]).astype(np.float32)
    return doc, arrays


def write_model(d: Path, doc: Any, arrays: dict[str, np.ndarray] | None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.json").write_text(json.dumps(doc))
    if arrays is not None:
        np.savez(d / "weights.npz", **arrays)
    return d


def tiny_model_dir(d: Path) -> Path:
    doc, arrays = tiny_model()
    return write_model(d, doc, arrays)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`tinytrain ARGV` in this process: (exit status, stdout, stderr). An exception other than SystemExit
    escapes (the caller counts it as a traceback)."""
    from tinytrain.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def clean_error(code: int, err: str) -> bool:
    """A clean refusal: a non-zero status and a one-line message, no traceback."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return (
        code != 0
        and "Traceback" not in err
        and len(lines) >= 1
        and not any(ln.startswith("  File ") for ln in lines)
    )


def outcome_of(fn: Any) -> tuple[str, str]:
    """Call `fn()`: ("ok", "") or ("error", message) for a TinytrainError; any other exception escapes."""
    try:
        fn()
    except TinytrainError as exc:
        return "error", str(exc)
    return "ok", ""


# ---- child processes --------------------------------------------------------------------------------------

CLI = [sys.executable, "-c", "import sys; from tinytrain.cli import main; sys.exit(main())"]
#: A short QEMU training job: ~400 steps of the classifier at 32x32 (a few seconds of QEMU).
SHORT_JOB = [
    "emulate", "--model", "mcunet-5fps", "--scheme", "last", "--dataset", "digits", "--classes", "10",
    "--resolution", "32", "--board", "m7", "--no-eval", "--no-baseline", "--no-save", "--no-profile",
    "--no-reference",
]  # fmt: skip


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg"}


def start(argv: list[str], **kw: Any) -> subprocess.Popen[str]:
    """`tinytrain ARGV` as a child with SIGINT at its default (a background job would inherit it ignored)."""

    def preexec() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(
        [*CLI, *argv], env=env(), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=preexec, **kw,
    )  # fmt: skip


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by init, does not count)."""
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, grandchildren, ...)."""
    parents: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            st = _stat(int(p.name))
            if st is not None:
                parents.setdefault(st[1], []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def wait_for_child(pid: int, name: str, timeout: float = 120.0) -> int | None:
    """The pid of a descendant of `pid` whose command is `name`, once it runs (None if `pid` ends first)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = [c for c in descendants(pid) if comm(c) == name and alive(c)]
        if found:
            return found[0]
        if not alive(pid):
            return None
        time.sleep(0.05)
    return None


def survivors(pids: list[int], grace: float = 5.0) -> list[int]:
    """Those of `pids` still running after up to `grace` seconds."""
    t0 = time.monotonic()
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() - t0 > grace:
            return left
        time.sleep(0.05)


def normalize(text: str, tmp: Path | None = None) -> str:
    """A message with run-specific parts (temporary paths, durations) made stable for the docs table."""
    if tmp is not None:
        text = text.replace(str(tmp), "<tmp>")
    text = text.replace(str(REPO_ROOT), "<repo>")
    text = re.sub(r"(\(signal \d+\)) after \d+(\.\d+)? s\b", r"\1 after N s", text)
    return text
