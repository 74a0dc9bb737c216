"""The default scheme (`--scheme auto`): searched for the model, its data and the board, then cached.

A zoo image model has published schemes (`paper:<budget>`); a model of one's own has none. For it, the
job's default scheme is found the way `tinytrain search` finds one, with the board's whole SRAM as the
budget:

1. a short contribution analysis on the job's data (tinytrain.sparse.contrib): the classifier plus each bias
   depth, and each candidate layer's weights at 1/8 ... 1 of its input channels, each a short fine-tuning
   run on the host reference, measured on a stratified quarter of the *training* split held out (the test
   split the job reports on is never seen while choosing);
2. the evolutionary search (tinytrain.sparse.search) maximizes the summed gain under the budget, every
   candidate's cost being the compiler's exact plan (`CostModel.exact`).

The result is a scheme JSON file, cached under ./results/search/auto/ (the current directory, never the
installation) and keyed by the model's fingerprint (the files' SHA-256), the board, the budget, the data's
identity (path + content), the class count, the input resolution, the data and compiler options and the
compiler's own sources; a second run with the same key reuses it. Its `about` says how it was found and
why it was chosen (the gains measured, the predicted SRAM against the budget).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinytrain import TinytrainError, output_dir
from tinytrain.ir import Graph

AUTO = "auto"
#: the analysis of the default search: a fixed recipe (documented in docs/search.md)
AUTO_LR = 0.01
AUTO_STEPS = 300
AUTO_VALIDATION = 0.25
AUTO_LAST_BLOCKS = 8
AUTO_EVALS = 200


@dataclass
class AutoScheme:
    """The default scheme of a job: its file (a scheme JSON) and what it says."""

    path: Path
    doc: dict[str, Any]
    cached: bool

    def describe(self) -> str:
        """One paragraph for the user: which scheme, and why."""
        a = self.doc["about"]
        return (
            f"scheme auto -> {self.path}{' (cached)' if self.cached else ''}: {spec_text(self.doc)}; "
            f"predicted SRAM {a['predicted_total_bytes'] / 1024:.1f} KB of board {a['board']}'s "
            f"{a['budget_bytes'] / 1024:.0f} KB (minimum, classifier only: "
            f"{a['minimum_bytes'] / 1024:.1f} KB). Why: {a['reason']}"
        )


def spec_text(spec: dict[str, Any]) -> str:
    """A scheme dict in words."""
    ws = ", ".join(f"{w['layer']} x{w['input_channel_ratio']:g}" for w in spec.get("weights", []))
    k = int(spec.get("bias_last_n", 0))
    parts = ["the classifier"]
    if k:
        parts.append(f"the biases of the last {k} convs")
    if ws:
        parts.append(f"the weights of {ws} (input-channel ratio)")
    return ("train " + " + ".join(parts)) if len(parts) > 1 else "train the classifier only"


def auto_key(
    graph: Graph,
    *,
    model: str,
    dataset_identity: str,
    resolution: int | None,
    data_options: dict[str, Any] | None,
    board: str,
    budget: int,
    options: Any,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything the default scheme depends on (the cache's key); `seed`: the job's split seed (it decides
    which samples are the training split the analysis measures on and which the job's held-out test)."""
    from tinytrain.sparse.contrib import data_options_of, model_fingerprint
    from tinytrain.sparse.cost import _compiler_digest

    return {
        "model": model_fingerprint(model),
        "board": board,
        "budget_bytes": int(budget),
        "dataset": dataset_identity,
        "split_seed": int(seed),
        "classes": graph.num_classes,
        "input_shape": list(graph.tensors[graph.input].shape),
        "resolution": resolution,
        "data_options": dict(data_options_of(data_options)),
        "options": asdict(options),
        "compiler": _compiler_digest(),
        "recipe": {
            "lr": AUTO_LR,
            "steps": AUTO_STEPS,
            "validation": AUTO_VALIDATION,
            "last_blocks": AUTO_LAST_BLOCKS,
            "evals": AUTO_EVALS,
        },
    }


