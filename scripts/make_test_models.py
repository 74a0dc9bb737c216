#!/usr/bin/env python3
"""Build the committed test models under tests/models/data with the real tools.

Three steps, two environments (TensorFlow is never a dependency of tinytrain or its CI):

  generate  needs tensorflow-cpu, torch, onnx, onnxruntime (a separate venv):
            Keras models -> tf.lite.TFLiteConverter (full-integer int8, representative dataset);
            PyTorch models -> torch.onnx.export -> onnxruntime.quantization.quantize_static (QDQ, QOperator);
            the bad inputs for the importer's error tests; manifest.json.
  oracle    needs tflite-micro, onnx, onnxruntime, numpy (the project venv): for every good model, 32 seeded
            inputs and the outputs of the TFLite Micro interpreter / onnxruntime -> NAME.io.npz;
            README.md from the manifest.

  crosscheck  informative, needs tensorflow-cpu: runs TFLite's own interpreter (reference and
            optimized kernels) on each .tflite oracle's inputs, records how far it is from TFLite Micro.

  all       generate, `oracle` in --oracle-python (default: this interpreter), crosscheck.

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu onnx onnxruntime numpy torch==2.13.0 -c constraints.txt
    /tmp/tfvenv/bin/python scripts/make_test_models.py all --oracle-python .venv/bin/python

Everything is seeded and a full run reproduces the committed files byte for byte; the manifest records
the tool versions that produced them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_test_models_oracle import dump_json, write_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "models" / "data"
MANIFEST = "manifest.json"
SEED = 20261205
N_CALIB = 64
N_ORACLE = 32


def _rng(name: str) -> np.random.Generator:
    """A generator seeded by SEED and the model name, so each model is reproducible on its own."""
    digest = hashlib.sha256(f"{SEED}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# --------------------------------------------------------------------------------------------------
# TFLite (Keras + TFLiteConverter)
# --------------------------------------------------------------------------------------------------


def _keras_specs() -> list[dict[str, Any]]:
    """name, builder, input shape (without batch), what it is, conversion kind."""
    import keras
    from keras import layers as L

    def seq(shape: tuple[int, ...], *ls: Any, batch: int | None = None) -> Callable[[], Any]:
        """A chain of layers. batch=None (Keras' default) gives the converter's usual dynamic batch
        (shape_signature -1); batch=1 a fully static graph (a Flatten is then one RESHAPE)."""

        def build() -> Any:
            x = keras.Input(shape=shape, batch_size=batch)
            y = x
            for layer in ls:
                y = layer(y)
            return keras.Model(x, y)

        return build

    def residual_add() -> Any:
        x = keras.Input(
            shape=(8, 8, 4),
        )
        y = L.Conv2D(4, 3, padding="same")(x)
        return keras.Model(x, L.Add()([x, y]))

    def add_relu() -> Any:
        x = keras.Input(
            shape=(8, 8, 4),
        )
        a = L.Conv2D(4, 1)(x)
        b = L.Conv2D(4, 3, padding="same")(x)
        return keras.Model(x, L.ReLU()(L.Add()([a, b])))

    def concat() -> Any:
        x = keras.Input(
            shape=(8, 8, 4),
        )
        a = L.Conv2D(4, 1, activation="relu")(x)
        b = L.Conv2D(6, 3, padding="same")(x)
        return keras.Model(x, L.Concatenate(axis=-1)([a, b]))

    def hard_swish() -> Any:
        x = keras.Input(
            shape=(8, 8, 4),
        )
        y = L.Conv2D(8, 3, padding="same")(x)
        return keras.Model(x, L.Activation("hard_swish")(y))

    def squeeze_excite() -> Any:
        x = keras.Input(
            shape=(8, 8, 8),
        )
        s = L.GlobalAveragePooling2D(keepdims=True)(x)
        s = L.Conv2D(4, 1, activation="relu")(s)
        s = L.Conv2D(8, 1, activation="sigmoid")(s)
        return keras.Model(x, L.Multiply()([x, s]))

    def two_inputs() -> Any:
        a = keras.Input(
            shape=(8, 8, 4),
        )
        b = keras.Input(
            shape=(8, 8, 4),
        )
        return keras.Model([a, b], L.Add()([L.Conv2D(4, 1)(a), b]))

    def two_outputs() -> Any:
        x = keras.Input(
            shape=(8, 8, 4),
        )
        y = L.Conv2D(4, 3, padding="same", activation="relu")(x)
        return keras.Model(x, [L.Conv2D(2, 1)(y), L.GlobalAveragePooling2D()(y)])

    def mobilenet_tiny() -> Any:
        return _mobilenet_tiny(keras)

    def sensor_conv1d() -> Any:
        return _sensor_conv1d(keras, softmax=False)

    def sensor_conv1d_softmax() -> Any:
        return _sensor_conv1d(keras, softmax=True)

    img = (10, 10, 3)
    small = (8, 8, 4)
    specs: list[dict[str, Any]] = [
        # the two realistic nets first: the importer starts with them
        dict(
            name="mobilenet_tiny",
            build=mobilenet_tiny,
            what="MobileNetV2-style: stem conv 3x3 s2 + BN + ReLU6, 3 inverted-residual blocks (expand 1x1, "
            "depthwise 3x3 s1/s2, project 1x1; residual ADD where shapes match), 1x1 conv, global average "
            "pool (MEAN), dense head of 10 logits",
        ),
        dict(
            name="sensor_conv1d",
            build=sensor_conv1d,
            what="sensor net like BasicMotions (100 steps x 6 channels): Conv1D(16,k5)+BN+ReLU, "
            "MaxPool1D(2), Conv1D(24,k5)+BN+ReLU, MaxPool1D(2), Conv1D(32,k3,s2)+ReLU, "
            "global average pool, dense head of 4",
        ),
        dict(
            name="sensor_conv1d_float_io",
            build=sensor_conv1d_softmax,
            io="float",
            what="sensor_conv1d's architecture with a trailing SOFTMAX, float32 input/output: "
            "QUANTIZE at the input, DEQUANTIZE at the output (how many deployed models look)",
        ),
        dict(
            name="conv2d_3x3_same_s1_relu",
            build=seq(img, L.Conv2D(8, 3, padding="same", activation="relu")),
            what="CONV_2D 3x3, SAME, stride 1, fused RELU",
        ),
        dict(
            name="conv2d_3x3_same_s1_relu6",
            build=seq(img, L.Conv2D(8, 3, padding="same", activation="relu6")),
            what="CONV_2D 3x3, SAME, stride 1, fused RELU6",
        ),
        dict(
            name="conv2d_3x3_same_s1_none",
            build=seq(img, L.Conv2D(8, 3, padding="same")),
            what="CONV_2D 3x3, SAME, stride 1, no activation",
        ),
        dict(
            name="conv2d_3x3_same_s2",
            build=seq(img, L.Conv2D(8, 3, strides=2, padding="same", activation="relu")),
            what="CONV_2D 3x3, SAME, stride 2 on an even input (10): TFLite pads 0 before, 1 after",
        ),
        dict(
            name="conv2d_3x3_same_s2_odd",
            build=seq((9, 9, 3), L.Conv2D(8, 3, strides=2, padding="same", activation="relu")),
            what="CONV_2D 3x3, SAME, stride 2 on an odd input (9): 1 before, 1 after",
        ),
        dict(
            name="conv2d_1x3_same",
            build=seq(img, L.Conv2D(8, (1, 3), padding="same", activation="relu")),
            what="CONV_2D kernel 1x3 (height x width), SAME, stride 1",
        ),
        dict(
            name="conv2d_3x1_same_s2x1",
            build=seq(img, L.Conv2D(8, (3, 1), strides=(2, 1), padding="same")),
            what="CONV_2D kernel 3x1, SAME, stride 2x1 (non-square kernel and stride)",
        ),
        dict(
            name="conv2d_3x3_valid",
            build=seq(img, L.Conv2D(8, 3, padding="valid", activation="relu")),
            what="CONV_2D 3x3, VALID, stride 1",
        ),
        dict(
            name="conv2d_5x5_valid_s2",
            build=seq(img, L.Conv2D(4, 5, strides=2, padding="valid")),
            what="CONV_2D 5x5, VALID, stride 2",
        ),
        dict(
            name="conv2d_1x1",
            build=seq(small, L.Conv2D(8, 1, activation="relu6")),
            what="CONV_2D 1x1 (pointwise), fused RELU6",
        ),
        dict(
            name="depthwise_3x3_s1",
            build=seq(img, L.DepthwiseConv2D(3, padding="same", activation="relu6")),
            what="DEPTHWISE_CONV_2D 3x3, SAME, stride 1, multiplier 1, fused RELU6",
        ),
        dict(
            name="depthwise_3x3_s2",
            build=seq(img, L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")),
            what="DEPTHWISE_CONV_2D 3x3, SAME, stride 2 (asymmetric padding), fused RELU",
        ),
        dict(
            name="depthwise_3x3_valid_m2",
            build=seq(small, L.DepthwiseConv2D(3, padding="valid", depth_multiplier=2)),
            what="DEPTHWISE_CONV_2D 3x3, VALID, depth multiplier 2, no activation",
        ),
        dict(
            name="fully_connected_flatten",
            build=seq((4, 4, 4), L.Flatten(), L.Dense(10), batch=1),
            what="Flatten + Dense, static batch 1: RESHAPE then FULLY_CONNECTED (64 -> 10)",
        ),
        dict(
            name="fully_connected_flatten_dynamic_batch",
            build=seq((4, 4, 4), L.Flatten(), L.Dense(10)),
            what="Flatten + Dense with Keras' dynamic batch: the converter computes the RESHAPE's shape at "
            "run time (SHAPE, STRIDED_SLICE, PACK), constant for batch 1",
        ),
        dict(
            name="fully_connected_relu",
            build=seq((32,), L.Dense(16, activation="relu")),
            what="FULLY_CONNECTED 32 -> 16 with fused RELU on a rank-2 input",
        ),
        dict(
            name="dense_softmax",
            build=seq((32,), L.Dense(10), L.Softmax()),
            what="FULLY_CONNECTED 32 -> 10 then SOFTMAX (the importer drops a trailing softmax for training)",
        ),
        dict(
            name="add_residual",
            build=residual_add,
            what="ADD of the input and a CONV_2D 3x3 of it (operands with different scales)",
        ),
        dict(
            name="add_relu",
            build=add_relu,
            what="ADD of two convolutions with the ReLU fused into the ADD",
        ),
        dict(
            name="max_pool_2x2",
            build=seq(img, L.MaxPooling2D(2)),
            what="MAX_POOL_2D 2x2, stride 2, VALID",
        ),
        dict(
            name="max_pool_3x3_s2_same",
            build=seq(img, L.MaxPooling2D(3, strides=2, padding="same")),
            what="MAX_POOL_2D 3x3, stride 2, SAME",
        ),
        dict(
            name="avg_pool_2x2",
            build=seq(img, L.AveragePooling2D(2)),
            what="AVERAGE_POOL_2D 2x2, stride 2, VALID",
        ),
        dict(
            name="avg_pool_3x3_s1_same",
            build=seq(img, L.AveragePooling2D(3, strides=1, padding="same")),
            what="AVERAGE_POOL_2D 3x3, stride 1, SAME (padding excluded from the count at the borders)",
        ),
        dict(
            name="global_avg_pool",
            build=seq(img, L.GlobalAveragePooling2D()),
            what="GlobalAveragePooling2D: MEAN over axes 1, 2 (keep_dims false)",
        ),
        dict(
            name="reshape",
            build=seq(small, L.Conv2D(4, 1), L.Reshape((16, 16)), batch=1),
            what="CONV_2D 1x1 then RESHAPE 8x8x4 -> 16x16",
        ),
        dict(
            name="pad",
            build=seq(small, L.ZeroPadding2D(((1, 2), (2, 1)))),
            what="PAD (top 1, bottom 2, left 2, right 1) with the input zero point",
        ),
        dict(
            name="concatenation",
            build=concat,
            what="CONCATENATION on channels of a 1x1 conv (4 ch) and a 3x3 conv (6 ch)",
        ),
        dict(
            name="conv1d",
            build=seq((64, 3), L.Conv1D(8, 3, padding="same", activation="relu")),
            what="Conv1D(8, k3, SAME) on 64x3: EXPAND_DIMS -> CONV_2D 1x3 -> RESHAPE",
        ),
        dict(
            name="conv1d_valid_s2",
            build=seq((64, 3), L.Conv1D(8, 5, strides=2, padding="valid")),
            what="Conv1D(8, k5, stride 2, VALID) on 64x3",
        ),
        dict(
            name="max_pool1d",
            build=seq((64, 4), L.MaxPooling1D(2)),
            what="MaxPooling1D(2) on 64x4: how the converter wraps a 1-D pool",
        ),
        dict(
            name="hard_swish",
            build=hard_swish,
            what="CONV_2D 3x3 then hard_swish (stretch: HARD_SWISH)",
        ),
        dict(
            name="squeeze_excite",
            build=squeeze_excite,
            what="squeeze-excite: MEAN, 1x1 conv + ReLU, 1x1 conv + LOGISTIC, MUL (stretch)",
        ),
        # bad inputs: the importer must refuse each with one line
        dict(
            name="bad_float",
            build=seq(small, L.Conv2D(4, 3, padding="same", activation="relu")),
            kind="float",
            what="BAD: float32 model, no quantization (converter without optimizations)",
        ),
        dict(
            name="bad_dynamic_range",
            build=seq(small, L.Conv2D(4, 3, padding="same", activation="relu"), L.Flatten(), L.Dense(4)),
            kind="dynamic_range",
            what="BAD: dynamic-range quantization (int8 weights, float activations; no calibration)",
        ),
        dict(
            name="bad_int16x8",
            build=seq(small, L.Conv2D(4, 3, padding="same", activation="relu")),
            kind="int16x8",
            what="BAD: 16x8 quantization (int16 activations, int8 weights)",
        ),
        dict(
            name="bad_unsupported_op",
            build=seq(small, L.Conv2D(4, 3, padding="same"), L.Activation("tanh")),
            what="BAD (an op tinytrain lacks): CONV_2D then TANH",
        ),
        dict(
            name="bad_fused_relu_n1_to_1",
            build=seq(
                small, L.Conv2D(4, 3, padding="same"), L.Lambda(lambda t: keras.ops.clip(t, -1.0, 1.0))
            ),
            what="BAD (a fused activation tinytrain lacks): CONV_2D + fused RELU_N1_TO_1 (a clip to [-1, 1])",
        ),
        dict(
            name="bad_dilated",
            build=seq(img, L.Conv2D(4, 3, padding="same", dilation_rate=2), batch=1),
            what="BAD (unsupported option): CONV_2D 3x3 with dilation 2",
        ),
        dict(
            name="bad_dynamic_shape",
            build=seq((None, None, 3), L.Conv2D(4, 3, padding="same", activation="relu")),
            what="BAD: dynamic height and width (shape_signature [-1, -1, -1, 3]; calibrated on 8x8)",
        ),
        dict(
            name="bad_two_inputs",
            build=two_inputs,
            what="BAD: two input tensors",
        ),
        dict(
            name="bad_two_outputs",
            build=two_outputs,
            what="BAD: two output tensors",
        ),
    ]
    for s in specs:
        s.setdefault("kind", "int8")
        s.setdefault("io", "int8")
    return specs


def _sensor_conv1d(keras: Any, softmax: bool) -> Any:
    from keras import layers as L

    x = keras.Input(shape=(100, 6))
    y = L.Conv1D(16, 5, padding="same", use_bias=False)(x)
    y = L.BatchNormalization()(y)
    y = L.ReLU()(y)
    y = L.MaxPooling1D(2)(y)
    y = L.Conv1D(24, 5, padding="same", use_bias=False)(y)
    y = L.BatchNormalization()(y)
    y = L.ReLU()(y)
    y = L.MaxPooling1D(2)(y)
    y = L.Conv1D(32, 3, padding="same", strides=2, activation="relu")(y)
    y = L.GlobalAveragePooling1D()(y)
    y = L.Dense(4)(y)
    if softmax:
        y = L.Softmax()(y)
    return keras.Model(x, y)


def _mobilenet_tiny(keras: Any) -> Any:
    from keras import layers as L

    def conv_bn(y: Any, filters: int, k: int, stride: int, act: bool) -> Any:
        y = L.Conv2D(filters, k, strides=stride, padding="same", use_bias=False)(y)
        y = L.BatchNormalization()(y)
        return L.ReLU(6.0)(y) if act else y

    def inverted_residual(y: Any, expand: int, out: int, stride: int) -> Any:
        inp = y
        cin = y.shape[-1]
        y = conv_bn(y, cin * expand, 1, 1, True)
        y = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(y)
        y = L.BatchNormalization()(y)
        y = L.ReLU(6.0)(y)
        y = conv_bn(y, out, 1, 1, False)
        if stride == 1 and cin == out:
            y = L.Add()([inp, y])
        return y

    x = keras.Input(
        shape=(32, 32, 3),
    )
    y = conv_bn(x, 8, 3, 2, True)  # 16x16x8
    y = inverted_residual(y, 2, 8, 1)  # residual
    y = inverted_residual(y, 3, 16, 2)  # 8x8x16
    y = inverted_residual(y, 3, 16, 1)  # residual
    y = conv_bn(y, 32, 1, 1, True)
    y = L.GlobalAveragePooling2D()(y)
    y = L.Dense(10)(y)
    return keras.Model(x, y)


def _init_weights(model: Any, rng: np.random.Generator) -> None:
    """Deterministic, non-trivial weights: He-normal kernels, non-zero biases, BN statistics off identity."""
    for layer in model.layers:
        new = []
        for var in layer.weights:
            shape = tuple(var.shape)
            path = var.path if hasattr(var, "path") else var.name
            leaf = path.split("/")[-1]
            if leaf in ("kernel", "depthwise_kernel"):
                fan_in = int(np.prod(shape[:-1])) if leaf == "kernel" else int(np.prod(shape[:2]))
                w = rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
            elif leaf == "bias":
                w = rng.normal(0.0, 0.1, shape)
            elif leaf == "gamma":
                w = rng.uniform(0.6, 1.4, shape)
            elif leaf == "beta":
                w = rng.normal(0.0, 0.2, shape)
            elif leaf == "moving_mean":
                w = rng.normal(0.0, 0.2, shape)
            elif leaf == "moving_variance":
                w = rng.uniform(0.5, 1.5, shape)
            else:
                raise ValueError(f"{layer.name}: no initializer for weight {path}")
            new.append(w.astype(np.float32))
        if new:
            layer.set_weights(new)


def _calibration(shapes: list[tuple[int, ...]], rng: np.random.Generator) -> list[list[np.ndarray]]:
    return [[rng.uniform(-1.0, 1.0, (1, *s)).astype(np.float32) for s in shapes] for _ in range(N_CALIB)]


def _convert_tflite(model: Any, kind: str, io: str, calib: list[list[np.ndarray]]) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)

    def rep() -> Iterator[list[np.ndarray]]:
        yield from calib

    if kind == "float":
        pass
    elif kind == "dynamic_range":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif kind == "int16x8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        conv.inference_input_type = tf.int16
        conv.inference_output_type = tf.int16
    elif kind == "int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io == "int8":
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
    else:
        raise ValueError(kind)
    return bytes(conv.convert())


def _tflite_ops(data: bytes) -> list[str]:
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=data)
    return [d["op_name"] for d in interp._get_ops_details()]  # noqa: SLF001 (no public op listing)


def _tflite_io(data: bytes) -> dict[str, Any]:
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=data)

    def desc(d: dict[str, Any]) -> dict[str, Any]:
        q = d["quantization_parameters"]
        return {
            "name": d["name"],
            "shape": [int(v) for v in d["shape"]],
            "shape_signature": [int(v) for v in d["shape_signature"]],
            "dtype": np.dtype(d["dtype"]).name,
            "scale": [float(v) for v in q["scales"]],
            "zero_point": [int(v) for v in q["zero_points"]],
        }

    return {
        "inputs": [desc(d) for d in interp.get_input_details()],
        "outputs": [desc(d) for d in interp.get_output_details()],
    }


def generate_tflite(only: set[str] | None, manifest: dict[str, Any]) -> None:
    import keras

    for spec in _keras_specs():
        name = spec["name"]
        if only and name not in only:
            continue
        keras.backend.clear_session()  # layer/tensor names restart: a model's bytes do not depend on --only
        keras.utils.set_random_seed(SEED)
        rng = _rng(name)
        model = spec["build"]()
        _init_weights(model, rng)
        shapes = [tuple(8 if d is None else int(d) for d in t.shape[1:]) for t in model.inputs]
        data = _convert_tflite(model, spec["kind"], spec["io"], _calibration(shapes, rng))
        path = DATA / f"{name}.tflite"
        write_atomic(path, data)
        entry = {
            "file": path.name,
            "format": "tflite",
            "what": spec["what"],
            "quantization": {
                "int8": "full-integer int8 (per-channel int8 weights, int32 bias, int8 activations)",
                "float": "none (float32)",
                "dynamic_range": "dynamic range (int8 weights, float activations)",
                "int16x8": "16x8 (int16 activations, int8 weights, int64 bias)",
            }[spec["kind"]]
            + (", float32 I/O (QUANTIZE/DEQUANTIZE at the edges)" if spec["io"] == "float" else ""),
            "layout": "NWC" if len(shapes[0]) == 2 else ("NHWC" if len(shapes[0]) == 3 else "NC"),
            "ops": _tflite_ops(data),
            "bad": name.startswith("bad_"),
            **_tflite_io(data),
        }
        manifest["models"][name] = entry
        print(f"{path.name}: {len(data)} B, ops {entry['ops']}")


def generate_corrupt(manifest: dict[str, Any]) -> None:
    src = (DATA / "conv2d_3x3_same_s1_relu.tflite").read_bytes()
    write_atomic(DATA / "bad_truncated.tflite", src[: len(src) // 2])
    manifest["models"]["bad_truncated"] = {
        "file": "bad_truncated.tflite",
        "format": "tflite",
        "what": f"BAD: the first {len(src) // 2} of {len(src)} bytes of conv2d_3x3_same_s1_relu.tflite",
        "bad": True,
    }
    text = b"This is not a model: a text file named .tflite for the importer's error tests.\n"
    write_atomic(DATA / "bad_not_a_model.tflite", text)
    manifest["models"]["bad_not_a_model"] = {
        "file": "bad_not_a_model.tflite",
        "format": "tflite",
        "what": "BAD: a text file with a .tflite name",
        "bad": True,
    }


def _versions_generate() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("tensorflow", "keras", "torch", "onnx", "onnxruntime"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return out


def load_manifest() -> dict[str, Any]:
    p = DATA / MANIFEST
    if p.exists():
        return json.loads(p.read_text())
    return {"seed": SEED, "models": {}}


def save_manifest(m: dict[str, Any]) -> None:
    write_atomic(DATA / MANIFEST, dump_json(m))


def cmd_generate(only: set[str] | None, formats: set[str]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    DATA.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest()
    if not only:  # a full run of these formats: forget their old entries (keeps the order of the specs)
        manifest["models"] = {k: v for k, v in manifest["models"].items() if v["format"] not in formats}
    manifest["seed"] = SEED
    manifest.setdefault("versions", {}).update(_versions_generate())
    if "tflite" in formats:
        generate_tflite(only, manifest)
        if not only:
            generate_corrupt(manifest)
    if "onnx" in formats:
        from importlib import import_module

        import_module("make_test_models_onnx").generate_onnx(only, manifest)
    save_manifest(manifest)


def _lsb_diff(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"max": float(d.max()), "elements": int((d > 0).sum()), "of": int(d.size)}


def cmd_crosscheck() -> None:
    """Informative, needs TensorFlow: TFLite's own interpreter (reference kernels, and the default
    optimized ones) on each oracle's inputs, compared with the TFLite Micro outputs -> manifest, README."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from make_test_models_readme import write_readme

    manifest = load_manifest()
    resolvers = {
        "tflite_builtin_ref_vs_tflm": tf.lite.experimental.OpResolverType.BUILTIN_REF,
        "tflite_optimized_vs_tflm": tf.lite.experimental.OpResolverType.AUTO,
    }
    for name, entry in manifest["models"].items():
        if entry["format"] != "tflite" or entry.get("bad") or "oracle" not in entry:
            continue
        oracle = np.load(DATA / entry["oracle"])
        for key, resolver in resolvers.items():
            interp = tf.lite.Interpreter(
                model_path=str(DATA / entry["file"]), experimental_op_resolver_type=resolver
            )
            interp.allocate_tensors()
            i = interp.get_input_details()[0]["index"]
            o = interp.get_output_details()[0]["index"]
            ys = []
            for x in oracle["x"]:
                interp.set_tensor(i, x[None])
                interp.invoke()
                ys.append(interp.get_tensor(o)[0])
            entry[key] = _lsb_diff(np.stack(ys), oracle["y"])
        print(name, entry["tflite_builtin_ref_vs_tflm"], entry["tflite_optimized_vs_tflm"])
    manifest["versions"]["tensorflow (crosscheck)"] = tf.__version__
    save_manifest(manifest)
    write_readme(DATA, manifest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["generate", "oracle", "crosscheck", "all"])
    ap.add_argument("--only", nargs="*", help="model names (default: all)")
    ap.add_argument("--formats", nargs="*", default=["tflite", "onnx"], choices=["tflite", "onnx"])
    ap.add_argument("--oracle-python", default=sys.executable, help="python with tflite_micro + onnxruntime")
    args = ap.parse_args(argv)
    only = set(args.only) if args.only else None
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.step in ("generate", "all"):
        cmd_generate(only, set(args.formats))
    if args.step == "all":
        cmd = [args.oracle_python, str(Path(__file__).resolve()), "oracle"]
        if args.only:
            cmd += ["--only", *args.only]
        rc = subprocess.call(cmd)
        if rc:
            return rc
    if args.step in ("crosscheck", "all"):
        cmd_crosscheck()
    if args.step == "oracle":
        from make_test_models_oracle import cmd_oracle

        cmd_oracle(DATA, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
