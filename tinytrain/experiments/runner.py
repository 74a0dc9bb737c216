"""Execute one `RunSpec`: train on the (capped) training set with batch-1 SGD, evaluate on the held-out
split, and measure the compiler's memory plan. Returns a JSON-able row.

- int8 runs use the host training reference (`tinytrain.reference.training.Trainer`), which is bit-exact
  with the firmware: these are the device's numbers.
- fp32 runs use `tinytrain.torch_model.FloatNet` (dequantized weights, the int8 model's clamp ranges) with
  the same scheme, the same sample order, the same per-step learning rate (the classifier's multiplied
  by `head_lr_scale`, as the int8 program's tables are) and plain SGD (no momentum, no weight decay,
  batch 1), as on the device.

Same seed, same everything but the method: the head's initialization (`replace_head(seed=...)`), the
sample order (a permutation per epoch from `numpy.random.default_rng(seed)`) and the stochastic-rounding
stream (xorshift32 seeded from the seed) all come from the run's seed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Any

import numpy as np

from emulation.boards import DEFAULT_BOARD
from tinytrain import TinytrainError
from tinytrain.experiments.config import RunSpec, lr_at

BOARD = DEFAULT_BOARD
MEMORY_RESOLUTION = 128
CURVE_POINTS = 30  # points of the stored training-loss curve


@dataclasses.dataclass
class Split:
    train_x: np.ndarray
    train_y: np.ndarray
    eval_x: np.ndarray
    eval_y: np.ndarray
    classes: int


@functools.lru_cache(maxsize=8)
def _dataset(
    model: str,
    name: str,
    resolution: int | None,
    split_seed: int,
    data_options: tuple[tuple[str, Any], ...] = (),
) -> Any:
    """The dataset as `model`'s input, loaded as emulate loads it (tinytrain.job.prepare.load_job_data: any
    dataset it takes, float data quantized with the model's input scale)."""
    from tinytrain.job.prepare import load_job_data

    return load_job_data(model, name, resolution, seed=split_seed, data_options=dict(data_options)).dataset


def data_options(value: Any) -> tuple[tuple[str, Any], ...]:
    """`RunSpec.data_options` from a row (JSON turns the pairs into lists)."""
    return tuple((str(k), v) for k, v in (value or ()))


def train_subset(y: np.ndarray, max_train: int, seed: int) -> np.ndarray:
    """Indices of a stratified subset of `max_train` samples (all of them if there are not more)."""
    if max_train <= 0 or len(y) <= max_train:
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(y)), train_size=max_train, random_state=seed, stratify=y)
    return np.sort(idx)


def make_split(sp: RunSpec) -> Split:
    """The run's training samples and its evaluation samples: the fixed test split, or for the lr sweep
    (`split="val"`) a validation set drawn from the training split only, never from the test split:
    `val_size` stratified images outside the `max_train` cap when the training split has that many
    (training on the whole cap, as the test runs do), else a stratified `val_fraction` of the capped set."""
    ds = _dataset(sp.model, sp.dataset, sp.resolution, sp.split_seed, sp.data_options)
    idx = train_subset(ds.train_y, sp.max_train, sp.split_seed)
    tx, ty = ds.train_x[idx], ds.train_y[idx]
    if sp.split == "test":
        return Split(tx, ty, ds.test_x, ds.test_y, ds.classes)
    from sklearn.model_selection import train_test_split

    rest = np.setdiff1d(np.arange(len(ds.train_y)), idx)
    if sp.val_size > 0 and len(rest) >= sp.val_size:
        if len(rest) > sp.val_size:
            va, _ = train_test_split(
                rest, train_size=sp.val_size, random_state=sp.split_seed, stratify=ds.train_y[rest]
            )
        else:
            va = rest
        va = np.sort(va)
        return Split(tx, ty, ds.train_x[va], ds.train_y[va], ds.classes)
    tr, va = train_test_split(
        np.arange(len(ty)), test_size=sp.val_fraction, random_state=sp.split_seed, stratify=ty
    )
    tr, va = np.sort(tr), np.sort(va)
    return Split(tx[tr], ty[tr], tx[va], ty[va], ds.classes)


def rng_seed(seed: int) -> int:
    """Non-zero xorshift32 state derived from the run seed."""
    return ((0x2545F491 ^ (seed * 0x9E3779B1)) & 0xFFFFFFFF) or 1


