"""Scheme names of the experiments: the compiler's (`last`, `bias`, `full`, `paper:<budget>`) plus
`blocks:<k>`, the "last-k-layers" baselines: weights (all input channels) and biases of every conv of the
last `k` inverted-residual blocks, plus the classifier."""

from __future__ import annotations

from typing import Any

from tinytrain import TinytrainError
from tinytrain.ir import Graph
from tinytrain.sparse import Scheme, resolve_scheme


def _block(layer: str) -> int | None:
    parts = layer.split(".")
    if len(parts) >= 2 and parts[0] == "blocks" and parts[1].isdigit():
        return int(parts[1])
    return None


def last_blocks_scheme(graph: Graph, k: int) -> dict[str, Any]:
    """The scheme dict training every conv (weights + bias) of the last `k` blocks (`blocks.<n>.*`)."""
    cls = graph.producer(graph.output)
    backbone = [op.name for op in graph.convs() if cls is None or op.name != cls.name]
    blocks = sorted({b for b in map(_block, backbone) if b is not None})
    if not 1 <= k <= len(blocks):
        raise TinytrainError(f"blocks:{k}: model {graph.name!r} has {len(blocks)} blocks")
    chosen = set(blocks[-k:])
    first = next(i for i, name in enumerate(backbone) if _block(name) in chosen)
    tail = backbone[first:]
    if any(_block(name) not in chosen for name in tail):
        raise TinytrainError(f"blocks:{k}: model {graph.name!r} has convs after its last blocks: {tail}")
    return {
        "name": f"blocks:{k}",
        "bias_last_n": len(tail),
        "weights": [{"layer": name, "input_channel_ratio": 1.0} for name in tail],
    }


def resolve(name: str | dict[str, Any], graph: Graph) -> Scheme:
    """Resolve an experiment scheme name (or a scheme dict) against a graph."""
    if isinstance(name, str) and name.startswith("blocks:"):
        try:
            k = int(name.split(":", 1)[1])
        except ValueError as exc:
            raise TinytrainError(f"scheme {name!r}: expected blocks:<k> with an integer k") from exc
        return resolve_scheme(last_blocks_scheme(graph, k), graph)
    return resolve_scheme(name, graph)
