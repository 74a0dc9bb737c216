"""The job's configuration: what to train, where, and with which compiler options.

`JobConfig` (alias `EmulateConfig`) nests a `CompileOptions`, so every compiler lever (reordering,
in-place ops, split weights, patches, ...) reaches the firmware through `tinytrain emulate` and the bench.
`DEFAULTS` is the embedded default job (`tinytrain emulate --defaults`), flat as the command line names it;
a task (`--defaults --task NAME`, tinytrain.tasks) replaces some of them with its own.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from emulation.boards import DEFAULT_BOARD
from tinytrain import TinytrainError
from tinytrain.compiler import CompileOptions
from tinytrain.data.identity import dataset_identity

#: The embedded default job (`tinytrain emulate --defaults`, `tox -e emulate`).
DEFAULTS: dict[str, Any] = {
    "model": "mcunet-5fps",
    "scheme": "paper:99kb",
    "dataset": "faces",
    "classes": 2,
    "resolution": 80,
    "board": DEFAULT_BOARD,
    "epochs": 3,
    # the recipe of the accuracy evidence (docs/evidence.md): lr 0.001 with the new head at 30x, stochastic
    # rounding (the compiler default); results/evidence/main_job.md measures it at this job's settings
    "lr": 0.001,
    "head_lr_scale": 30.0,
    "baseline": "last",
}

#: CompileOptions fields a flat (command-line style) job description may name.
OPTION_FIELDS = frozenset(f.name for f in fields(CompileOptions))
#: The options the job key always spells out (the others only when they differ from the default).
_KEYED_OPTIONS = ("momentum", "accumulate", "head_lr_scale")


class FirmwareFault(TinytrainError):
    """The firmware faulted (or exited non-zero) on the emulated board."""

    exit_code = 3


@dataclass
class JobConfig:
    model: str = "mcunet-5fps"
    scheme: str = "paper:99kb"
    dataset: str = "faces"  # faces, digits, or a path: image folder, .npz, .csv, .ts (docs/data.md)
    classes: int | None = None  # None: the dataset's; a path dataset: a check of the data's class count
    resolution: int | None = 64  # square image input; None: the model's own input (a 1-D model's series)
    board: str = DEFAULT_BOARD
    steps: int | None = None  # training steps; None: `epochs` epochs over the train split
    epochs: int = 1
    lr: float = 0.002
    # every compiler switch (update rule, momentum, mini-batches, head lr multiplier, the memory levers)
    options: CompileOptions = field(default_factory=CompileOptions)
    seed: int = 0
    rng_seed: int = 0x2545F491
    max_train: int | None = None  # cap on the train split (None: all)
    max_test: int | None = None  # cap on the test split (None: all)
    evaluate: bool = True
    backend: str = "qemu"  # "qemu" | "host" (host-native build of the same C, no instruction counts)
    source: str = "semihost"  # "semihost" | "flash" (the dataset embedded in the firmware image)
    check_reference: bool = True
    profile: bool = True  # load the ttprof plugin: exact counts, instruction classes -> the cycle estimate
    profile_calls: bool = True  # profiled: the first step counts every kernel call (per-layer breakdown)
    dump_params: str | None = None  # write the trained tensors to this .npz
    save_model: str | None = None  # write the trained model as a model directory (tinytrain infer reads it)
    timeout: float = 3600.0
    build_dir: str | None = None  # default: build/emulate/<job key> under the current directory
    save_record: bool = True  # write the record under results/runs/ (current directory)
    baseline: str | None = None  # also train this scheme on the host reference (same stream), e.g. "last"
    baseline_lr: float | None = None  # the baseline's own learning rate (None: the job's `lr`)
    report_dir: str | None = None  # write report.html + plots + record.json here
    task: str | None = None  # the task whose defaults this job started from (tinytrain.tasks), if any
    # how the user's data become the model's input (tinytrain.data.load_dataset, docs/data.md)
    window: int | None = None  # cut time series into windows of this many steps
    stride: int | None = None  # a window every this many steps (None: the window)
    normalize: str = "standard"  # float data: per-channel standardization ("standard") or "none"
    layout: str = "chw"  # how an int8 .npz stores samples: "chw" (PyTorch) or "hwc" (TFLite)

    # the options the record and the summary name on their own
    @property
    def update_rule(self) -> str:
        return self.options.update_rule

    @property
    def momentum(self) -> float:
        return self.options.momentum

    @property
    def accumulate(self) -> int:
        return self.options.accumulate

    @property
    def head_lr_scale(self) -> float:
        return self.options.head_lr_scale

    @classmethod
    def from_fields(cls, **given: Any) -> JobConfig:
        """A config from a flat description (command-line names): CompileOptions fields (`update_rule`,
        `momentum`, `split_weights`, ...) go into `options`, the rest are the job's own."""
        opts = {k: given.pop(k) for k in list(given) if k in OPTION_FIELDS}
        base = given.pop("options", None) or CompileOptions()
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise TinytrainError(f"unknown job setting(s): {', '.join(unknown)}")
        return cls(**given, options=replace(base, **opts))

    def data_options(self) -> dict[str, Any]:
        """The `load_dataset` keyword arguments of the data settings."""
        return {
            "window": self.window,
            "stride": self.stride,
            "normalize": self.normalize,
            "layout": self.layout,
        }

    def to_dict(self) -> dict[str, Any]:
        """The config as the run record keeps it (`options` nested)."""
        return asdict(self)

    def flat(self) -> dict[str, Any]:
        """The config as one flat dict (the options' fields beside the job's own)."""
        d = asdict(self)
        opts = d.pop("options")
        return {**d, **opts}

    def key(self) -> str:
        """Names the build directory: the job's main settings and every option that is not the default."""
        m = Path(self.model).name if ("/" in self.model or os.sep in self.model) else self.model
        # a path dataset: its name + a hash of its resolved path and content (two folders never share a build)
        res = [f"r{self.resolution}"] if self.resolution else []  # None: the model's own input
        parts = [m, self.scheme.replace(":", "-"), dataset_identity(self.dataset), *res]
        parts.append(self.board)
        for name, default in _DATA_DEFAULTS.items():
            if getattr(self, name) != default:
                parts.append(f"{name}{getattr(self, name)}")
        if self.momentum:
            parts.append(f"mom{self.momentum:g}")
        if self.accumulate != 1:
            parts.append(f"acc{self.accumulate}")
        if self.head_lr_scale != 1.0:
            parts.append(f"head{self.head_lr_scale:g}")
        default = CompileOptions()
        for f in fields(CompileOptions):
            if f.name in _KEYED_OPTIONS or f.name == "update_rule":
                continue
            v = getattr(self.options, f.name)
            if v != getattr(default, f.name):
                parts.append(f"{f.name}{v}" if not isinstance(v, bool) else ("" if v else "no-") + f.name)
        if self.backend != "qemu":
            parts.append(self.backend)
        return "-".join(p.replace("/", "_") for p in parts)

    def command(self) -> str:
        """The command line that reproduces this job (as far as the command line can say it)."""
        cfg = self.flat()
        base = defaults_for(self.task)
        head = "tinytrain emulate --defaults" + (f" --task {self.task}" if self.task else "")
        diff = [k for k, v in base.items() if cfg.get(k) != v]
        if not diff and cfg.get("steps") is None:
            return head
        parts = [head]
        for k in ("model", "scheme", "dataset", "classes", "resolution", "board", "epochs", "lr"):
            if cfg.get(k) != base.get(k) and cfg.get(k) is not None:
                parts.append(f"--{k} {shlex.quote(str(cfg[k]))}")
        if cfg.get("steps") is not None:
            parts.append(f"--steps {cfg['steps']}")
        if cfg.get("max_test") is not None:
            parts.append(f"--max-test {cfg['max_test']}")
        for k, default in _DATA_DEFAULTS.items():
            if cfg.get(k) != default:
                parts.append(f"--{k} {shlex.quote(str(cfg[k]))}")
        return " ".join(parts)

    def is_main_job(self) -> bool:
        """True for the embedded default job itself (every setting that shapes the result at its default;
        where files go and the time limit aside): the only run that refreshes results/main-job (a task's
        default job: results/<task>-job)."""
        mine, main = self.flat(), config_from_defaults(task=self.task).flat()
        return all(mine[k] == main[k] for k in main if k not in _NOT_SHAPING)


#: The data settings and their defaults (the job key and the command name them only when they differ).
_DATA_DEFAULTS: dict[str, Any] = {"window": None, "stride": None, "normalize": "standard", "layout": "chw"}

#: Settings that do not change a run's result, only where it writes or how long it may take.
_NOT_SHAPING = frozenset(
    {"timeout", "build_dir", "save_record", "report_dir", "dump_params", "save_model", "task"}
)

EmulateConfig = JobConfig


def defaults_for(task: str | None = None) -> dict[str, Any]:
    """The flat defaults of the embedded default job, or of task `task` (its settings over DEFAULTS)."""
    if task is None:
        return dict(DEFAULTS)
    from tinytrain.tasks import task_defaults

    return {**DEFAULTS, **task_defaults(task), "task": task}


def config_from_defaults(task: str | None = None, **overrides: Any) -> JobConfig:
    """The default job (of `task`, if given) with `overrides` (flat names; None means "keep the default")."""
    base = defaults_for(task)
    return JobConfig.from_fields(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