def auto_scheme(
    graph: Graph,
    *,
    model: str,
    dataset: str,
    dataset_identity: str,
    resolution: int | None,
    data_options: dict[str, Any] | None,
    board: str,
    options: Any,
    say: Any = None,
    root: Path | None = None,
    seed: int = 0,
) -> AutoScheme:
    """The default scheme of `graph` (its head final) on `dataset` for `board` (module doc): read from the
    cache when its key matches, else searched and written (atomically) to the cache. `seed`: the job's
    split seed; the analysis measures on the training split of that same split, so the job's test samples
    are never seen while choosing."""
    from tinytrain.schedule import board_sram_bytes
    from tinytrain.sparse.contrib import KINDS, AnalysisSettings, _slug, analyze, data_options_of
    from tinytrain.sparse.cost import CostModel
    from tinytrain.sparse.search import search

    say = say or (lambda _m: None)
    budget = board_sram_bytes(board)
    key = auto_key(
        graph,
        model=model,
        dataset_identity=dataset_identity,
        resolution=resolution,
        data_options=data_options,
        board=board,
        budget=budget,
        options=options,
        seed=seed,
    )
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(root) if root is not None else output_dir("results", "search", "auto")
    path = root / f"{_slug(model)}_{board}_{budget // 1024}kb_{digest}.json"
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
            if doc["about"]["key"] == key:
                return AutoScheme(path, doc, cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a broken cache entry is searched again and rewritten
    cost = CostModel(graph, board, options)
    minimum = cost.minimum()
    if minimum > budget:
        raise TinytrainError(
            f"no scheme of {model} fits board {board}: even the classifier alone (scheme `last`) needs "
            f"{minimum:,} B of SRAM, the board has {budget:,} B; choose a board with more SRAM or a smaller "
            "input"
        )
    say(
        f"scheme auto: no cached scheme for {model} on {board} ({budget / 1024:.0f} KB); searching one "
        f"(contribution analysis on a held-out quarter of the training split, then the evolutionary search)"
    )
    settings = AnalysisSettings(
        model=model,
        dataset=dataset,
        resolution=resolution,
        lr=AUTO_LR,
        steps=AUTO_STEPS,
        test_images=0,
        split_seed=int(seed),
        update_rule=options.update_rule,
        qas=options.qas,
        seeds=(0,),
        last_blocks=AUTO_LAST_BLOCKS,
        kinds=KINDS,
        data_options=data_options_of(data_options),
        validation=AUTO_VALIDATION,
    )
    from tinytrain.data import DataError

    try:
        contrib = analyze(
            settings, workers=1, cache_root=output_dir("results", "search", "cache"), progress=say
        )
    except DataError as exc:  # the data loaded for the job; only the held-out quarter cannot be made
        return _write(
            path,
            {"bias_last_n": 0, "weights": []},
            f"too few training samples to measure any layer's gain on held-out ones ({exc}), so the "
            "cheapest scheme: the classifier only",
            {"model": model, "dataset": dataset, "board": board, "budget_bytes": budget, "key": key},
            cost.exact({"bias_last_n": 0, "weights": []}),
            minimum,
        )
    result = search(contrib, cost, budget, "evolution", AUTO_EVALS, seed=0)
    gains = sorted(
        ((contrib.weight_gain(la, r), la, r) for la in contrib.layers for r in contrib.ratios), reverse=True
    )
    best = ", ".join(f"{la} x{r:g} {g * 100:+.1f}" for g, la, r in gains[:3]) or "none"
    held_out = contrib.runs[0].get("test_images", 0) if contrib.runs else 0
    measured = (
        f"measured on {held_out} held-out training samples, the classifier alone reaching "
        f"{contrib.base_acc * 100:.1f} %; best single layers: {best} points"
    )
    if result.gain > 0:
        reason = (
            f"the largest summed accuracy gain ({result.gain * 100:+.1f} points over the classifier alone) "
            f"among the {result.evaluations} schemes whose exact memory plan was computed, all within the "
            f"board's SRAM ({measured})"
        )
    else:
        reason = (
            "no bias depth or layer gained accuracy over the classifier alone, so the cheapest scheme: "
            f"the classifier only ({measured})"
        )
    about = {
        "model": model,
        "dataset": dataset,
        "board": board,
        "budget_bytes": budget,
        "summed_gain": result.gain,
        "evaluations": result.evaluations,
        "contributions": contrib.settings,
        "key": key,
    }
    return _write(path, result.spec, reason, about, result.total, minimum)


def _write(
    path: Path, spec: dict[str, Any], reason: str, about: dict[str, Any], total: int, minimum: int
) -> AutoScheme:
    """The scheme file (written atomically) and its AutoScheme."""
    from tinytrain.atomic import write_text

    doc = {
        "name": path.stem,
        "bias_last_n": spec["bias_last_n"],
        "weights": spec["weights"],
        "about": {
            "found_by": "tinytrain emulate --scheme auto (tinytrain.sparse.auto)",
            "reason": reason,
            "predicted_total_bytes": total,
            "minimum_bytes": minimum,
            **about,
        },
    }
    write_text(path, json.dumps(doc, indent=1) + "\n")
    return AutoScheme(path, doc, cached=False)


def resolve_auto(cfg: Any, say: Any = None) -> Any:
    """`cfg` (a JobConfig) with scheme `auto` replaced by the default scheme's file (searched or cached),
    after saying which scheme it is and why; its build directory stays the one the `auto` job names. Any
    other scheme: `cfg` unchanged."""
    from dataclasses import replace

    from tinytrain.job import paths
    from tinytrain.job.prepare import load_job_data, with_head

    if cfg.scheme != AUTO:
        return cfg
    data = load_job_data(cfg.model, cfg.dataset, cfg.resolution, cfg.classes, cfg.seed, cfg.data_options())
    graph = with_head(data.base, data.classes, cfg.seed)
    found = auto_scheme(
        graph,
        model=cfg.model,
        dataset=cfg.dataset,
        dataset_identity=data.identity,
        resolution=cfg.resolution,
        data_options=cfg.data_options(),
        board=cfg.board,
        options=cfg.options,
        say=say,
        seed=cfg.seed,
    )
    if say is not None:
        say(found.describe())
    build_dir = cfg.build_dir or str(paths.build_root() / cfg.key())
    return replace(cfg, scheme=str(found.path), build_dir=build_dir)
