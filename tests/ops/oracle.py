"""Bit-exactness against the TFLite Micro interpreter (the `tflite-micro` package) on random int8 inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.ops.tflite_builder import tflm_run
from tinytrain.ir import Graph
from tinytrain.models.importer import import_model
from tinytrain.reference.inference import run_forward


def import_bytes(model: bytes, tmp_path: Path, name: str = "m") -> Graph:
    p = tmp_path / f"{name}.tflite"
    p.write_bytes(model)
    return import_model(p)


def samples(graph: Graph, n: int = 32, seed: int = 7) -> np.ndarray:
    """n int8 inputs in the model's source layout."""
    shape = graph.meta["source_input_shape"]
    return np.random.default_rng(seed).integers(-128, 128, (n, *shape[1:])).astype(np.int8)


def ours(graph: Graph, xs: np.ndarray) -> np.ndarray:
    c, h, w = graph.tensors[graph.input].shape
    return np.stack([run_forward(graph, x.reshape(h, w, c))[graph.output].reshape(-1) for x in xs])


def assert_exact(model: bytes, tmp_path: Path, n: int = 32, tensor: int | None = None) -> Graph:
    """The host reference equals TFLite Micro on n inputs (all int8 outputs, or tensor index `tensor`)."""
    g = import_bytes(model, tmp_path)
    xs = samples(g, n)
    ref = tflm_run(model, xs, tensor)
    got = ours(g, xs)
    assert got.shape == ref.shape
    assert np.array_equal(got, ref), f"{int((got != ref).sum())} of {ref.size} outputs differ"
    assert len(np.unique(ref)) > 2, "degenerate test: the outputs are (nearly) constant"
    return g
