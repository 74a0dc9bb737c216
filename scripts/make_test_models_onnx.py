"""The ONNX part of make_test_models.py.

generate_onnx (needs torch, onnx, onnxruntime): PyTorch modules -> torch.onnx.export (float, batch 1)
-> onnxruntime.quantization.quantize_static, once in QDQ format (QuantizeLinear/DequantizeLinear pairs
around float ops) and once in QOperator format (QLinearConv, QLinearMatMul, ...): int8 activations
and weights, per-channel weights, MinMax calibration on seeded random data -> NAME_qdq.onnx, NAME_qop.onnx.

oracle_onnx (needs onnxruntime, onnx, numpy): int8 inputs on the input quantizer's grid and
onnxruntime's outputs -> NAME.io.npz.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
from make_test_models_oracle import N_ORACLE, oracle_inputs, write_atomic

OPSET = 17
N_CALIB = 64


def _rng(seed: int, name: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:onnx:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _torch_specs() -> list[dict[str, Any]]:
    import torch
    from torch import nn

    class InvertedResidual(nn.Module):
        def __init__(self, cin: int, expand: int, cout: int, stride: int) -> None:
            super().__init__()
            mid = cin * expand
            self.body = nn.Sequential(
                nn.Conv2d(cin, mid, 1, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU6(),
                nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU6(),
                nn.Conv2d(mid, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.body(x)
            return x + y if self.residual else y

    def mobilenet_tiny() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU6(),
            InvertedResidual(8, 2, 8, 1),
            InvertedResidual(8, 3, 16, 2),
            InvertedResidual(16, 3, 16, 1),
            nn.Conv2d(16, 32, 1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU6(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        )

    def sensor_conv1d() -> nn.Module:
        return nn.Sequential(
            nn.Conv1d(6, 16, 5, padding=2, bias=False),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 24, 5, padding=2, bias=False),
            nn.BatchNorm1d(24),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(24, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(32, 4),
        )

    class Add(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.conv(x))

    class Concat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(4, 4, 1)
            self.b = nn.Conv2d(4, 6, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.relu(self.a(x)), self.b(x)], dim=1)

    class Reshape(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).reshape(1, 16, 16)

    img = (3, 8, 8)
    small = (4, 8, 8)
    return [
        dict(
            name="mobilenet_tiny",
            build=mobilenet_tiny,
            shape=(3, 32, 32),
            what="PyTorch twin of mobilenet_tiny.tflite: stem Conv2d 3x3 s2 + BN + ReLU6, 3 inverted "
            "residuals (two with a residual add), 1x1 conv, AdaptiveAvgPool2d(1), Linear(32, 10)",
        ),
        dict(
            name="sensor_conv1d",
            build=sensor_conv1d,
            shape=(6, 100),
            what="PyTorch twin of sensor_conv1d.tflite: Conv1d(6,16,k5)+BN+ReLU, MaxPool1d(2), "
            "Conv1d(16,24,k5)+BN+ReLU, MaxPool1d(2), Conv1d(24,32,k3,s2)+ReLU, AdaptiveAvgPool1d(1), "
            "Linear(32, 4)",
        ),
        dict(
            name="conv2d_3x3_s2",
            build=lambda: nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU()),
            shape=img,
            what="Conv2d 3x3 stride 2 pad 1 + ReLU",
        ),
        dict(
            name="conv2d_1x3",
            build=lambda: nn.Conv2d(3, 4, (1, 3), padding=(0, 1)),
            shape=img,
            what="Conv2d kernel 1x3, padding (0, 1)",
        ),
        dict(
            name="conv2d_3x3_valid",
            build=lambda: nn.Conv2d(3, 4, 3),
            shape=img,
            what="Conv2d 3x3, no padding",
        ),
        dict(
            name="conv2d_3x1_s2x1",
            build=lambda: nn.Conv2d(3, 4, (3, 1), stride=(2, 1), padding=(1, 0)),
            shape=img,
            what="Conv2d kernel 3x1, stride (2, 1), padding (1, 0)",
        ),
        dict(
            name="depthwise_3x3",
            build=lambda: nn.Sequential(nn.Conv2d(4, 4, 3, 1, 1, groups=4), nn.ReLU6()),
            shape=small,
            what="depthwise Conv2d 3x3 (groups = channels) + ReLU6 (Clip)",
        ),
        dict(
            name="linear",
            build=lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)),
            shape=(4, 4, 4),
            what="Flatten + Linear(64, 10) (Gemm)",
        ),
        dict(name="add", build=Add, shape=small, what="x + Conv2d 3x3(x), then ReLU"),
        dict(
            name="max_pool_2x2",
            build=lambda: nn.Sequential(nn.Conv2d(3, 4, 1), nn.MaxPool2d(2)),
            shape=img,
            what="Conv2d 1x1 then MaxPool2d 2x2 stride 2 (alone, quantize_static leaves a pool in float)",
        ),
        dict(
            name="avg_pool_3x3_s2",
            build=lambda: nn.Sequential(nn.Conv2d(3, 4, 1), nn.AvgPool2d(3, 2, 1)),
            shape=img,
            what="Conv2d 1x1 then AvgPool2d 3x3 stride 2 pad 1 (count_include_pad=True, PyTorch's default)",
        ),
        dict(
            name="global_avg_pool",
            build=lambda: nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(1)),
            shape=img,
            what="Conv2d 1x1 then AdaptiveAvgPool2d(1) (GlobalAveragePool)",
        ),
        dict(
            name="pad",
            build=lambda: nn.Sequential(nn.Conv2d(4, 4, 1), nn.ZeroPad2d((2, 1, 1, 2))),
            shape=small,
            what="Conv2d 1x1 then ZeroPad2d(left 2, right 1, top 1, bottom 2) (Pad)",
        ),
        dict(name="reshape", build=Reshape, shape=small, what="Conv2d 1x1 then reshape 4x8x8 -> 16x16"),
        dict(
            name="hardswish",
            build=lambda: nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Hardswish()),
            shape=small,
            what="Conv2d 3x3 then Hardswish: exported as HardSigmoid, Mul (HardSigmoid stays float in "
            "QOperator form)",
        ),
        dict(name="concat", build=Concat, shape=small, what="torch.cat of a 1x1 conv + ReLU and a 3x3 conv"),
        dict(
            name="conv1d",
            build=lambda: nn.Sequential(nn.Conv1d(3, 8, 3, padding=1), nn.ReLU()),
            shape=(3, 64),
            what="Conv1d(3, 8, k3, pad 1) + ReLU",
        ),
        dict(
            name="max_pool1d",
            build=lambda: nn.Sequential(nn.Conv1d(3, 4, 1), nn.MaxPool1d(2)),
            shape=(3, 64),
            what="Conv1d 1x1 then MaxPool1d(2)",
        ),
    ]


def _init(module: Any, rng: np.random.Generator) -> None:
    import torch
    from torch import nn

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.from_numpy(rng.normal(0, np.sqrt(2 / fan_in), m.weight.shape)))
                if m.bias is not None:
                    m.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, m.bias.shape)))
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.from_numpy(rng.uniform(0.6, 1.4, n)))
                m.bias.copy_(torch.from_numpy(rng.normal(0, 0.2, n)))
                m.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.2, n)))
                m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, n)))
    module.eval()


def _export(module: Any, shape: tuple[int, ...]) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.onnx.export(
        module,
        (torch.zeros(1, *shape),),
        buf,
        dynamo=False,
        opset_version=OPSET,
        input_names=["input"],
        output_names=["output"],
        do_constant_folding=True,
    )
    return buf.getvalue()


class _Reader:
    """onnxruntime CalibrationDataReader over seeded uniform [-1, 1) inputs."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self._it = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {"input": x}


