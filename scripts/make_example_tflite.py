#!/usr/bin/env python3
"""Make docs/examples/basicmotions_conv1d.tflite: the README's "your own model", a trained int8 .tflite.

A small Keras Conv1D activity classifier trained on BasicMotions' 40 training recordings, converted by
TensorFlow's TFLiteConverter to a full-integer int8 model (int8 input and output, per-channel int8 weights,
representative dataset), as one deploys it with TFLite Micro. Two steps, two environments (TensorFlow only
generates the file; it is never a dependency of tinytrain or its CI):

  generate  needs tensorflow-cpu (e.g. /work/tfvenv): train (seeded), convert, write the .tflite and
            `basicmotions_conv1d.json` (float accuracies, the input quantization, tool versions);
  evaluate  needs tinytrain's environment: import the .tflite with tinytrain (TFLite Micro's integer
            numerics, bit-exact with the interpreter and the device), measure the int8 accuracies, add them to
            the JSON and write `basicmotions_conv1d.md` (provenance, figures, licence);
  all       generate, then evaluate in --python.

    PYTHONPATH=. /work/tfvenv/bin/python scripts/make_example_tflite.py all --python /work/venv/bin/python

The inputs are what `tinytrain emulate --dataset sensor` (and a long-format CSV with `--normalize standard`)
gives the device: per channel standardized with the mean / population std of the archive's 40 training
recordings (`tinytrain.data.sensor`, `tinytrain.data.quantize.Normalization`), then `quantize(x, scale, zero)`
with the model's input quantization. The float net trains on exactly those values (quantized with
`INPUT_SCALE` / `INPUT_ZERO`, what the converter derives from the representative dataset clipped to
+-`INPUT_CLIP`, then dequantized); `generate` checks that the converter wrote them.

Figures: accuracy on the archive's 40 test recordings as recorded (the pretraining task) and worn rotated
(the rotated-watch scenario's shift, before any adaptation), and on the 20 held-out rotated recordings that
`--dataset sensor` scores (seed 0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_test_models_oracle import dump_json, write_atomic  # noqa: E402

from tinytrain.data.quantize import Normalization, quantize  # noqa: E402
from tinytrain.data.sensor import CLASS_NAMES, basic_motions, rotate, sensor_scenario  # noqa: E402

OUT_DIR = ROOT / "docs" / "examples"
NAME = "basicmotions_conv1d"
SEED = 0
INPUT_CLIP = 4.0  # standard deviations: the representative dataset's range of the input
INPUT_SCALE = 2 * INPUT_CLIP / 255  # the converter's scale for a [-4, 4] calibration range ...
INPUT_ZERO = -1  # ... and its zero point (-128 - min / scale = -0.5, which it rounds to -1)
EPOCHS = 150
BATCH = 8
LR = 3e-3


# --------------------------------------------------------------------------------------------------
# the data, as the device sees it
# --------------------------------------------------------------------------------------------------


def splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Normalized float recordings `[N, 100, 6]` (NWC) and labels: the pretraining split, the archive's test
    recordings as recorded and worn rotated, and the scenario's held-out rotated recordings (seed 0)."""
    xa, ya, xb, yb = basic_motions()
    norm = Normalization.fit("standard", xa)
    sc = sensor_scenario(SEED)
    return {
        "train": (norm.apply(xa), ya),
        "test as recorded": (norm.apply(xb), yb),
        "test worn rotated": (norm.apply(rotate(xb, np.diag([-1.0, -1.0, 1.0]))), yb),
        "scenario held-out (seed 0)": sc.test,
    }


def device_values(x: np.ndarray, scale: float, zero: int) -> np.ndarray:
    """The real values of the device's int8 input: quantize, then dequantize."""
    return ((quantize(x, scale, zero).astype(np.float64) - zero) * scale).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# generate (TensorFlow)
# --------------------------------------------------------------------------------------------------


