"""Update schemes: which biases and which weights (and how many of their input channels) are trained.

A scheme is given by name or as data and *resolved* against a graph into a `Scheme`:

- `full`: every weight (all input channels) and every bias.
- `last`: the classifier only (weights and bias).
- `bias`: every bias, plus the classifier's weights.
- `paper:<budget>`: the schemes published with the paper for the three zoo models
  (`tinytrain/schemes/paper.json`, keyed by model name then budget, e.g. `paper:99kb`).
- a JSON file or dict `{"bias_last_n": k, "weights": [{"layer": name, "input_channel_ratio": r}]}`:
  the biases of the last `k` backbone convs, and the weights of the listed layers, each on its
  first `ceil(r * Ci)` input channels (`0 < r <= 1`; for a depthwise conv, its first channels).

The classifier (the conv producing the graph's output) is always trained, weights and bias: a new
head for a downstream task must learn. "Backbone convs" are all convs except the classifier, counted
from the input (the stem is conv 0), as in the source's `conv_index`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinytrain import TinytrainError
from tinytrain.ir import Graph

PAPER_FILE = Path(__file__).resolve().parent.parent / "schemes" / "paper.json"
BUILTIN = ("full", "last", "bias")


@dataclass(frozen=True)
class WeightUpdate:
    layer: str
    ratio: float  # fraction of input channels, 0 < ratio <= 1
    channels: int  # k = ceil(ratio * Ci): the first k input channels are updated
    in_channels: int  # Ci (for a depthwise conv: its channels)


@dataclass
class Scheme:
    """A scheme resolved against one graph."""

    name: str
    bias_last_n: int  # backbone convs (counted from the end) whose bias is updated
    bias_layers: list[str]  # every layer whose bias is updated, in graph order (includes the classifier)
    weights: dict[str, WeightUpdate] = field(default_factory=dict)  # layer -> update, graph order
    classifier: str = "classifier"

    def trainable_layers(self) -> set[str]:
        return set(self.bias_layers) | set(self.weights)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bias_last_n": self.bias_last_n,
            "classifier": self.classifier,
            "bias_layers": list(self.bias_layers),
            "weights": [
                {
                    "layer": w.layer,
                    "input_channel_ratio": w.ratio,
                    "channels": w.channels,
                    "in_channels": w.in_channels,
                }
                for w in self.weights.values()
            ],
        }


def _load_paper() -> dict[str, Any]:
    return json.loads(PAPER_FILE.read_text())["schemes"]


def paper_budgets(model: str) -> list[str]:
    """The published budgets for a zoo model (empty for other models)."""
    return list(_load_paper().get(model, {}))


def _backbone(graph: Graph) -> tuple[list[str], str]:
    convs = graph.convs()
    cls = graph.producer(graph.output)
    if cls is None or cls not in convs:
        raise TinytrainError(f"model {graph.name!r}: the graph output must be produced by a classifier conv")
    return [op.name for op in convs if op.name != cls.name], cls.name


def _from_spec(graph: Graph, name: str, spec: dict[str, Any], where: str, allow_zero: bool) -> Scheme:
    backbone, cls = _backbone(graph)
    if not isinstance(spec, dict):
        raise TinytrainError(f"{where}: a scheme is an object with 'bias_last_n' and 'weights'")
    unknown_keys = set(spec) - {"bias_last_n", "weights", "about", "name"}
    if unknown_keys:
        raise TinytrainError(
            f"{where}: unknown key(s) {sorted(unknown_keys)} (expected 'bias_last_n', 'weights')"
        )
    n = spec.get("bias_last_n", 0)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(backbone):
        raise TinytrainError(
            f"{where}: bias_last_n must be an integer in [0, {len(backbone)}] "
            f"(model {graph.name!r} has {len(backbone)} backbone convs), got {n!r}"
        )
    entries = spec.get("weights", [])
    if not isinstance(entries, list):
        raise TinytrainError(f"{where}: 'weights' must be a list of {{'layer', 'input_channel_ratio'}}")
    convs = {op.name: op for op in graph.convs()}
    chosen: dict[str, float] = {}
    for e in entries:
        if not isinstance(e, dict) or "layer" not in e or "input_channel_ratio" not in e:
            raise TinytrainError(f"{where}: weight entry {e!r} needs 'layer' and 'input_channel_ratio'")
        layer, r = e["layer"], e["input_channel_ratio"]
        if not isinstance(layer, str):
            raise TinytrainError(f"{where}: weight entry {e!r}: 'layer' must be a layer name (a string)")
        if layer not in convs:
            known = [op.name for op in graph.ops]
            hint = (
                ", ".join(x for x in known if x.split(".")[:2] == str(layer).split(".")[:2])
                or f"{known[0]} ... {known[-1]}"
            )
            raise TinytrainError(
                f"{where}: unknown layer {layer!r} in model {graph.name!r} (conv layers look like: {hint})"
            )
        if isinstance(r, bool) or not isinstance(r, int | float):
            raise TinytrainError(f"{where}: layer {layer!r}: input_channel_ratio must be a number, got {r!r}")
        if allow_zero and r == 0:
            continue  # published entry with frozen weights
        if not 0 < r <= 1:
            raise TinytrainError(f"{where}: layer {layer!r}: input_channel_ratio {r} is outside (0, 1]")
        if layer in chosen:
            raise TinytrainError(f"{where}: layer {layer!r} is listed twice")
        chosen[layer] = float(r)
    chosen.setdefault(cls, 1.0)
    weights: dict[str, WeightUpdate] = {}
    for op in graph.convs():  # graph order
        if op.name in chosen:
            ci = graph.tensors[op.inputs[0]].shape[0]
            r = chosen[op.name]
            weights[op.name] = WeightUpdate(op.name, r, max(1, min(ci, math.ceil(r * ci - 1e-9))), ci)
    bias_layers = backbone[len(backbone) - n :] if n else []
    return Scheme(name, n, bias_layers + [cls], weights, cls)


def resolve_scheme(spec: str | Path | dict[str, Any], graph: Graph) -> Scheme:
    """Resolve a scheme name (`full`, `last`, `bias`, `paper:<budget>`), a JSON file path, or a dict."""
    backbone, cls = _backbone(graph)
    if isinstance(spec, dict):
        return _from_spec(graph, str(spec.get("name", "custom")), spec, "scheme", allow_zero=False)
    text = str(spec)
    if text == "full":
        full = {
            "bias_last_n": len(backbone),
            "weights": [{"layer": op.name, "input_channel_ratio": 1} for op in graph.convs()],
        }
        return _from_spec(graph, "full", full, "scheme 'full'", allow_zero=False)
    if text == "last":
        return _from_spec(graph, "last", {"bias_last_n": 0}, "scheme 'last'", allow_zero=False)
    if text == "bias":
        return _from_spec(graph, "bias", {"bias_last_n": len(backbone)}, "scheme 'bias'", allow_zero=False)
    if text.startswith("paper:"):
        budget = text.split(":", 1)[1]
        table = _load_paper()
        if graph.name not in table:
            raise TinytrainError(
                f"no published schemes for model {graph.name!r} (paper schemes exist for: "
                f"{', '.join(table)}); they name zoo layers: use last, bias, full or a JSON file naming "
                f"this model's layers "
                f"(`tinytrain import` lists them)"
            )
        if budget not in table[graph.name]:
            raise TinytrainError(
                f"unknown paper budget {budget!r} for {graph.name}: "
                f"choose one of {', '.join('paper:' + b for b in table[graph.name])}"
            )
        return _from_spec(
            graph,
            text,
            table[graph.name][budget],
            f"{PAPER_FILE.name} {graph.name} {budget}",
            allow_zero=True,
        )
    p = Path(text)
    if p.suffix == ".json" or p.exists():
        try:
            doc = json.loads(p.read_bytes().decode("utf-8"))
        except OSError as exc:
            raise TinytrainError(f"scheme file {p}: cannot read ({exc.strerror})") from exc
        except UnicodeDecodeError as exc:
            raise TinytrainError(
                f"scheme file {p}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON"
            ) from None
        except json.JSONDecodeError as exc:
            raise TinytrainError(f"scheme file {p}: invalid JSON ({exc})") from exc
        except RecursionError:
            raise TinytrainError(f"scheme file {p}: JSON nested too deeply") from None
        return _from_spec(graph, p.stem, doc, f"scheme file {p}", allow_zero=False)
    if text == "auto":
        raise TinytrainError(
            "scheme `auto` is searched on a job's data: `tinytrain emulate` chooses it (cached); elsewhere "
            "run `tinytrain search ... --out FILE.json` and pass FILE.json"
        )
    raise TinytrainError(
        f"unknown scheme {text!r}: use one of {', '.join(BUILTIN)}, paper:<budget> "
        f"({', '.join(paper_budgets(graph.name)) or 'zoo models only'}) or a JSON file"
    )


#: The scheme JSON format, for the `--help` epilog of `emulate`, `search` and `compile` (docs/search.md).
SCHEME_FORMAT_HELP = """\
scheme JSON format (--scheme FILE.json; `tinytrain search --out FILE.json` writes one):
  {"bias_last_n": 2,
   "weights": [{"layer": "features.4", "input_channel_ratio": 0.5},
               {"layer": "features.2", "input_channel_ratio": 1}]}
  bias_last_n  the biases of the last N backbone convs are trained (counted back from the classifier; 0:
               none). The classifier (the layer producing the output) is always trained, weights and bias.
  weights      layers whose weights are trained, each on its first ceil(r * Ci) input channels
               (0 < input_channel_ratio <= 1; a depthwise conv: its first channels). Layer names: the
               summary `tinytrain import` prints, or the "name" of each op in the model's graph.json.
  Other keys ("name", "about") are ignored. Named schemes: full, last, bias, paper:<budget> (zoo models:
  the paper's published schemes), auto (emulate: searched under the board's SRAM on your data, cached)."""