def _quantize(float_model: bytes, fmt: str, calib: list[np.ndarray], tmp: Path) -> bytes:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, pre, out = tmp / "float.onnx", tmp / "pre.onnx", tmp / f"{fmt}.onnx"
    src.write_bytes(float_model)
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(out),
        _Reader(calib),
        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return out.read_bytes()


def _describe(data: bytes) -> dict[str, Any]:
    import onnx

    model = onnx.load_from_string(data)
    g = model.graph

    def vi(v: Any) -> dict[str, Any]:
        t = v.type.tensor_type
        return {
            "name": v.name,
            "shape": [d.dim_value for d in t.shape.dim],
            "dtype": np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)).name,
        }

    return {
        "ops": [n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}" for n in g.node],
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "inputs": [vi(v) for v in g.input],
        "outputs": [vi(v) for v in g.output],
    }


def generate_onnx(only: set[str] | None, manifest: dict[str, Any]) -> None:
    import tempfile

    import torch

    seed = int(manifest["seed"])
    for spec in _torch_specs():
        name = spec["name"]
        if only and not ({name, f"{name}_qdq", f"{name}_qop"} & only):
            continue
        torch.manual_seed(seed)
        rng = _rng(seed, name)
        module = spec["build"]()
        _init(module, rng)
        float_model = _export(module, spec["shape"])
        calib = [rng.uniform(-1, 1, (1, *spec["shape"])).astype(np.float32) for _ in range(N_CALIB)]
        layout = "NCW" if len(spec["shape"]) == 2 else "NCHW"
        for fmt in ("qdq", "qop"):
            with tempfile.TemporaryDirectory() as tmp:
                data = _quantize(float_model, fmt, calib, Path(tmp))
            file = f"{name}_{fmt}.onnx"
            write_atomic(manifest_dir(manifest) / file, data)
            manifest["models"][f"{name}_{fmt}"] = {
                "file": file,
                "format": "onnx",
                "what": spec["what"],
                "quantization": (
                    "quantize_static, QDQ format (QuantizeLinear/DequantizeLinear around float ops)"
                    if fmt == "qdq"
                    else "quantize_static, QOperator format (QLinearConv, QLinearAdd, com.microsoft.QGemm...)"
                )
                + ", int8 activations (asymmetric), int8 per-channel weights, MinMax calibration, "
                "float32 I/O",
                "layout": layout,
                "bad": False,
                **_describe(data),
            }
            print(f"{file}: {len(data)} B, ops {manifest['models'][f'{name}_{fmt}']['ops']}")
        if name == "conv2d_3x3_s2" and not only:
            _bad_onnx(manifest, float_model, data)


