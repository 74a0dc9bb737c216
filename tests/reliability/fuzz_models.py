"""Fuzz targets for the model files a user hands `tinytrain import`: `.tflite` (flatbuffer) and `.onnx`
(protobuf), mutated from the committed good test models (tests/models/data).

Each case runs what `tinytrain import FILE --out DIR` does (import, summary, the model directory written and
read back) and then one inference on a zero input (what `infer` does next). Mutations: byte-level (`mutate`),
truncation, and structure-aware ones: for a flatbuffer, aligned 32-bit words (offsets, vector lengths, tensor
indices, shape entries, enum values) set to edge values; for ONNX, one field of the parsed protobuf (a node's
op type, domain, inputs or attributes, an initializer's dims, type or values, the input's shape) changed."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import REPO_ROOT

from .fuzz import Campaign, mutate, run_case

DATA = REPO_ROOT / "tests" / "models" / "data"
TFLITE_SEEDS = (
    "conv2d_3x3_same_s2", "depthwise_3x3_s1", "add_residual", "fully_connected_flatten", "pad",
    "max_pool_2x2", "avg_pool_3x3_s1_same", "concatenation", "hard_swish", "conv1d", "reshape",
    "dense_softmax", "global_avg_pool", "squeeze_excite",
)  # fmt: skip
ONNX_SEEDS = (
    "add_qop", "add_qdq", "conv2d_3x3_s2_qop", "conv2d_3x3_s2_qdq", "linear_qop", "linear_qdq", "pad_qdq",
    "concat_qop", "hardswish_qdq", "hardswish_qop", "avg_pool_3x3_s2_qdq", "max_pool1d_qop",
    "global_avg_pool_qdq", "reshape_qop", "depthwise_3x3_qdq",
)  # fmt: skip
WORDS = [0, 1, 2, 3, 4, 0xFF, 0x7F, 0x80, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1 << 20]
FLOATS = [0.0, -0.0, -1.0, 1e-45, 1e-30, 1e30, 3.4e38, float("nan"), float("inf"), float("-inf")]


def _seeds(names: tuple[str, ...], suffix: str) -> list[bytes]:
    return [(DATA / f"{n}{suffix}").read_bytes() for n in names if (DATA / f"{n}{suffix}").exists()]


def import_and_infer(f: Path, out: Path) -> None:
    """`tinytrain import f --out out` (import, summary, directory written and read back), then an
    inference."""
    from tinytrain.models.importer import format_summary, import_model, summary, write_model_dir
    from tinytrain.reference.inference import run_forward

    g = import_model(f)
    format_summary(summary(g), str(out))
    write_model_dir(g, out, force=True)
    c, h, w = g.tensors[g.input].shape
    run_forward(g, np.zeros((h, w, c), np.int8))


# ---- .tflite -----------------------------------------------------------------------------------------------


def mutate_flatbuffer_words(data: bytes, rng: random.Random) -> bytes:
    """1-3 aligned 32-bit words (flatbuffer offsets, lengths, indices, dims, enums) set to edge values or
    nudged; sometimes one int16/byte field near them."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(0, max(len(b) - 4, 1)) & ~3
        old = struct.unpack_from("<I", b, i)[0] if i + 4 <= len(b) else 0
        k = rng.randrange(4)
        if k == 0:
            v = rng.choice(WORDS)
        elif k == 1:
            v = (old + rng.randint(-8, 8)) % 2**32
        elif k == 2:
            v = struct.unpack("<I", struct.pack("<f", rng.choice(FLOATS)))[0]
        else:
            v = old ^ (1 << rng.randrange(32))
        if i + 4 <= len(b):
            struct.pack_into("<I", b, i, v)
    return bytes(b)


