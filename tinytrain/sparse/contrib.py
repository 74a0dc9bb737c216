"""Contribution analysis: how much accuracy each part of a sparse update buys, measured on the host
training reference (int8 forward, QAS updates: exactly what the firmware computes).

Two families of measurements, each a short fine-tuning run of a new classifier head on a dataset:

- **bias depth** `bias:k`: classifier + the biases of the last `k` backbone convs. `k = 0` is the
  classifier-only baseline; `gain_bias[k] = acc(k) - acc(0)`.
- **weights** `weight:<layer>:<ratio>`: on top of the biases of the last `ref_bias` convs, the weights
  of one layer on its first `ratio` of input channels; `gain_weight[layer, r] = acc(ref_bias + W) -
  acc(ref_bias)`.

Following the paper, the search treats the gains as additive: `gain(scheme) = gain_bias[k] +
sum(gain_weight[layer, r])`.

Speed: every measurement freezes everything before its earliest trained layer, so the int8 activation at
a single-tensor cut before it is the same in every run: it is computed once per (model, dataset,
resolution, cut) through the reference's inference steps and cached (`features-*.npz`). A run then
trains the *tail* graph (the ops after the cut) on those features; this is bit-identical to training the
whole graph (tests/search/test_contrib.py checks it). Each measurement is a JSON file in the cache
directory (keyed by model, dataset, resolution and every setting that changes the result), so an
interrupted analysis resumes where it stopped; runs go through an executor (tinytrain.executor: `workers`
local processes, or Ray).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError, output_dir
from tinytrain.executor import Executor, Task, TasksFailed, make_executor
from tinytrain.ir import Graph
from tinytrain.progress import Tracker

#: The task of one measurement (tinytrain.executor).
MEASURE_TASK = "tinytrain.sparse.contrib:measure"

RATIOS = (0.125, 0.25, 0.5, 1.0)


def default_cache() -> Path:
    """./results/search/cache under the current directory (never the installation or the checkout)."""
    return output_dir("results", "search", "cache")


KINDS = ("pointwise", "depthwise", "regular")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class AnalysisSettings:
    """Everything that decides a measurement's result (plus which measurements to make)."""

    model: str = "mcunet-5fps"
    dataset: str = "digits"
    resolution: int | None = 128  # None: the model's own input (an imported or 1-D model)
    lr: float = 0.05
    steps: int = 300  # training steps, batch 1 (epochs over the train split if larger than it)
    test_images: int = 300  # evaluate on N test images (0: the whole test split)
    test_skip: int = 0  # ... starting at this one (a held-out part for the evidence runs)
    split_seed: int = 0  # dataset split
    update_rule: str = "nearest"
    qas: bool = True
    # which measurements (not part of the cache key of a single measurement)
    seeds: tuple[int, ...] = (0,)  # head init + training order
    ratios: tuple[float, ...] = RATIOS
    last_blocks: int = 7  # candidate weight layers: convs of the last N blocks (and their kinds)
    kinds: tuple[str, ...] = ("pointwise",)
    layers: tuple[str, ...] | None = None  # explicit candidate layers (overrides last_blocks/kinds)
    ref_bias: int | None = None  # bias depth under weight measurements (None: reach the earliest candidate)
    bias_ks: tuple[int, ...] | None = None  # bias depths to measure (None: about 8 up to ref_bias)
    # how the user's data become the model's input (load_dataset's window, stride, normalize, layout),
    # as sorted (name, value) pairs; only the ones that differ from the defaults (tinytrain.data)
    data_options: tuple[tuple[str, Any], ...] = ()
    # > 0: measure on this fraction of the training split (stratified, `split_seed`), trained on the rest;
    # the test split is never seen (the default scheme search); 0: measure on the test split
    validation: float = 0.0

    def result_key(self) -> dict[str, Any]:
        """The settings that change a single measurement's outcome (the cache directory's key)."""
        return {
            "model": self.model,
            **({"model_sha256": model_fingerprint(self.model)} if Path(self.model).is_dir() else {}),
            "dataset": self.dataset,
            "resolution": self.resolution,
            "lr": self.lr,
            "steps": self.steps,
            "test_images": self.test_images,
            **({"test_skip": self.test_skip} if self.test_skip else {}),
            "split_seed": self.split_seed,
            "update_rule": self.update_rule,
            "qas": self.qas,
            **({"data_options": dict(self.data_options)} if self.data_options else {}),
            **({"validation": self.validation} if self.validation else {}),
        }

    def cache_dir(self, root: Path | None = None) -> Path:
        root = default_cache() if root is None else root
        key = json.dumps(self.result_key(), sort_keys=True)
        h = hashlib.sha1(key.encode()).hexdigest()[:10]
        # a path dataset: its name + a hash of its path and content (tinytrain.data.identity), no slashes
        from tinytrain.data.identity import dataset_identity

        return Path(root) / f"{_slug(self.model)}_{dataset_identity(self.dataset)}_r{self.resolution}_{h}"