def manifest_dir(manifest: dict[str, Any]) -> Path:
    return Path(__file__).resolve().parent.parent / "tests" / "models" / "data"


def _bad_onnx(manifest: dict[str, Any], float_model: bytes, quantized: bytes) -> None:
    d = manifest_dir(manifest)
    write_atomic(d / "bad_float.onnx", float_model)
    manifest["models"]["bad_float_onnx"] = {
        "file": "bad_float.onnx",
        "format": "onnx",
        "what": "BAD: the float (unquantized) export of conv2d_3x3_s2",
        "bad": True,
        **_describe(float_model),
    }
    write_atomic(d / "bad_truncated.onnx", quantized[: len(quantized) // 2])
    manifest["models"]["bad_truncated_onnx"] = {
        "file": "bad_truncated.onnx",
        "format": "onnx",
        "what": f"BAD: the first {len(quantized) // 2} of {len(quantized)} bytes of conv2d_3x3_s2_qop.onnx",
        "bad": True,
    }
    write_atomic(d / "bad_not_a_model.onnx", b"This is not a model: a text file named .onnx.\n")
    manifest["models"]["bad_not_a_model_onnx"] = {
        "file": "bad_not_a_model.onnx",
        "format": "onnx",
        "what": "BAD: a text file with a .onnx name",
        "bad": True,
    }


# --------------------------------------------------------------------------------------------------
# oracle
# --------------------------------------------------------------------------------------------------


def _edge_quant(model: Any) -> tuple[tuple[float, int], tuple[float, int]]:
    """(scale, zero point) of the QuantizeLinear that reads the graph input (after shape-only ops)
    and of the DequantizeLinear that writes the graph output."""
    from onnx import numpy_helper

    g = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inp, out = g.input[0].name, g.output[0].name

    def params(node: Any) -> tuple[float, int]:
        return float(init[node.input[1]]), int(init[node.input[2]])

    readers = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    t = inp
    while True:  # through shape-only ops (a Flatten before a Gemm) to the input's quantizer
        (n,) = readers[t]
        if n.op_type == "QuantizeLinear":
            q = n
            break
        assert n.op_type in ("Flatten", "Reshape", "Squeeze", "Unsqueeze"), n.op_type
        t = n.output[0]
    dq = next(n for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] == out)
    return params(q), params(dq)


def dequantize_input(x_q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """The float input an ONNX oracle feeds: exactly on the input quantizer's grid."""
    return ((x_q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


def oracle_onnx(data: Path, seed: int, name: str, entry: dict[str, Any]) -> None:
    import onnx
    import onnxruntime as ort

    path = data / entry["file"]
    (s_in, z_in), (s_out, z_out) = _edge_quant(onnx.load(str(path)))
    shape = entry["inputs"][0]["shape"]
    x_q = oracle_inputs(seed, name, shape, "int8")
    x = dequantize_input(x_q, s_in, z_in)
    outs = {}
    for key, level in (
        ("y", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
        ("y_noopt", ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
    ):
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        outs[key] = np.stack([sess.run(None, {"input": xi[None]})[0][0] for xi in x])
    y_q = np.round(outs["y"] / np.float32(s_out)) + z_out
    assert np.all((y_q >= -128) & (y_q <= 127))
    y_q = y_q.astype(np.int8)
    back = ((y_q.astype(np.float32) - np.float32(z_out)) * np.float32(s_out)).astype(np.float32)
    np.testing.assert_array_equal(back, outs["y"])  # the output is exactly on the DequantizeLinear grid
    diff = np.abs(outs["y"] - outs["y_noopt"]) / np.float32(s_out)
    entry["oracle"] = f"{name}.io.npz"
    entry["oracle_lsb_diff_optimized_vs_unoptimized"] = int(np.round(diff.max()))
    arrays = dict(
        x_q=x_q,
        x_scale=np.float32(s_in),
        x_zero_point=np.int8(z_in),
        y_q=y_q,
        y_scale=np.float32(s_out),
        y_zero_point=np.int8(z_out),
    )
    if diff.max() > 0:  # the unoptimized (float QDQ simulation) session differs: keep its outputs too
        arrays["y_noopt"] = outs["y_noopt"]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(data / entry["oracle"], buf.getvalue())
    print(f"{entry['oracle']}: x_q {x_q.shape} y {outs['y'].shape}, optimized vs not: {diff.max():.0f} LSB")


__all__ = ["N_ORACLE", "generate_onnx", "oracle_onnx", "dequantize_input"]