def build(keras: Any) -> Any:
    """Conv1D blocks + max pooling + global average pooling + Dense: [N, 100, 6] -> logits [N, 4]."""
    from keras import layers as L

    x = keras.Input(shape=(100, 6), name="imu")
    y = L.Conv1D(12, 5, padding="same", activation="relu", name="conv1")(x)
    y = L.MaxPooling1D(2, name="pool1")(y)
    y = L.Conv1D(16, 5, padding="same", activation="relu", name="conv2")(y)
    y = L.MaxPooling1D(2, name="pool2")(y)
    y = L.Conv1D(24, 3, padding="same", activation="relu", name="conv3")(y)
    y = L.GlobalAveragePooling1D(name="gap")(y)
    y = L.Dense(4, name="classifier")(y)
    return keras.Model(x, y, name=NAME)


def generate(out_dir: Path) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import keras
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()

    data = splits()
    xt, yt = data["train"]
    model = build(keras)
    model.compile(
        optimizer=keras.optimizers.Adam(LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        device_values(xt, INPUT_SCALE, INPUT_ZERO),
        yt,
        batch_size=BATCH,
        epochs=EPOCHS,
        shuffle=True,
        verbose=0,
    )

    calib = np.clip(xt, -INPUT_CLIP, INPUT_CLIP).astype(np.float32)

    def representative() -> Iterator[list[np.ndarray]]:
        for x in calib:
            yield [x[None]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    tfl = bytes(conv.convert())

    interp = tf.lite.Interpreter(model_content=tfl)
    inp = interp.get_input_details()[0]
    scale, zero = (float(v) for v in inp["quantization"])
    zero = int(zero)
    if not np.isclose(scale, INPUT_SCALE, rtol=1e-6) or zero != INPUT_ZERO:
        raise SystemExit(
            f"the converter wrote input scale {scale} zero {zero}; the float net trained on "
            f"{INPUT_SCALE} / {INPUT_ZERO}: set INPUT_SCALE / INPUT_ZERO and run again"
        )
    ops = [d["op_name"] for d in interp._get_ops_details()]  # noqa: SLF001 (no public op listing)

    float_acc = {}
    for what, (x, y) in data.items():
        logits = model.predict(device_values(x, scale, zero), verbose=0)
        float_acc[what] = {"n": int(len(y)), "float": float(np.mean(np.argmax(logits, 1) == y))}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / f"{NAME}.tflite", tfl)
    meta = {
        "file": f"{NAME}.tflite",
        "seed": SEED,
        "recipe": {"optimizer": "Adam", "lr": LR, "epochs": EPOCHS, "batch": BATCH},
        "input": {"shape": [int(v) for v in inp["shape"]], "scale": scale, "zero": zero, "clip": INPUT_CLIP},
        "ops": ops,
        "params": int(model.count_params()),
        "accuracy": float_acc,
        "bytes": len(tfl),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    }
    write_atomic(out_dir / f"{NAME}.json", dump_json(meta))
    for k, v in float_acc.items():
        print(f"{k:>28}: float {100 * v['float']:.1f} % (n={v['n']})")
    print(f"wrote {out_dir / (NAME + '.tflite')} ({len(tfl)} B, ops {ops})")
    return meta


# --------------------------------------------------------------------------------------------------
# evaluate (tinytrain)
# --------------------------------------------------------------------------------------------------


def int8_logits(graph: Any, x8_nwc: np.ndarray) -> np.ndarray:
    """tinytrain's int8 logits (TFLite Micro numerics) for int8 inputs `[N, 100, 6]`."""
    from tinytrain.reference.inference import run_forward

    return np.stack([run_forward(graph, xi[None])[graph.output].reshape(-1) for xi in x8_nwc])


def evaluate(out_dir: Path) -> dict[str, Any]:
    from tinytrain.models import import_model

    meta = json.loads((out_dir / f"{NAME}.json").read_text())
    graph = import_model(out_dir / f"{NAME}.tflite")
    q = graph.tensors[graph.input]
    assert (float(q.scale), int(q.zero)) == (meta["input"]["scale"], meta["input"]["zero"])
    for what, (x, y) in splits().items():
        pred = np.argmax(int8_logits(graph, quantize(x, q.scale, q.zero)), 1)
        meta["accuracy"][what]["int8"] = float(np.mean(pred == y))
    meta["macs"] = int(graph.macs())
    write_atomic(out_dir / f"{NAME}.json", dump_json(meta))
    write_atomic(out_dir / f"{NAME}.md", note(meta).encode())
    for k, v in meta["accuracy"].items():
        print(f"{k:>28}: float {100 * v['float']:.1f} %, int8 {100 * v['int8']:.1f} % (n={v['n']})")
    return meta


def note(meta: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {k} | {v['n']} | {100 * v['float']:.1f} % | {100 * v['int8']:.1f} % |"
        for k, v in meta["accuracy"].items()
    )
    r, i, v = meta["recipe"], meta["input"], meta["versions"]
    ops = ", ".join(sorted(set(meta["ops"])))
    return f"""# basicmotions_conv1d.tflite: the README's "your own model" example

A full-integer int8 `.tflite` as TFLite Micro deploys it, made by `scripts/make_example_tflite.py` (seeded,
reproducible; it writes this note and `{NAME}.json`; TensorFlow {v["tensorflow"]}, Keras {v["keras"]}).

- Network (Keras): Conv1D(12, k5, same, ReLU), MaxPooling1D(2), Conv1D(16, k5, same, ReLU),
  MaxPooling1D(2), Conv1D(24, k3, same, ReLU), GlobalAveragePooling1D, Dense(4):
  {meta["params"]:,} parameters, {meta["macs"]:,} MACs per inference. TFLite ops: {ops}.
- Input `{i["shape"]}` (NWC: 100 steps of 6 channels, accelerometer x/y/z then gyroscope x/y/z), int8 scale
  {i["scale"]:.8g}, zero point {i["zero"]}, on per-channel standardized data (mean / population std of the
  archive's 40 training recordings: what `--dataset sensor` and a CSV with `--normalize standard` give);
  output 4 int8 logits, classes in index order {", ".join(CLASS_NAMES)}.
- Training: float Keras on the archive's 40 training recordings, on the int8 input's values (quantized and
  dequantized), {r["optimizer"]} {r["lr"]:g}, {r["epochs"]} epochs, batch {r["batch"]}, seed {meta["seed"]}.
- Conversion: `tf.lite.TFLiteConverter.from_keras_model`, `optimizations = [tf.lite.Optimize.DEFAULT]`,
  `representative_dataset` = the 40 training recordings clipped to +-{i["clip"]:g} standard deviations,
  `supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]`, int8 input and output.

Accuracy, float Keras vs the int8 file (tinytrain's import: TFLite Micro's integer numerics, bit for bit):

| recordings | n | float | int8 |
|---|---|---|---|
{rows}

"Worn rotated" is the rotated-watch scenario's shift (180 degrees about the watch's z axis; docs/data.md),
before any adaptation; "scenario held-out" are the 20 rotated recordings `tinytrain emulate --dataset sensor`
scores (the other 20 are the ones the device trains on).

## Licence

The weights are derived from BasicMotions (UEA/UCR time-series classification archive, Bagnall et al. 2018,
https://www.timeseriesclassification.com/description.php?Dataset=BasicMotions), as redistributed in aeon's
wheel (BSD 3-Clause, https://github.com/aeon-toolkit/aeon); the data files and their hashes are in
`tinytrain/data/basicmotions/` (see its README). The archive asks users to cite it. The network, the script
and this file are part of tinytrain and under its licence.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("generate", "evaluate", "all"))
    ap.add_argument("--out", default=str(OUT_DIR), help="directory of the files (default docs/examples)")
    ap.add_argument("--python", default=sys.executable, help="`all`: the interpreter of tinytrain's venv")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.step in ("generate", "all"):
        generate(out)
    if args.step == "evaluate":
        evaluate(out)
    elif args.step == "all":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([args.python, __file__, "evaluate", "--out", str(out)], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