def _slug(model: str) -> str:
    """A model's name in a cache directory's name: a zoo name, or a directory's last part."""
    return Path(model).name if ("/" in model or os.sep in model) else model


def model_fingerprint(model: str) -> str:
    """A model's identity: a zoo name itself; a model directory, the SHA-256 of its files (names and bytes),
    so a re-imported model never reuses what was measured or searched for the old one."""
    p = Path(model)
    if not p.is_dir():
        return model
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(f.relative_to(p).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def data_options_of(options: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """`AnalysisSettings.data_options` from `load_dataset` keyword arguments (defaults left out, so a
    cache made without them is still found)."""
    defaults = {"window": None, "stride": None, "normalize": "standard", "layout": "chw"}
    return tuple(sorted((k, v) for k, v in (options or {}).items() if defaults.get(k, object()) != v))


# --------------------------------------------------------------------------- graph helpers
def _backbone(graph: Graph) -> list[str]:
    cls = graph.producer(graph.output)
    return [op.name for op in graph.convs() if cls is None or op.name != cls.name]


def conv_kind(graph: Graph, layer: str) -> str:
    op = graph.op(layer)
    if op.depthwise:
        return "depthwise"
    a = op.attrs  # an imported conv names its kernel kernel_h x kernel_w; a fully connected one is 1 x 1
    taps = int(a["kernel"]) ** 2 if "kernel" in a else int(a.get("kernel_h", 1)) * int(a.get("kernel_w", 1))
    return "pointwise" if taps == 1 else "regular"


def _block_of(name: str) -> str:
    m = re.match(r"^(.*?blocks?[._]\d+)[._]", name)
    return m.group(1) if m else name


def candidate_layers(graph: Graph, last_blocks: int, kinds: Iterable[str] = ("pointwise",)) -> list[str]:
    """Backbone convs of the last `last_blocks` blocks (blocks from `blocks.<i>.` names; a conv outside
    any block is its own block) whose kind (pointwise / depthwise / regular) is in `kinds`."""
    kinds = tuple(kinds)
    bad = set(kinds) - set(KINDS)
    if bad:
        raise TinytrainError(f"unknown layer kind(s) {sorted(bad)}: choose from {', '.join(KINDS)}")
    backbone = _backbone(graph)
    blocks: list[str] = []
    for name in backbone:
        b = _block_of(name)
        if b not in blocks:
            blocks.append(b)
    keep = set(blocks[len(blocks) - last_blocks :]) if last_blocks > 0 else set()
    return [n for n in backbone if _block_of(n) in keep and conv_kind(graph, n) in kinds]


def bias_depth_to(graph: Graph, layer: str) -> int:
    """The `bias_last_n` whose biases reach back to `layer` (inclusive)."""
    backbone = _backbone(graph)
    return len(backbone) - backbone.index(layer)


def cut_before(graph: Graph, layer: str) -> int:
    """Index `i` of the latest op at or before `layer` such that the ops `i..` read only the tensor
    `graph.ops[i].inputs[0]` and their own outputs (a single-tensor cut); 0 if none is later."""
    names = [op.name for op in graph.ops]
    stop = names.index(layer)
    for i in range(stop, 0, -1):
        cut = graph.ops[i].inputs[0]
        produced = {cut} | {op.output for op in graph.ops[i:]}
        if all(t in produced for op in graph.ops[i:] for t in op.inputs):
            return i
    return 0


def tail_graph(graph: Graph, index: int) -> Graph:
    """The graph of ops `index..` with input `graph.ops[index].inputs[0]` (see `cut_before`)."""
    if index == 0:
        return graph
    ops = graph.ops[index:]
    cut = ops[0].inputs[0]
    produced = {cut} | {op.output for op in ops}
    g = Graph(
        graph.name, {t: graph.tensors[t] for t in produced}, list(ops), cut, graph.output, dict(graph.meta)
    )
    g.validate()
    return g


def earliest_trained(graph: Graph, spec: dict[str, Any]) -> str:
    from tinytrain.sparse.schemes import resolve_scheme

    scheme = resolve_scheme(spec, graph)
    trained = scheme.trainable_layers()
    return next(op.name for op in graph.ops if op.name in trained)


# --------------------------------------------------------------------------- data and features
@dataclass
class _Data:
    train_y: np.ndarray
    test_y: np.ndarray
    classes: int
    features: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # cut -> (train, test)


class Workbench:
    """Loads a dataset once and trains schemes on it from cached cut features. Used by the analysis
    and by the evidence runs (any scheme dict)."""

    def __init__(self, settings: AnalysisSettings, cache_root: Path | None = None) -> None:
        from tinytrain.job.prepare import load_job_data

        self.settings = settings
        # the job's own loading: any dataset emulate takes (images, .npz, series), as the model's input
        data = load_job_data(
            settings.model,
            settings.dataset,
            settings.resolution,
            seed=settings.split_seed,
            data_options=dict(settings.data_options),
        )
        ds = data.dataset
        self.dir = settings.cache_dir(cache_root)
        self.dir.mkdir(parents=True, exist_ok=True)
        train_x, train_y, test_x, test_y = ds.train_x, ds.train_y, ds.test_x, ds.test_y
        if settings.validation:  # measure on held-out training samples: the test split stays unseen
            from tinytrain.data.split import stratified_split

            fit, val = stratified_split(train_y, settings.validation, settings.split_seed, settings.dataset)
            train_x, train_y, test_x, test_y = train_x[fit], train_y[fit], train_x[val], train_y[val]
        n_test = settings.test_images or len(test_y)
        self._sel = slice(settings.test_skip, settings.test_skip + n_test)
        self._train_x, self._test_all = train_x, test_x
        self.data = _Data(train_y, test_y[self._sel], ds.classes)
        self.base = data.base
        self._graphs: dict[int, Graph] = {}
        self.workers = 1  # processes for computing features

    def graph(self, seed: int) -> Graph:
        """The model with a new head for the dataset, initialized with `seed`."""
        from tinytrain.models.head import replace_head

        if seed not in self._graphs:
            self._graphs[seed] = replace_head(self.base, self.data.classes, seed=seed)
        return self._graphs[seed]

    def features(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """int8 HWC activations at cut `index` for the train split and the test subset (disk-cached)."""
        if index in self.data.features:
            return self.data.features[index]
        g = self.graph(0)
        if index == 0:
            out = (self._train_x, self._test_all[self._sel])
        else:
            cut = g.ops[index].inputs[0]
            s = self.settings
            from tinytrain.data.identity import dataset_identity

            d = dataset_identity(s.dataset)
            extra = (s.data_options, s.validation)
            opts = hashlib.sha1(repr(extra).encode()).hexdigest()[:8] if any(extra) else ""
            name = f"features_{_slug(s.model)}_{d}_r{s.resolution}_split{s.split_seed}{opts}"
            fdir = self.dir.parent / name
            fdir.mkdir(parents=True, exist_ok=True)
            path = fdir / f"{cut}.npz"
            z = np.load(path) if path.exists() else None
            if z is not None and len(z["test"]) == len(self._test_all):  # features of the whole test split
                out = (z["train"], z["test"])
            else:
                out = (
                    _features_parallel(g, index, self._train_x, self.workers),
                    _features_parallel(g, index, self._test_all, self.workers),
                )
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
                np.savez(tmp, train=out[0], test=out[1])
                os.replace(tmp, path)
            out = (out[0], out[1][self._sel])
        self.data.features[index] = out
        return out

    def train(self, spec: dict[str, Any], seed: int, cut: int | None = None) -> dict[str, Any]:
        """Fine-tune `spec` (a scheme dict) from the head initialized with `seed`; test accuracy etc.
        The frozen prefix is cut at the latest single-tensor cut before the earliest trained layer, or
        at op `cut` if that is earlier (to share one feature cache between runs)."""
        from tinytrain.compiler import CompileOptions
        from tinytrain.job.prepare import assemble
        from tinytrain.reference.training import Trainer
        from tinytrain.sparse.schemes import resolve_scheme

        s = self.settings
        t0 = time.perf_counter()
        g = self.graph(seed)
        index = cut_before(g, earliest_trained(g, spec))
        if cut is not None:
            index = min(index, cut)
        tail = tail_graph(g, index)
        fx_train, fx_test = self.features(index)
        opts = CompileOptions(update_rule=s.update_rule, qas=s.qas)
        program = assemble(tail, resolve_scheme(spec, tail), opts).program
        trainer = Trainer(program, seed=0x2545F491 ^ (seed + 1))
        order = training_order(len(self.data.train_y), s.steps, seed)
        losses = [trainer.train_step(fx_train[i], int(self.data.train_y[i]), s.lr) for i in order]
        acc = trainer.evaluate(fx_test, self.data.test_y)
        tail_n = max(1, len(losses) // 5)
        return {
            "accuracy": acc,
            "final_loss": float(np.mean(losses[-tail_n:])),
            "steps": len(order),
            "test_images": len(self.data.test_y),
            "seconds": round(time.perf_counter() - t0, 2),
            "cut": tail.input,
        }


def training_order(n: int, steps: int, seed: int) -> np.ndarray:
    """Sample indices of `steps` training steps: seeded epochs (a fresh permutation each)."""
    rng = np.random.default_rng(seed)
    epochs = math.ceil(steps / n)
    return np.concatenate([rng.permutation(n) for _ in range(epochs)])[:steps]


def _features(graph: Graph, index: int, xs: np.ndarray) -> np.ndarray:
    """Activations at the input of op `index` for every sample, via the reference inference steps."""
    from tinytrain.job.prepare import assemble
    from tinytrain.reference.training import Trainer

    program = assemble(graph, "last").program
    trainer = Trainer(program)
    cut = graph.ops[index].inputs[0]
    buf = program.meta["activation_buffers"][cut]
    out = []
    for x in xs:
        trainer.infer(x)
        out.append(trainer.buffers[buf].copy())
    return np.stack(out) if out else np.zeros((0,), np.int8)


def _features_parallel(graph: Graph, index: int, xs: np.ndarray, workers: int) -> np.ndarray:
    if workers <= 1 or len(xs) < 2 * workers:
        return _features(graph, index, xs)
    chunks = np.array_split(xs, workers)
    with mp.get_context("fork").Pool(workers) as pool:
        parts = pool.starmap(_features, [(graph, index, c) for c in chunks])
    return np.concatenate(parts)


# --------------------------------------------------------------------------- measurements
@dataclass(frozen=True)
class Job:
    kind: str  # "bias" | "weight"
    k: int  # bias depth (for a weight job: the reference bias depth under it)
    layer: str = ""
    ratio: float = 0.0
    seed: int = 0

    @property
    def name(self) -> str:
        if self.kind == "bias":
            return f"bias-{self.k}-s{self.seed}"
        return f"weight-{self.layer}-r{self.ratio:g}-b{self.k}-s{self.seed}"

    def spec(self) -> dict[str, Any]:
        weights = [{"layer": self.layer, "input_channel_ratio": self.ratio}] if self.kind == "weight" else []
        return {"bias_last_n": self.k, "weights": weights}


def plan_jobs(graph: Graph, s: AnalysisSettings) -> tuple[list[Job], list[str], int, list[int]]:
    """The measurements of an analysis: (jobs, candidate layers, reference bias depth, bias depths)."""
    layers = list(s.layers) if s.layers is not None else candidate_layers(graph, s.last_blocks, s.kinds)
    backbone = _backbone(graph)
    for layer in layers:
        if layer not in backbone:
            raise TinytrainError(f"layer {layer!r} is not a backbone conv of {graph.name!r}")
    ref = (
        s.ref_bias
        if s.ref_bias is not None
        else (max(bias_depth_to(graph, layer) for layer in layers) if layers else 0)
    )
    if s.bias_ks is not None:
        ks = sorted(set(s.bias_ks) | {0})
    else:
        top = max(ref, 1)
        step = max(1, round(top / 8))
        ks = sorted({0, *range(step, top, step), top})
    if any(not 0 <= k <= len(backbone) for k in ks) or not 0 <= ref <= len(backbone):
        raise TinytrainError(f"bias depths must be in [0, {len(backbone)}] for {graph.name!r}")
    ks = sorted(set(ks) | {ref})
    jobs: list[Job] = []
    for seed in s.seeds:
        jobs += [Job("bias", k, seed=seed) for k in ks]
        jobs += [Job("weight", ref, layer, r, seed) for layer in layers for r in s.ratios]
    return jobs, layers, ref, ks


#: Workbenches of this process by (settings, cache root): a worker loads the dataset and model once.
_BENCHES: dict[tuple[AnalysisSettings, str], Workbench] = {}


def measure(settings: AnalysisSettings, cache_root: str, cut: int | None, job: Job) -> dict[str, Any]:
    """The task of one measurement (tinytrain.executor): train `job`'s scheme from the cut; -> its result."""
    key = (settings, cache_root)
    if key not in _BENCHES:
        _BENCHES[key] = Workbench(settings, Path(cache_root))
    return _BENCHES[key].train(job.spec(), job.seed, cut)


@dataclass
class Contributions:
    """Measured gains (mean over seeds) and the raw runs."""

    settings: dict[str, Any]
    ref_bias: int
    layers: list[str]
    ratios: list[float]
    bias_acc: dict[int, float]  # k -> mean accuracy
    weight_acc: dict[str, dict[float, float]]  # layer -> ratio -> mean accuracy (on top of ref_bias)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base_acc(self) -> float:
        return self.bias_acc[0]

    def bias_gain(self, k: int) -> float:
        """Gain of bias depth `k` over classifier-only; depths between measured ones are interpolated."""
        ks = sorted(self.bias_acc)
        return float(np.interp(k, ks, [self.bias_acc[x] for x in ks])) - self.base_acc

    def weight_gain(self, layer: str, ratio: float) -> float:
        return self.weight_acc[layer][ratio] - self.bias_acc[self.ref_bias]

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "ref_bias": self.ref_bias,
            "layers": self.layers,
            "ratios": self.ratios,
            "base_accuracy": self.base_acc,
            "bias_accuracy": {str(k): v for k, v in sorted(self.bias_acc.items())},
            "bias_gain": {str(k): self.bias_gain(k) for k in sorted(self.bias_acc)},
            "weight_accuracy": {la: {f"{r:g}": a for r, a in d.items()} for la, d in self.weight_acc.items()},
            "weight_gain": {
                la: {f"{r:g}": self.weight_gain(la, r) for r in d} for la, d in self.weight_acc.items()
            },
            "runs": self.runs,
        }

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Contributions:
        try:
            doc = json.loads(Path(path).read_text())
            return cls(
                doc["settings"],
                int(doc["ref_bias"]),
                list(doc["layers"]),
                [float(r) for r in doc["ratios"]],
                {int(k): float(v) for k, v in doc["bias_accuracy"].items()},
                {la: {float(r): float(a) for r, a in d.items()} for la, d in doc["weight_accuracy"].items()},
                list(doc.get("runs", [])),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TinytrainError(f"contribution file {path}: cannot read ({exc})") from exc

    def table_rows(self) -> list[dict[str, Any]]:
        rows = [
            {
                "item": f"bias last {k}",
                "layer": "",
                "ratio": "",
                "bias_last_n": k,
                "accuracy": a,
                "gain": self.bias_gain(k),
            }
            for k, a in sorted(self.bias_acc.items())
        ]
        for la, d in self.weight_acc.items():
            rows += [
                {
                    "item": f"{la} x{r:g}",
                    "layer": la,
                    "ratio": r,
                    "bias_last_n": self.ref_bias,
                    "accuracy": a,
                    "gain": self.weight_gain(la, r),
                }
                for r, a in sorted(d.items())
            ]
        return rows


def analyze(
    settings: AnalysisSettings,
    workers: int = 2,
    cache_root: Path | None = None,
    progress: Callable[[str], None] | None = None,
    executor: Executor | None = None,
    live: bool = False,
) -> Contributions:
    """Run (or resume) the contribution analysis; every measurement is cached as JSON. The measurements go
    through `executor` (default: `workers` forked local processes; 1 = in this process)."""
    say = progress or (lambda m: print(m, file=sys.stderr, flush=True))
    cache_root = default_cache() if cache_root is None else Path(cache_root)
    bench = Workbench(settings, cache_root)
    bench.workers = workers
    g = bench.graph(settings.seeds[0] if settings.seeds else 0)
    jobs, layers, ref, ks = plan_jobs(g, settings)
    cache = bench.dir
    (cache / "settings.json").write_text(json.dumps(settings.result_key(), indent=1))
    done: dict[Job, dict[str, Any]] = {}
    todo: list[Job] = []
    for j in jobs:
        p = cache / f"{j.name}.json"
        if p.exists():
            done[j] = json.loads(p.read_text())
        else:
            todo.append(j)
    say(
        f"contribution analysis {settings.model} / {settings.dataset} @ "
        f"{settings.resolution or 'its own input'}: "
        f"{len(jobs)} measurements ({len(done)} cached), {len(layers)} layers x {len(settings.ratios)} "
        f"ratios on bias depth {ref}, bias depths {ks}, seeds {list(settings.seeds)}; cache {cache}"
    )
    if todo:
        # the shared cut of every job: features are computed once here, before the workers start
        earliest = min(cut_before(g, earliest_trained(g, j.spec())) for j in todo)
        t0 = time.perf_counter()
        bench.features(earliest)
        say(f"features at {g.ops[earliest].inputs[0]}: {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()

        def record(i: int, job: Job, res: dict[str, Any], track: Tracker) -> None:
            res = {"job": asdict(job), **res}
            tmp = cache / f"{job.name}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(res, indent=1))
            os.replace(tmp, cache / f"{job.name}.json")
            done[job] = res
            el = time.perf_counter() - t0
            eta = el / i * (len(todo) - i)
            track.done(
                True,
                f"[{i}/{len(todo)}] {job.name}: acc {res['accuracy']:.4f} ({res['seconds']:.1f} s); "
                f"elapsed {el / 60:.1f} min, eta {eta / 60:.1f} min",
            )

        # the driver's workbench serves the in-process runs, and forked workers inherit it
        _BENCHES[(settings, str(cache_root))] = bench
        jobs_by_name = {j.name: j for j in todo}
        tasks = [Task(MEASURE_TASK, (settings, str(cache_root), earliest, j), j.name) for j in todo]
        if executor is None:
            width = 1 if len(todo) == 1 else workers
            executor = make_executor(
                "local", width, "process", "fork" if sys.platform != "win32" else "spawn"
            )
        failed: list[str] = []
        with Tracker("measurements", len(todo), live, say) as track, executor:
            for out in executor.map(tasks):
                if out.ok:
                    record(track.finished + 1, jobs_by_name[out.task.key], out.value, track)
                else:
                    failed.append(f"{out.task.key}: {out.error}")
                    track.done(False, f"FAILED {out.task.key}: {out.error.splitlines()[0][:300]}")
        if failed:
            raise TasksFailed(
                f"{len(failed)} of {len(todo)} measurements failed (the others are cached; run again to "
                f"retry them): {failed[0].splitlines()[0][:500]}"
            )
    bias_acc = {
        k: float(np.mean([done[j]["accuracy"] for j in jobs if j.kind == "bias" and j.k == k])) for k in ks
    }
    weight_acc = {
        la: {
            r: float(
                np.mean(
                    [
                        done[j]["accuracy"]
                        for j in jobs
                        if j.kind == "weight" and j.layer == la and j.ratio == r
                    ]
                )
            )
            for r in settings.ratios
        }
        for la in layers
    }
    runs = [done[j] for j in jobs]
    return Contributions(
        {**settings.result_key(), "seeds": list(settings.seeds)},
        ref,
        layers,
        [float(r) for r in settings.ratios],
        bias_acc,
        weight_acc,
        runs,
    )


def settings_with(settings: AnalysisSettings, **kw: Any) -> AnalysisSettings:
    return replace(settings, **kw)
