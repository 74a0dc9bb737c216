"""What an export (and a power-cut campaign) is built from: the model with its head, the compiled training
program, its memory plan for the chosen board, a few training samples and the host reference's results on
them (the self-check the exported example runs)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.program import Program, Storage
from tinytrain.sparse.auto import AUTO

if TYPE_CHECKING:
    from tinytrain.compiler import CompileOptions
    from tinytrain.ir import Graph


#: --cpu -> the emulated board whose limits the plan must fit (emulation/boards.py)
CPU_BOARDS = {"cortex-m4": "m4", "cortex-m7": "m7"}
BOARD_CPUS = {v: k for k, v in CPU_BOARDS.items()}
#: version of the slot format (firmware/export/tinytrain.c); bump when the layout changes
STATE_FORMAT_VERSION = 1
RNG_SEED = 0x2545F491
#: --resolution of an image zoo model when not given (an imported or IR model runs at its own input size)
DEFAULT_ZOO_RESOLUTION = 48


@dataclass
class ExportConfig:
    model: str = "mcunet-5fps"
    scheme: str = "last"
    dataset: str = "faces"
    classes: int | None = None  # None: the dataset's
    resolution: int | None = None  # None: 48 for a zoo image model, else the model's own input
    cpu: str = "cortex-m4"
    lr: float = 0.002
    update_rule: str = "stochastic"
    head_lr_scale: float = 1.0
    momentum: float = 0.0
    accumulate: int = 1  # samples per mini-batch (docs/numerics.md "Momentum and mini-batches")
    steps: int = 3  # training steps of the example's self-check
    seed: int = 0  # dataset split and sample order

    @property
    def model_resolution(self) -> int | None:
        """The resolution the model is loaded at: --resolution, else 48 for the image zoo, else its own."""
        from tinytrain.models.zoo import ZOO

        if self.resolution is not None:
            return self.resolution
        return DEFAULT_ZOO_RESOLUTION if self.model in ZOO else None

    @property
    def board(self) -> str:
        if self.cpu not in CPU_BOARDS:
            raise TinytrainError(f"unknown --cpu {self.cpu!r}; valid: {', '.join(CPU_BOARDS)}")
        return CPU_BOARDS[self.cpu]


@dataclass
class SelfCheck:
    """Samples of the example and what the host reference computes on them (bit-exact expectations)."""

    samples: np.ndarray  # int8 [steps, H, W, C]
    labels: list[int]
    losses: list[float]  # float32 values, per step
    test_sample: np.ndarray  # int8 [H, W, C]
    test_logits: np.ndarray  # int8 [K]: after the steps
    params: dict[str, np.ndarray] = field(default_factory=dict)  # trainable state after the steps
    # one more step after the state was saved and loaded back (it resumes a mini-batch mid-way when the
    # steps are not a multiple of --accumulate): its sample, label, loss and the test logits after it
    resume_sample: np.ndarray | None = None
    resume_label: int = 0
    resume_loss: float = 0.0
    resume_logits: np.ndarray | None = None


@dataclass
class Prepared:
    cfg: ExportConfig
    graph: Any
    program: Program
    plan: Any
    check: SelfCheck


def check_config(cfg: ExportConfig) -> None:
    """Bad options -> TinytrainError (exit 2) before anything is loaded."""
    _ = cfg.board
    if cfg.classes is not None and cfg.classes < 2:
        raise TinytrainError("--classes must be at least 2")
    if cfg.resolution is not None and cfg.resolution < 8:
        raise TinytrainError("--resolution must be at least 8")
    if not cfg.lr > 0:
        raise TinytrainError("--lr must be positive")
    if isinstance(cfg.accumulate, bool) or not isinstance(cfg.accumulate, int) or cfg.accumulate < 1:
        raise TinytrainError(f"--accumulate must be an integer >= 1, got {cfg.accumulate!r}")
    if not 1 <= cfg.steps <= 64:
        raise TinytrainError("--steps (the example's self-check) must be between 1 and 64")


def auto_scheme_path(cfg: ExportConfig, graph: Graph, options: CompileOptions) -> str:
    """`--scheme auto`: the scheme file `tinytrain emulate` searches for (or finds cached for) the same model,
    dataset, board and options (tinytrain.sparse.auto); says on stderr which and why."""
    import sys

    from tinytrain.data.identity import dataset_identity
    from tinytrain.sparse.auto import auto_scheme

    found = auto_scheme(
        graph,
        model=cfg.model,
        dataset=cfg.dataset,
        dataset_identity=dataset_identity(cfg.dataset),
        resolution=cfg.model_resolution,
        data_options=None,
        board=cfg.board,
        options=options,
        say=lambda m: print(m, file=sys.stderr, flush=True),
        seed=cfg.seed,
    )
    print(found.describe(), file=sys.stderr, flush=True)
    return str(found.path)


def prepare(cfg: ExportConfig, *, check_fit: bool = True) -> Prepared:
    """Load, compile and plan; a plan over the board's SRAM raises (exit 2) with the planner's breakdown."""
    from tinytrain.compiler import CompileOptions, check_optimizer
    from tinytrain.data import load_dataset, model_input
    from tinytrain.job.prepare import assemble, check_plan_fits, with_head
    from tinytrain.models import load_model
    from tinytrain.reference.training import Trainer

    check_config(cfg)
    try:
        check_optimizer(cfg.momentum, cfg.accumulate)
    except TinytrainError as exc:
        raise TinytrainError(f"--momentum / --accumulate: {exc}") from None
    base = load_model(cfg.model, cfg.model_resolution)
    ds = load_dataset(cfg.dataset, seed=cfg.seed, **model_input(base))  # the samples as the model's input
    classes = cfg.classes if cfg.classes is not None else ds.classes
    if classes > ds.classes:
        raise TinytrainError(
            f"--classes {classes}: dataset {cfg.dataset!r} has only {ds.classes} classes for the example"
        )
    options = CompileOptions(
        update_rule=cfg.update_rule,
        momentum=cfg.momentum,
        accumulate=cfg.accumulate,
        head_lr_scale=cfg.head_lr_scale,
    )
    graph = with_head(base, classes, cfg.seed)
    if cfg.scheme == AUTO:  # the default scheme `emulate` finds (and caches) for this model, data and board
        cfg = replace(cfg, scheme=auto_scheme_path(cfg, graph, options))
    job = assemble(graph, cfg.scheme, options, board=cfg.board)
    graph, program, plan = job.graph, job.program, job.plan
    assert plan is not None  # planned: a board was given
    if check_fit:
        from emulation.boards import get_board

        check_plan_fits(plan, cfg.board)
        flash_size = get_board(cfg.board).flash_size
        if plan.flash > flash_size:
            raise TinytrainError(
                f"does not fit: the frozen weights and tables need {plan.flash:,} bytes of flash, board "
                f"`{cfg.board}` has {flash_size:,} (before code and the two state slots)\n\n{plan.report()}"
            )

    from tinytrain.codegen import datafile

    keep = ds.train_y < classes
    xs, ys = ds.train_x[keep], ds.train_y[keep]
    xt = ds.test_x[ds.test_y < classes]
    order = datafile.make_order(len(xs), cfg.steps + 1, cfg.seed)
    trainer = Trainer(program, seed=RNG_SEED)
    lr = float(np.float32(cfg.lr))
    losses = [float(np.float32(trainer.train_step(xs[i], int(ys[i]), lr))) for i in order[:-1]]
    check = SelfCheck(
        samples=np.stack([xs[i] for i in order[:-1]]).astype(np.int8),
        labels=[int(ys[i]) for i in order[:-1]],
        losses=losses,
        test_sample=np.asarray(xt[0], np.int8),
        test_logits=np.asarray(trainer.infer(xt[0]), np.int8),
        params={k: np.array(v) for k, v in trainer.parameters().items()},
    )
    r = order[-1]
    check.resume_sample = np.asarray(xs[r], np.int8)
    check.resume_label = int(ys[r])
    check.resume_loss = float(np.float32(trainer.train_step(xs[r], int(ys[r]), lr)))
    check.resume_logits = np.asarray(trainer.infer(xt[0]), np.int8)
    return Prepared(cfg, graph, program, plan, check)


def fingerprint(program: Program, param_names: list[str]) -> int:
    """64 bits identifying the model a saved state belongs to: name, classes, scheme, options, the layout of
    the state (names, dtypes, shapes, in order) and the built-in weights and tables."""
    h = hashlib.sha256()
    desc = {
        "model": program.model,
        "classes": program.num_classes,
        "scheme": program.scheme,
        "options": program.meta.get("options"),
        "state": [(n, program.buffers[n].dtype, list(program.buffers[n].shape)) for n in param_names],
    }
    h.update(json.dumps(desc, sort_keys=True, default=str).encode())
    for name in sorted(program.buffers):
        buf = program.buffers[name]
        if buf.storage in (Storage.FLASH, Storage.SRAM) and buf.data is not None:
            h.update(name.encode())
            h.update(np.ascontiguousarray(buf.data).tobytes())
    return int.from_bytes(h.digest()[:8], "little")