def fuzz_tflite(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    seeds = _seeds(TFLITE_SEEDS, ".tflite")
    for i in range(n):
        raw = seeds[i % len(seeds)]
        kind = i % 3
        data = (
            mutate(raw, rng)
            if kind == 0
            else mutate_flatbuffer_words(raw, rng)
            if kind == 1
            else raw[: rng.randrange(len(raw))]
            if rng.random() < 0.3
            else mutate_flatbuffer_words(mutate(raw, rng), rng)
        )
        f = tmp / f"t{i % 50}.tflite"
        f.write_bytes(data)
        run_case(c, ".tflite model (import)", lambda f=f: import_and_infer(f, tmp / "out"), f)


# ---- .onnx -------------------------------------------------------------------------------------------------


def _mutate_attribute(a: Any, rng: random.Random) -> None:
    from onnx import AttributeProto

    if a.type == AttributeProto.INT:
        a.i = rng.choice([0, -1, 1, 2, 3, 7, 2**31, -(2**40), 10**6])
    elif a.type == AttributeProto.INTS:
        vals = list(a.ints)
        if vals and rng.random() < 0.7:
            vals[rng.randrange(len(vals))] = rng.choice([0, -1, 2, 5, 100, 2**31, -(2**33)])
        else:
            vals = vals[: rng.randrange(len(vals) + 1)] + [rng.choice([0, 1, 3])] * rng.randint(0, 2)
        del a.ints[:]
        a.ints.extend(vals)
    elif a.type == AttributeProto.FLOAT:
        a.f = rng.choice(FLOATS)
    elif a.type == AttributeProto.STRING:
        a.s = rng.choice([b"", b"SAME_UPPER", b"VALID", b"NOTSET", b"\xff\xfe", b"x" * 100])
    else:
        a.name = rng.choice(["", "zz", a.name + "_"])


def _mutate_initializer(t: Any, rng: random.Random) -> None:
    from onnx import TensorProto, numpy_helper

    k = rng.randrange(5)
    if k == 0:
        dims = list(t.dims)
        if dims and rng.random() < 0.6:
            dims[rng.randrange(len(dims))] = rng.choice([0, 1, 2, 3, 1000, 2**31])
        else:
            dims = dims + [1] if rng.random() < 0.5 else dims[:-1]
        del t.dims[:]
        t.dims.extend(dims)
    elif k == 1:
        t.data_type = rng.choice(
            [TensorProto.UINT8, TensorProto.INT32, TensorProto.FLOAT, TensorProto.INT64, TensorProto.DOUBLE,
             TensorProto.FLOAT16, TensorProto.BOOL, TensorProto.STRING, 0, 99]
        )  # fmt: skip
    elif k == 2 and t.raw_data:
        t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data))]
    else:
        try:
            a = numpy_helper.to_array(t).copy()
        except Exception:  # noqa: BLE001  (an earlier mutation may have made it unreadable)
            return
        if a.size == 0:
            return
        flat = a.reshape(-1)
        j = rng.randrange(flat.size)
        if np.issubdtype(a.dtype, np.floating):
            flat[j] = rng.choice(FLOATS)
        elif np.issubdtype(a.dtype, np.integer):
            info = np.iinfo(a.dtype)
            flat[j] = rng.choice([info.min, info.max, 0, -1 if info.min < 0 else 1])
        t.CopyFrom(numpy_helper.from_array(flat.reshape(a.shape), t.name))


def mutate_onnx_fields(data: bytes, rng: random.Random) -> bytes:
    """One structured edit of a parsed ONNX model."""
    import onnx

    m = onnx.load_model_from_string(data)
    g = m.graph
    k = rng.randrange(8)
    nodes = list(g.node)
    node = rng.choice(nodes) if nodes else None
    if k == 0 and node is not None:
        node.op_type = rng.choice(
            [n.op_type for n in nodes]
            + ["Relu", "HardSigmoid", "Mul", "QLinearMul", "Softmax", "Loop", "If", "Conv", ""]
        )
    elif k == 1 and node is not None:
        node.domain = rng.choice(["", "com.microsoft", "ai.onnx.ml", "bogus"])
    elif k == 2 and node is not None and node.input:
        j = rng.randrange(len(node.input))
        names = [t for n in nodes for t in (*n.input, *n.output)] + ["", "nope"]
        node.input[j] = rng.choice(names)
    elif k == 3 and node is not None and node.attribute:
        _mutate_attribute(rng.choice(list(node.attribute)), rng)
    elif k == 4 and g.initializer:
        _mutate_initializer(rng.choice(list(g.initializer)), rng)
    elif k == 5 and nodes:
        g.node.remove(node)
    elif k == 6 and g.input:
        dims = g.input[0].type.tensor_type.shape.dim
        if dims:
            d = dims[rng.randrange(len(dims))]
            if rng.random() < 0.3:
                d.dim_param = "N"
            else:
                d.dim_value = rng.choice([0, 1, 2, 3, 64, 10**6, 2**40])
    elif node is not None:
        if node.output and rng.random() < 0.5:
            node.output[0] = rng.choice([g.output[0].name if g.output else "", "dup", node.output[0] + "_"])
        else:
            node.input.append(rng.choice(["", "extra"]))
    return m.SerializeToString()


def fuzz_onnx(c: Campaign, tmp: Path, n: int, rng: random.Random) -> None:
    seeds = _seeds(ONNX_SEEDS, ".onnx")
    for i in range(n):
        raw = seeds[i % len(seeds)]
        kind = i % 3
        if kind == 0:
            data = mutate(raw, rng)
        elif kind == 1 or rng.random() < 0.6:
            data = mutate_onnx_fields(raw, rng)
            if rng.random() < 0.3:
                data = mutate_onnx_fields(data, rng)
        else:
            data = raw[: rng.randrange(len(raw))]
        f = tmp / f"o{i % 50}.onnx"
        f.write_bytes(data)
        run_case(c, ".onnx model (import)", lambda f=f: import_and_infer(f, tmp / "out"), f)


MODEL_TARGETS: dict[str, Callable[[Campaign, Path, int, random.Random], None]] = {
    "tflite": fuzz_tflite,
    "onnx": fuzz_onnx,
}
