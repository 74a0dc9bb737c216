"""The oracle step of make_test_models.py: needs only numpy, tflite-micro and onnxruntime (no TensorFlow).

For every good model in the manifest: N_ORACLE seeded inputs and the reference outputs
(TFLite Micro's host interpreter for .tflite, onnxruntime's CPU provider for .onnx) -> NAME.io.npz;
then README.md from the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

N_ORACLE = 32
ARENA = 1 << 20  # TFLM tensor arena for the host interpreter: ample for every test model


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def dump_json(obj: Any) -> bytes:
    """Indented JSON with each flat list on one line (shapes, scales, ops)."""
    text = json.dumps(obj, indent=1)
    text = re.sub(
        r"\[([^\[\]{}]*)\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)).strip() + "]", text
    )
    return (text + "\n").encode()


def _rng(seed: int, name: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:oracle:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def oracle_inputs(seed: int, name: str, shape: list[int], dtype: str) -> np.ndarray:
    """N_ORACLE inputs of the model's input shape without its batch dimension: full-range integers
    for an integer input, uniform in [-1, 1) (the calibration range) for a float one."""
    rng = _rng(seed, name)
    full = (N_ORACLE, *shape[1:])
    if dtype == "float32":
        return rng.uniform(-1.0, 1.0, full).astype(np.float32)
    info = np.iinfo(np.dtype(dtype))
    return rng.integers(info.min, info.max, full, endpoint=True, dtype=np.dtype(dtype))


def run_tflm(path: Path, xs: np.ndarray) -> np.ndarray:
    import tflite_micro

    interp = tflite_micro.runtime.Interpreter.from_file(str(path), arena_size=ARENA)
    outs = []
    for x in xs:
        interp.set_input(x[None], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0))[0])
    return np.stack(outs)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())


def oracle_tflite(data: Path, seed: int, name: str, entry: dict[str, Any]) -> None:
    inp, out = entry["inputs"][0], entry["outputs"][0]
    xs = oracle_inputs(seed, name, inp["shape"], inp["dtype"])
    ys = run_tflm(data / entry["file"], xs)
    if ys.shape[1:] != tuple(out["shape"][1:]) or ys.dtype != np.dtype(out["dtype"]):
        raise SystemExit(f"{entry['file']}: TFLM output {ys.dtype}{ys.shape} != manifest {out}")
    entry["oracle"] = f"{name}.io.npz"
    _save_npz(data / entry["oracle"], x=xs, y=ys)
    print(f"{entry['oracle']}: x {xs.dtype}{xs.shape} y {ys.dtype}{ys.shape}")


def _versions_oracle() -> dict[str, str]:
    import onnxruntime
    import tflite_micro

    return {
        "python (oracle)": platform.python_version(),
        "numpy (oracle)": np.__version__,
        "tflite_micro (oracle)": tflite_micro.__version__,
        "onnxruntime (oracle)": onnxruntime.__version__,
    }


def cmd_oracle(data: Path, only: set[str] | None) -> None:
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["versions"].update(_versions_oracle())
    seed = int(manifest["seed"])
    for name, entry in manifest["models"].items():
        if entry.get("bad") or (only and name not in only):
            continue
        if entry["format"] == "tflite":
            oracle_tflite(data, seed, name, entry)
        else:
            from make_test_models_onnx import oracle_onnx

            oracle_onnx(data, seed, name, entry)
    write_atomic(data / "manifest.json", dump_json(manifest))
    from make_test_models_readme import write_readme

    write_readme(data, manifest)
