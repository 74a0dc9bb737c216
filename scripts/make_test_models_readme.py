"""README.md of tests/models/data, written from manifest.json by make_test_models.py (oracle step)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

HEADER = """\
# Test models (generated: do not edit by hand)

Small models built with the real tools by `scripts/make_test_models.py`, committed so that the tests need
only `tflite-micro` and `onnxruntime` (never TensorFlow). Every good model has an oracle file `NAME.io.npz`
with {n} seeded inputs and the reference runtime's outputs on them, so an importer is checked without
running anything else:

- `.tflite` (oracle: TFLite Micro's host interpreter): `x` = inputs `[{n}, ...]` in the model's layout
  (NHWC, NWC for 1-D, NC) and input dtype (int8 over the full range [-128, 127]; float32 uniform in
  [-1, 1) for the float-I/O model), `y` = outputs `[{n}, ...]` in the output dtype.
- `.onnx` (oracle: onnxruntime's CPU provider, default graph optimizations, 1 thread): the model's float
  input lies exactly on the grid of the QuantizeLinear that reads it, so the file stores int8:
  `x_q` `[{n}, C, H, W]` (or `[{n}, C, W]`), `x_scale`, `x_zero_point`; the float input fed was
  `((x_q.astype(float32) - x_zero_point) * x_scale).astype(float32)`. The float output is exactly
  on the final DequantizeLinear's grid: `y_q` (int8), `y_scale`, `y_zero_point`, i.e. the output was
  `(y_q - y_zero_point) * y_scale`. `y_noopt` (float) is stored only when a session with
  `ORT_DISABLE_ALL` (the float simulation of QDQ) gives other outputs; the manifest's
  `oracle_lsb_diff_optimized_vs_unoptimized` says by how many LSB at most (0 for every file now).

`manifest.json` holds, per file, the ops (ONNX ops outside the default domain as `com.microsoft.X`),
input/output names, shapes, dtypes, scales and zero points, and the tool versions.
`tests/models/test_model_files.py` re-runs every oracle and checks shapes, dtypes and determinism.
Conventions of the converters worth knowing: Keras' dynamic batch gives `shape_signature` -1 in
dimension 0 (the files keep it, as deployed models do); a Keras Conv1D or 1-D pool arrives as
EXPAND_DIMS -> CONV_2D / MAX_POOL_2D -> RESHAPE; a Flatten with a dynamic batch computes its shape at
run time (SHAPE, STRIDED_SLICE, PACK -> RESHAPE); quantize_static folds ReLU/ReLU6 into the output
quantizer (no Relu/Clip node remains), leaves a pool alone in float (so the ONNX pools follow a conv),
and writes a Gemm in QOperator form as `com.microsoft.QGemm`.

## Regenerate

```
python3 -m venv /tmp/tfvenv
/tmp/tfvenv/bin/pip install tensorflow-cpu onnx onnxruntime numpy torch==2.13.0 -c constraints.txt
/tmp/tfvenv/bin/python scripts/make_test_models.py generate          # .tflite, .onnx, manifest.json
PYTHONPATH=. /work/venv/bin/python scripts/make_test_models.py oracle # *.io.npz + this README
```
(`all --oracle-python PY` does both; `--only NAME ...` and `--formats tflite|onnx` restrict a run.)
Everything is seeded ({seed}); weights are drawn by the script (He-normal kernels, non-zero biases,
BatchNorm statistics away from identity: the converter folds them), calibration is {calib} inputs
uniform in [-1, 1).

## Running a model on the host (the APIs that work)

TFLite Micro (`pip install tflite-micro`; note: `import tflite_micro` then `tflite_micro.runtime`, or
`from tflite_micro import runtime`; `import tflite_micro.runtime` fails):
```python
import tflite_micro
interp = tflite_micro.runtime.Interpreter.from_file(path, arena_size=1 << 20)  # or .from_bytes(data, ...)
d = interp.get_input_details(0)   # {{'dtype', 'shape', 'quantization_parameters': {{'scales', 'zero_points',
                                  #   'quantized_dimension'}}}}; get_output_details(0) likewise
interp.set_input(x[None], 0)      # x: one sample, numpy array of d['dtype'], shape d['shape'] (batch 1)
interp.invoke()
y = interp.get_output(0)          # numpy array, shape with the batch dimension
```
The default arena is 10x the file size; the oracle passes `arena_size=1 << 20`.
Ops of a `.tflite` without TensorFlow: the `tflite` package (flatbuffer schema) or `manifest.json`.

onnxruntime:
```python
import onnxruntime as ort
s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
y = s.run(None, {{s.get_inputs()[0].name: x[None]}})[0]
```

## Files

| file | bytes | what | input (layout) | output | quantization | ops |
| --- | ---: | --- | --- | --- | --- | --- |
"""


def _io(d: dict[str, Any]) -> str:
    q = ""
    if d.get("scale"):
        q = f" s={d['scale'][0]:.6g} zp={d['zero_point'][0]}" if len(d["scale"]) == 1 else " per-axis"
    return f"{d['dtype']} {d['shape']}{q}"


def write_readme(data: Path, manifest: dict[str, Any]) -> None:
    from make_test_models import N_CALIB
    from make_test_models_oracle import N_ORACLE

    lines = [HEADER.format(n=N_ORACLE, seed=manifest["seed"], calib=N_CALIB)]
    for entry in manifest["models"].values():
        size = (data / entry["file"]).stat().st_size
        inp = entry.get("inputs", [])
        out = entry.get("outputs", [])
        ins = "<br>".join(_io(d) for d in inp) + (f" ({entry['layout']})" if "layout" in entry else "")
        outs = "<br>".join(_io(d) for d in out)
        ops = " ".join(entry.get("ops", []))
        lines.append(
            f"| `{entry['file']}` | {size} | {entry['what']} | {ins} | {outs} | "
            f"{entry.get('quantization', '')} | {ops} |\n"
        )
    lines.append("\n## Tool versions\n\n")
    for k, v in manifest["versions"].items():
        lines.append(f"- {k}: {v}\n")
    total = sum(p.stat().st_size for p in data.iterdir() if p.is_file())
    lines.append(f"\nTotal size of this directory: {total} bytes.\n")
    fd, tmp = tempfile.mkstemp(dir=data, prefix=".README.md.")
    with os.fdopen(fd, "w") as f:
        f.write("".join(lines))
    os.chmod(tmp, 0o644)
    os.replace(tmp, data / "README.md")