def _xent(logits: np.ndarray, labels: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def _curve(losses: list[float], points: int = CURVE_POINTS) -> list[float]:
    """Mean training loss over `points` consecutive equal chunks of the steps."""
    if not losses:
        return []
    chunks = np.array_split(np.asarray(losses, np.float64), min(points, len(losses)))
    return [float(c.mean()) for c in chunks]


def schedule(sp: RunSpec, n: int) -> list[tuple[int, float]]:
    """(sample index, lr) of every step: one permutation per epoch from the run seed."""
    rng = np.random.default_rng(sp.seed)
    order = np.concatenate([rng.permutation(n) for _ in range(sp.epochs)])
    total = len(order)
    return [(int(i), lr_at(t, total, sp.lr, sp.warmup_fraction)) for t, i in enumerate(order)]


def _assemble(sp: RunSpec, resolution: int, classes: int, opts: Any, board: str | None = None) -> Any:
    """The job of a run (tinytrain.job.assemble): always a new head, the experiment's scheme names."""
    from tinytrain.experiments.schemes import resolve
    from tinytrain.job.prepare import assemble, load_graph

    graph = load_graph(sp.model, resolution, classes, sp.seed, fresh_head=True)
    return assemble(graph, resolve(sp.scheme, graph), opts, board=board)


def memory(sp: RunSpec, resolution: int, classes: int, board: str = BOARD) -> dict[str, Any]:
    """The compiler's memory plan of this run's program at `resolution` (the int8 program, whatever the
    engine: for fp32 runs it is the memory the same scheme needs on the device)."""
    from tinytrain.compiler import CompileOptions

    opts = CompileOptions(update_rule=sp.rule, qas=sp.qas, head_lr_scale=sp.head_lr_scale)
    asm = _assemble(sp, resolution, classes, opts, board)
    plan = asm.plan
    assert plan is not None
    return {
        "total": int(plan.total),
        "arena": int(plan.arena),
        "breakdown": {k: int(v) for k, v in plan.breakdown.items()},
        "flash": int(plan.flash),
        "options": dataclasses.asdict(opts),
    }


_KERNELS: dict[bool, str] = {}


def trainer_kernels(fma: bool) -> str:
    """The host trainer's kernels for int8 runs: "native" (the C runtime built by the host's gcc, bit-exact
    with the numpy reference, 2-3x faster) when it builds, else "numpy"; TINYTRAIN_KERNELS=numpy forces the
    numpy reference."""
    if os.environ.get("TINYTRAIN_KERNELS", "") == "numpy":
        return "numpy"
    if fma not in _KERNELS:
        from tinytrain.reference.training import native_kernels

        try:
            native_kernels(fma)
            _KERNELS[fma] = "native"
        except TinytrainError:
            _KERNELS[fma] = "numpy"
    return _KERNELS[fma]


def _train_int8(sp: RunSpec, data: Split) -> tuple[list[float], np.ndarray, dict[str, Any]]:
    from tinytrain.compiler import CompileOptions
    from tinytrain.reference.training import Trainer

    # the run's contract is its program's (the Trainer runs meta["fma"] whatever the process's default)
    opts = CompileOptions(update_rule=sp.rule, qas=sp.qas, head_lr_scale=sp.head_lr_scale, fma=sp.fma)
    asm = _assemble(sp, sp.resolution, data.classes, opts)
    graph, program = asm.graph, asm.program
    kernels = trainer_kernels(sp.fma)
    trainer = Trainer(program, seed=rng_seed(sp.seed), kernels=kernels)
    losses = [
        trainer.train_step(data.train_x[i], int(data.train_y[i]), lr)
        for i, lr in schedule(sp, len(data.train_y))
    ]
    logits = np.stack([trainer.infer(x) for x in data.eval_x]).astype(np.float64)
    out = graph.tensors[graph.output]
    logits = (logits - out.zero) * out.scale
    extra = {"options": dataclasses.asdict(opts), "program_steps": len(program.steps), "kernels": kernels}
    return losses, logits, extra


def _train_fp32(sp: RunSpec, data: Split) -> tuple[list[float], np.ndarray, dict[str, Any]]:
    import torch

    from tinytrain.experiments.schemes import resolve
    from tinytrain.job.prepare import load_graph
    from tinytrain.torch_model import FloatNet, cross_entropy, param_groups, sgd_step

    torch.set_num_threads(1)
    graph = load_graph(sp.model, sp.resolution, data.classes, sp.seed, fresh_head=True)
    net = FloatNet(graph)
    groups = param_groups(net, resolve(sp.scheme, graph), sp.head_lr_scale)
    params = [p for g, _ in groups for p in g]
    xs = net.input_from_int8(data.train_x)
    ys = torch.from_numpy(np.asarray(data.train_y, np.int64))
    losses = []
    for i, lr in schedule(sp, len(data.train_y)):
        loss = cross_entropy(net(xs[i : i + 1]), ys[i : i + 1])
        for p in params:
            p.grad = None
        loss.backward()
        sgd_step(groups, lr)
        losses.append(float(loss.detach()))
    with torch.no_grad():
        logits = net(net.input_from_int8(data.eval_x)).double().numpy()
    return losses, logits, {"trainable_params": int(sum(p.numel() for p in params))}


def run(
    sp: RunSpec, board: str = BOARD, memory_resolution: int = MEMORY_RESOLUTION, with_memory: bool = True
) -> dict[str, Any]:
    """Train and evaluate one run; the row (spec fields + results)."""
    t0, c0 = time.perf_counter(), time.process_time()
    data = make_split(sp)
    if sp.engine == "int8":
        losses, logits, extra = _train_int8(sp, data)
    elif sp.engine == "fp32":
        losses, logits, extra = _train_fp32(sp, data)
    else:
        raise ValueError(f"unknown engine {sp.engine!r}")
    train_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    pred = np.argmax(logits, axis=1)  # ties: lowest index, as the firmware
    row: dict[str, Any] = dataclasses.asdict(sp)
    row["data_options"] = [list(p) for p in sp.data_options]  # as its JSON file reads back
    row.update(
        {
            "key": sp.key(),
            "label": sp.label(),
            "accuracy": float((pred == data.eval_y).mean()),
            "eval_loss": _xent(logits, np.asarray(data.eval_y)),
            "eval_samples": int(len(data.eval_y)),
            "train_samples": int(len(data.train_y)),
            "steps": len(losses),
            "final_train_loss": float(np.mean(losses[-max(1, len(losses) // 10) :])),
            "diverged": not all(math.isfinite(v) for v in losses),
            "loss_curve": _curve(losses),
            "seconds": round(train_s, 2),  # wall time of training + evaluation (not the memory plans)
            "cpu_seconds": round(cpu_s, 2),
            **extra,
        }
    )
    if with_memory:
        row["memory"] = {
            str(r): memory(sp, r, data.classes, board) for r in sorted({sp.resolution, memory_resolution})
        }
        row["board"] = board
    return row
