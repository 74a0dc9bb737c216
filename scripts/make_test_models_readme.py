"""README.md of tests/models/data, written from manifest.json by make_test_models.py (oracle step)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

HEADER = """\
# Test models (generated: do not edit by hand)

Small models built with the real tools by `scripts/make_test_models.py`, committed so that the tests need
only `tflite-micro` and `onnxruntime` (never TensorFlow). Every good model has an oracle file `NAME.io.npz`:
`x` = {n} seeded inputs (batch dimension first, the model's source layout and input dtype), `y` = the
outputs of the reference runtime on them (TFLite Micro's host interpreter for `.tflite`, onnxruntime's CPU
provider for `.onnx`). An importer is checked against `y` without running anything else.
`manifest.json` holds, per file, the ops, input/output shapes, dtypes, scales and zero points, and the
tool versions. `tests/models/test_model_files.py` re-runs every oracle and checks shapes and determinism.

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
