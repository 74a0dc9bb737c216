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
EXPAND_DIMS -> CONV_2D / MAX_POOL_2D -> RESHAPE (a `tf.squeeze` also arrives as RESHAPE: this converter
writes no SQUEEZE); a Flatten with a dynamic batch computes its shape at
run time (SHAPE, STRIDED_SLICE, PACK -> RESHAPE); quantize_static folds ReLU/ReLU6 into the output
quantizer (no Relu/Clip node remains), leaves a pool alone in float (so the ONNX pools follow a conv),
and writes a Gemm in QOperator form as `com.microsoft.QGemm`.

## Regenerate

```
python3 -m venv /tmp/tfvenv   # generation only: TensorFlow never enters the project's environment
/tmp/tfvenv/bin/pip install tensorflow-cpu onnx onnxruntime numpy torch==2.13.0 -c constraints.txt
/tmp/tfvenv/bin/python scripts/make_test_models.py all --oracle-python PROJECT_VENV/bin/python
```
`all` = `generate` (tfvenv: .tflite, .onnx, manifest.json), `oracle` (any python with numpy,
tflite-micro, onnx, onnxruntime: *.io.npz and this README) and `crosscheck` (tfvenv: TFLite vs TFLite
Micro, below); each step also runs alone. `--only NAME ...` and `--formats tflite onnx` restrict
`generate` (run `oracle` after it). A full run reproduces every committed file byte for byte.
Everything is seeded ({seed}); weights are drawn by the script (He-normal kernels, non-zero biases,
BatchNorm statistics away from identity: the converter folds them), calibration is {calib} inputs
uniform in [-1, 1).

## Running a model on the host (the APIs that work)

TFLite Micro (`pip install tflite-micro`; note: `import tflite_micro` then `tflite_micro.runtime`, or
`from tflite_micro import runtime`; `import tflite_micro.runtime` fails):
```python
import tflite_micro

# or .from_bytes(data, arena_size=...)
interp = tflite_micro.runtime.Interpreter.from_file(path, arena_size=1 << 20)
# {{'dtype', 'shape', 'quantization_parameters': {{'scales', 'zero_points', 'quantized_dimension'}}}};
# get_output_details(0) likewise
d = interp.get_input_details(0)
# x: one sample, a numpy array of d['dtype'] and shape d['shape'] (batch 1)
interp.set_input(x[None], 0)
interp.invoke()
y = interp.get_output(0)  # numpy array, shape with the batch dimension
```
The default arena is 10x the file size; the oracle passes `arena_size=1 << 20`.
The flatbuffer without TensorFlow: `tflite_micro.runtime.convert_bytearray_to_object(bytearray(data))`
returns the schema's object tree (`.subgraphs[0].operators[i].opcodeIndex`, `.builtinOptions`,
`.tensors[j].type / .shape / .shapeSignature / .quantization`); `tflite_micro.runtime.schema_fb` has the
enums (`BuiltinOperator`, `TensorType`, `ActivationFunctionType`, `Padding`) and
`runtime.get_builtin_code_from_operator_code(model.operatorCodes[k])` the op code
(see `tests/models/test_model_files.py`).

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


CROSSCHECK = """
## TFLite Micro is the oracle, not TFLite

`make_test_models.py crosscheck` ran TensorFlow's `tf.lite.Interpreter` on every `.tflite` oracle's
inputs, with its reference kernels (`OpResolverType.BUILTIN_REF`) and with its default optimized
kernels, and counted the output elements that differ from TFLite Micro's (in output LSB; in float
units for the float-I/O model). An importer that must equal TFLite Micro cannot use TFLite as its
reference. The reference-kernel differences below were traced (with TF 2.21, TFLM 0.dev20261023) to
FULLY_CONNECTED with per-channel weights: recomputing its output from its input tensor, TFLite Micro
rounds twice, the gemmlowp way (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT), where
TFLite's reference per-channel FULLY_CONNECTED rounds once (`(acc * M + 2^(n-1)) >> n`); both use
M, shift = QuantizeMultiplier(double(s_in) * double(s_w[c]) / double(s_out)). Models with any difference:

| file | TFLite reference kernels vs TFLM | TFLite optimized kernels vs TFLM |
| --- | --- | --- |
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
    checked = {
        n: e for n, e in manifest["models"].items() if "tflite_builtin_ref_vs_tflm" in e and "oracle" in e
    }
    if checked:
        lines.append(CROSSCHECK)
        for e in checked.values():
            ref, opt = e["tflite_builtin_ref_vs_tflm"], e["tflite_optimized_vs_tflm"]
            if ref["elements"] or opt["elements"]:
                lines.append(
                    f"| `{e['file']}` | {ref['elements']} of {ref['of']} (max {ref['max']:g}) | "
                    f"{opt['elements']} of {opt['of']} (max {opt['max']:g}) |\n"
                )
        same = [n for n, e in checked.items() if not e["tflite_optimized_vs_tflm"]["elements"]]
        lines.append(f"\nIdentical to TFLite Micro with both kernel sets: {', '.join(same) or 'none'}.\n")
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
