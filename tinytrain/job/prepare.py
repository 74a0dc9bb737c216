"""Prepare a job: the data, then model -> head -> scheme -> compile -> plan, and the data stream.

`load_job_data` loads the dataset for the model's input first (a bad dataset fails here, one line, before
anything is built) and fixes the head's class count: a path dataset's own (`classes` is a check), a shipped
set's first `classes` classes (default: all). `assemble` is the one place a training job is put together
(emulate, the bench, the experiments and the scheme search all call it); `make_job` turns the dataset into
the training stream host and device read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.codegen import datafile

if TYPE_CHECKING:
    from tinytrain.compiler import CompileOptions
    from tinytrain.data import Dataset
    from tinytrain.ir import Graph
    from tinytrain.job.config import JobConfig
    from tinytrain.program import Program
    from tinytrain.schedule.plan import MemoryPlan


@dataclass
class Assembly:
    """A compiled job: the graph with its head, the training program and (with a board) its memory plan."""

    graph: Graph
    program: Program
    plan: MemoryPlan | None


@dataclass
class JobData:
    """The job's data, loaded before anything is built: the model without a new head, the dataset as its
    int8 input, the head's class count and the dataset's identity (the build key's part)."""

    base: Graph
    dataset: Dataset
    classes: int
    identity: str

    def provenance(self) -> dict[str, Any]:
        """Where the samples came from and how they were made (the run record's `dataset_provenance`)."""
        prov = dict(self.dataset.provenance)
        prov["identity"] = self.identity
        if self.dataset.provenance.get("format") not in ("builtin", "sensor-scenario"):  # the user's files
            from tinytrain.data.identity import content_hash

            prov["content_sha256"] = content_hash(prov.get("source", self.dataset.name))
        prov["classes"] = self.dataset.classes
        prov["class_names"] = list(self.dataset.class_names)
        prov["input_shape"] = list(self.dataset.input_shape)
        return prov


def load_job_data(
    model: str,
    dataset: str,
    resolution: int | None,
    classes: int | None = None,
    seed: int = 0,
    data_options: dict[str, Any] | None = None,
) -> JobData:
    """The model (no new head yet) and `dataset` loaded for its input (`tinytrain.data.load_dataset`:
    shape, scale, zero point; `data_options`: window, stride, normalize, layout). The head's class count:
    a path dataset's own (`classes`, when given, must equal it); a shipped set's first `classes` classes
    (default all). Every data error is a `DataError` (one line, exit 2), raised before anything is built."""
    from tinytrain.data import DataError, load_dataset, model_input
    from tinytrain.data.identity import dataset_identity, is_path_dataset
    from tinytrain.models import load_model

    base = load_model(model, resolution)
    own = is_path_dataset(dataset)
    ds = load_dataset(
        dataset,
        seed=seed,
        classes=classes if own else None,
        **model_input(base),
        **(data_options or {}),
    )
    n = ds.classes
    if not own and classes is not None:
        if classes > ds.classes:
            raise DataError(f"dataset {dataset!r} has {ds.classes} classes; {classes} were requested")
        n = classes
    return JobData(base, ds, n, dataset_identity(dataset))


def with_head(graph: Graph, classes: int | None, seed: int = 0, fresh_head: bool = False) -> Graph:
    """`graph` with a new `classes`-way head if it has a different number of classes (`fresh_head`: a new
    head whenever `classes` is given, even of the same size)."""
    from tinytrain.models import replace_head

    if classes is not None and (fresh_head or classes != graph.num_classes):
        graph = replace_head(graph, classes, seed=seed)
    return graph


def load_graph(
    model: str, resolution: int | None, classes: int | None, seed: int = 0, fresh_head: bool = False
) -> Graph:
    """The model at `resolution` with a new `classes`-way head if it has a different number of classes
    (`fresh_head`: a new head whenever `classes` is given, even of the same size)."""
    from tinytrain.models import load_model

    return with_head(load_model(model, resolution), classes, seed, fresh_head)


def compile_program(
    graph: Graph, scheme: Any, options: CompileOptions | None = None, board: Any = None
) -> Program:
    """`graph` (head in place) + scheme (a name, a file, a dict or a resolved Scheme) -> training Program;
    `board` (a name or Board) decides what the options leave open (the multiply-add contract)."""
    from tinytrain.compiler import compile_training

    return compile_training(graph, scheme, options, board=board)


def plan_program(program: Program, board: Any) -> MemoryPlan:
    from tinytrain.schedule import plan_memory

    return plan_memory(program, board)


def check_plan_fits(plan: MemoryPlan, board: Any) -> None:
    """TinytrainError (with the planner's breakdown) when the plan does not fit the board's SRAM."""
    from tinytrain.schedule import check_fits

    try:
        check_fits(plan, board)
    except TinytrainError as exc:
        raise TinytrainError(f"{exc}\n\n{plan.report()}") from None


def assemble(
    model: str | Graph,
    scheme: Any,
    options: CompileOptions | None = None,
    *,
    resolution: int | None = None,
    classes: int | None = None,
    seed: int = 0,
    board: Any = None,
    fresh_head: bool = False,
) -> Assembly:
    """load -> head -> compile -> plan: the model (a zoo name, a directory, or a Graph whose head is final),
    the scheme, the compiler options; planned when a board (name or Board) is given."""
    if isinstance(model, str):
        graph = load_graph(model, resolution, classes, seed, fresh_head)
    else:
        graph = model
    program = compile_program(graph, scheme, options, board=board)
    plan = plan_program(program, board) if board is not None else None
    return Assembly(graph, program, plan)


def make_job(
    cfg: JobConfig, num_classes: int, input_shape: tuple[int, ...], dataset: Dataset | None = None
) -> datafile.TrainingJob:
    """The training stream: the dataset split (`dataset`, loaded by `load_job_data`; default: loaded here
    at the config's resolution), the order (epochs shuffled with the seed), the learning rates and the
    firmware's job flags, as dataset.bin packs them for host and device alike."""
    from tinytrain.data import load_dataset

    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.resolution, seed=cfg.seed)
    xs, ys, xt, yt = ds.train_x, ds.train_y, ds.test_x, ds.test_y
    if ds.classes != num_classes:
        if num_classes < ds.classes:  # keep the first `num_classes` classes
            keep_s, keep_t = ys < num_classes, yt < num_classes
            xs, ys, xt, yt = xs[keep_s], ys[keep_s], xt[keep_t], yt[keep_t]
        else:
            raise TinytrainError(
                f"dataset {cfg.dataset!r} has {ds.classes} classes; the model has {num_classes}"
            )
    if cfg.max_train:
        xs, ys = xs[: cfg.max_train], ys[: cfg.max_train]
    if cfg.max_test is not None:
        xt, yt = xt[: cfg.max_test], yt[: cfg.max_test]
    if tuple(xs.shape[1:]) != tuple(input_shape):
        raise TinytrainError(
            f"dataset samples are {tuple(xs.shape[1:])}, the model's input is {tuple(input_shape)}"
        )
    steps = cfg.steps if cfg.steps is not None else cfg.epochs * len(xs)
    if steps < 0:
        raise TinytrainError("steps must be >= 0")
    order = datafile.make_order(len(xs), steps, cfg.seed)
    flags = datafile.TEST_PREDS | (datafile.EVAL_BEFORE | datafile.EVAL_AFTER if cfg.evaluate else 0)
    flags |= datafile.DUMP_PARAMS
    if cfg.profile_calls and cfg.profile and cfg.backend == "qemu" and steps >= 2:
        flags |= datafile.PROFILE_CALLS
    return datafile.TrainingJob(
        xs,
        ys,
        xt,
        yt,
        order,
        np.full(steps, cfg.lr, np.float32),
        num_classes,
        rng_seed=cfg.rng_seed,
        flags=flags,
        meta={"dataset": cfg.dataset, "seed": cfg.seed},
    )
