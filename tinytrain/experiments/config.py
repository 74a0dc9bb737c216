"""What an evidence run is: the settings shared by every run (`Settings`), one training run (`RunSpec`),
and the suites (lr sweep, Table 1, Fig. 9, rounding) as lists of run specs.

A run is identified by everything that changes its result (`RunSpec.key()`), so a row cached under that
key can be reused by any suite that needs the same run (Table 1's "int8 with QAS", Fig. 9's
`paper:99kb` and the rounding suite's `nearest` are one run).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from emulation.boards import DEFAULT_BOARD
from tinytrain import TinytrainError

MODEL = "mcunet-5fps"
#: the scheme of Table 1 and of the rounding suite: the paper's ~100 KB scheme for MCUNet-5FPS
MAIN_SCHEME = "paper:99kb"
PAPER_BUDGETS = ("49kb", "74kb", "99kb", "124kb", "148kb")
LAST_K_BLOCKS = (1, 2, 4)
#: Fig. 9's schemes, cheapest first (memory ordering is decided by the plan, not by this list)
FIG9_SCHEMES = (
    "last",
    "bias",
    *(f"blocks:{k}" for k in LAST_K_BLOCKS),
    *(f"paper:{b}" for b in PAPER_BUDGETS),
    "full",
)
RULES = ("nearest", "stochastic", "shadow")
#: the update rule of the int8 + QAS runs of the sweep, Table 1 and Fig. 9 (the rounding suite runs all
#: three): stochastic rounding, the rule this evidence recommends as the compiler default
DEFAULT_RULE = "stochastic"
#: head learning-rate multipliers swept with the lr (CompileOptions.head_lr_scale: the classifier's lr is
#: `lr * head_lr_scale`): the new head learns from scratch while the pretrained layers only adapt
HEAD_GRID = (1.0, 4.0, 10.0, 30.0)
#: lr families (family -> the scheme its lr is swept on): the classifier-only baseline, the main scheme
#: (every paper budget, fp32, no-QAS and the rounding runs use its lr), and the deep baselines of Fig. 9
#: (bias-only, last-k blocks, full), which diverge at the main scheme's lr and get their own
FAMILIES = {"last": "last", "main": MAIN_SCHEME, "bias": "bias", "blocks": "blocks:2", "full": "full"}
#: each family's lr grid (log-spaced, ~x3 apart; QAS makes the int8 lr an fp32-SGD lr): around each
#: family's optimum under stochastic rounding, found on 0.0003 ... 0.1 with nearest rounding earlier (the
#: classifier alone 0.01, the sparse scheme 0.001, diverging from 0.01 on) and in a one-seed exploration
FAMILY_GRID = {
    "last": (0.003, 0.01, 0.03),
    "main": (0.0003, 0.001, 0.003),
    "bias": (0.0001, 0.0003, 0.001),
    "blocks": (0.0003, 0.001, 0.003),
    "full": (0.0001, 0.0003, 0.001),
}
#: each family's head multipliers (`last` trains the head alone: its lr is the head's lr); the deep
#: baselines try two (their sweeps are the expensive ones)
FAMILY_HEAD_GRID = {
    "last": (1.0,),
    "main": HEAD_GRID,
    "bias": (1.0, 10.0),
    "blocks": (1.0, 10.0),
    "full": (1.0, 10.0),
}
#: the deep baselines of Fig. 9 (their sweeps use `Settings.deep_sweep_seeds` of the sweep seeds)
DEEP_FAMILIES = ("bias", "blocks", "full")
SUITES = ("lr", "table1", "fig9", "rounding")


@dataclass(frozen=True)
class Settings:
    """Settings shared by all runs of an evidence run."""

    datasets: tuple[str, ...] = ("faces", "digits")
    seeds: tuple[int, ...] = (0, 1, 2)
    resolution: int | None = 64  # None: the model's own input (an imported or 1-D model)
    epochs: int = 2
    #: stratified subset of the training split (the fixed split's first-seed subset, same for every seed);
    #: faces has 140 training images, so the cap only bites on digits (1257 -> 200, 20 per class)
    max_train: int = 200
    #: validation images of the sweep, drawn from the training split outside the cap (digits: 300 of the
    #: 1057 left); where there are not enough (faces), `val_fraction` of the capped training set
    val_size: int = 300
    val_fraction: float = 0.25
    #: seeds of the sweep of the two headline families (`last` and the main scheme): a one-seed sweep cannot
    #: see a seed-dependent collapse (it chose an lr x head at the edge of divergence for digits once)
    sweep_seeds: tuple[int, ...] = (0, 1, 2)
    #: how many of `sweep_seeds` the deep baselines' sweeps (bias, blocks, full: the expensive ones) use
    deep_sweep_seeds: int = 1
    warmup_fraction: float = 0.05
    split_seed: int = 0
    board: str = DEFAULT_BOARD
    memory_resolution: int | None = 128  # the paper's resolution, memory is reported at this one too
    #: update rule of the int8 + QAS runs of the sweep, Table 1 and Fig. 9 (the rounding suite runs all three)
    rule: str = DEFAULT_RULE
    lr: dict[str, dict[str, float]] = field(default_factory=dict)  # dataset -> family -> lr (if fixed)
    #: dataset -> family -> head_lr_scale (chosen with the lr by the sweep, or fixed); missing: 1
    head: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the head multipliers the sweep tries (None: FAMILY_HEAD_GRID); `last` always uses 1
    head_grid: tuple[float, ...] | None = None
    #: also train the fp32 twin of every Fig. 9 scheme (Table 1 always has fp32 `last` and the main scheme)
    fp32_fig9: bool = True
    #: the model (the paper's MCUNet-5FPS; or any model emulate takes: a zoo name or a model directory)
    model: str = MODEL
    #: how the user's data become the model's input (load_dataset's window, stride, normalize, layout), as
    #: sorted (name, value) pairs that differ from the defaults
    data_options: tuple[tuple[str, Any], ...] = ()

    def base(self) -> dict[str, Any]:
        """The fields every run's key includes."""
        return {
            "model": self.model,
            "data_options": self.data_options,
            "resolution": self.resolution,
            "epochs": self.epochs,
            "max_train": self.max_train,
            "warmup_fraction": self.warmup_fraction,
            "split_seed": self.split_seed,
            "val_fraction": self.val_fraction,
        }

    @property
    def main_scheme(self) -> str:
        """Table 1's and the rounding suite's scheme: the paper's `paper:99kb` where the model has it (the
        zoo's MCUNet-5FPS), else `bias` (every bias + the classifier: a model of one's own has no published
        schemes)."""
        from tinytrain.sparse.schemes import paper_budgets

        return MAIN_SCHEME if MAIN_SCHEME.split(":", 1)[1] in paper_budgets(self.model) else "bias"

    @property
    def fig9_schemes(self) -> tuple[str, ...]:
        """Fig. 9's schemes this model has: the published `paper:*` ones and the `blocks:k` baselines (named
        after the zoo's `blocks.<i>` layers) only for a zoo model that has them."""
        from tinytrain.sparse.schemes import paper_budgets

        have = set(paper_budgets(self.model))
        return tuple(
            s
            for s in FIG9_SCHEMES
            if not (s.startswith("paper:") and s.split(":", 1)[1] not in have)
            and not (s.startswith("blocks:") and not have)
        )

    @property
    def fp32(self) -> bool:
        """Has the model an fp32 twin (tinytrain.torch_model.FloatNet gives each of its ops a float meaning)?
        Where it has none, its fp32 runs are left out."""
        return has_fp32_twin(self.model, self.resolution)

    def head_grid_of(self, fam: str) -> tuple[float, ...]:
        if fam == "last":
            return (1.0,)
        return self.head_grid if self.head_grid is not None else FAMILY_HEAD_GRID[fam]


@functools.lru_cache(maxsize=8)
def has_fp32_twin(model: str, resolution: int | None) -> bool:
    """Can tinytrain.torch_model.FloatNet build `model` (at `resolution`)?"""
    from tinytrain.models import load_model
    from tinytrain.torch_model import FloatNet

    try:
        FloatNet(load_model(model, resolution))
    except TinytrainError:
        return False
    return True


#: RunSpec fields added after evidence rows were cached: left out of the key's hash at their default, so
#: the rows cached before they existed keep their keys
_KEY_DEFAULTS: dict[str, Any] = {"head_lr_scale": 1.0, "val_size": 0, "data_options": (), "fma": False}


@dataclass(frozen=True)
class RunSpec:
    """One training run: a dataset, a seed, an engine and scheme, the update options and the lr."""

    dataset: str
    seed: int
    scheme: str  # last | bias | full | paper:<b> | blocks:<k>
    engine: str = "int8"  # int8 (host reference = device) | fp32 (PyTorch FloatNet)
    qas: bool = True
    rule: str = DEFAULT_RULE
    lr: float = 0.01
    #: the classifier's lr is `lr * head_lr_scale` (CompileOptions.head_lr_scale; fp32: its param group)
    head_lr_scale: float = 1.0
    split: str = "test"  # test: train on the training set, evaluate on the test split; val: sweep
    model: str = MODEL
    resolution: int | None = 64  # None: the model's own input
    epochs: int = 2
    max_train: int = 200
    warmup_fraction: float = 0.05
    split_seed: int = 0
    val_fraction: float = 0.25
    #: split "val": validate on this many (stratified) training images outside the `max_train` cap, if
    #: the training split has them (digits), training on the whole cap as the test runs do; 0 or too few
    #: images (faces): hold out `val_fraction` of the capped set instead
    val_size: int = 0
    #: the data options of `Settings.data_options` (left out of the key at their default: ())
    data_options: tuple[tuple[str, Any], ...] = ()
    #: int8: the backward's multiply-add contract (docs/numerics.md "Fused multiply-add"; `spec` sets the
    #: current one, tinytrain.kernels.fma). False (two roundings, the rows cached before fma became the
    #: default keep their keys) and always False for fp32 (PyTorch: the contract does not apply).
    fma: bool = False

    def __post_init__(self) -> None:
        if self.engine == "fp32" and self.fma:
            object.__setattr__(self, "fma", False)

    def key(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if _KEY_DEFAULTS.get(k, ...) != v}
        doc = json.dumps(fields, sort_keys=True)
        h = hashlib.sha1(doc.encode()).hexdigest()[:10]
        tag = self.scheme.replace(":", "-")
        qas = "" if self.qas or self.engine == "fp32" else "-noqas"
        rule = "" if self.engine == "fp32" else f"-{self.rule}"
        head = "" if self.head_lr_scale == 1.0 else f"-h{self.head_lr_scale:g}"
        run = f"{self.engine}-{tag}{qas}{rule}-lr{self.lr:g}{head}"
        from tinytrain.data.identity import dataset_identity

        # a path dataset: its name + a hash of its path and content (no slashes in the cache file's name)
        return f"{self.split}-{dataset_identity(self.dataset)}-s{self.seed}-{run}-{h}"

    def label(self) -> str:
        head = "" if self.head_lr_scale == 1.0 else f" head×{self.head_lr_scale:g}"
        if self.engine == "fp32":
            return f"fp32 {self.scheme}{head}"
        contract = "" if self.fma else " two-rounding"
        return f"int8 {self.scheme}{'' if self.qas else ' no-QAS'} {self.rule}{head}{contract}"


def lr_at(step: int, total: int, base: float, warmup_fraction: float) -> float:
    """Linear warmup over the first `warmup_fraction` of the steps, then cosine decay to 0."""
    warm = max(1, math.ceil(warmup_fraction * total)) if warmup_fraction > 0 else 0
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return base * 0.5 * (1.0 + math.cos(math.pi * t))


def spec(settings: Settings, **kw: Any) -> RunSpec:
    """A run of these settings under the current multiply-add contract (int8 runs)."""
    from tinytrain.kernels.fma import fma_enabled

    return RunSpec(**{"fma": fma_enabled(), **settings.base(), **kw})


def sweep_specs(settings: Settings) -> list[RunSpec]:
    """The lr sweep: each family's scheme (int8, QAS, the settings' rule) at every (lr, head multiplier)
    of its grid, trained on the training set and evaluated on a validation set drawn from the training
    split (never the test split)."""
    out = []
    for i, seed in enumerate(settings.sweep_seeds):
        for ds in settings.datasets:
            for fam, fam_scheme in FAMILIES.items():
                if fam in DEEP_FAMILIES and i >= settings.deep_sweep_seeds:
                    continue
                if fam == "main" and settings.main_scheme != MAIN_SCHEME:
                    continue  # a model of one's own: its main scheme is `bias`, swept as the bias family
                if fam == "blocks" and fam_scheme not in settings.fig9_schemes:
                    continue  # a model without the zoo's blocks
                for lr in FAMILY_GRID[fam]:
                    for hs in settings.head_grid_of(fam):
                        out.append(
                            spec(
                                settings,
                                dataset=ds,
                                seed=seed,
                                scheme=fam_scheme,
                                lr=lr,
                                head_lr_scale=hs,
                                split="val",
                                val_size=settings.val_size,
                                rule=settings.rule,
                            )
                        )
    return out


def family(scheme: str) -> str:
    """The lr family of a scheme (see FAMILIES)."""
    if scheme in ("last", "bias", "full"):
        return scheme
    return "blocks" if scheme.startswith("blocks:") else "main"


def lr_for(settings: Settings, dataset: str, scheme: str) -> float:
    try:
        return settings.lr[dataset][family(scheme)]
    except KeyError as exc:
        raise TinytrainError(
            f"no learning rate for {dataset}/{family(scheme)}: run the lr sweep or pass --lr"
        ) from exc


def head_for(settings: Settings, dataset: str, scheme: str) -> float:
    """The head multiplier of a scheme's runs (1 for `last`, whose lr is the head's)."""
    fam = family(scheme)
    if fam == "last":
        return 1.0
    return float(settings.head.get(dataset, {}).get(fam, 1.0))


#: the key of `Settings.lr[dataset]` holding the main scheme's best lr with the head at x1 (the sweep's
#: choice among its head-x1 runs): Table 1's "one global lr" ablation
MAIN_HEAD1 = "main@head1"


def head1_lr(settings: Settings, dataset: str) -> float:
    """The main scheme's lr for head x1 (the sweep's best head-x1 lr, else the main lr)."""
    return settings.lr.get(dataset, {}).get(MAIN_HEAD1, lr_for(settings, dataset, settings.main_scheme))


def suite_specs(settings: Settings, suite: str) -> list[RunSpec]:
    """The runs of a suite (the lr sweep must have fixed `settings.lr` for all but `lr`)."""
    if suite == "lr":
        return sweep_specs(settings)
    out: list[RunSpec] = []
    for seed in settings.seeds:
        for ds in settings.datasets:
            base = {"dataset": ds, "seed": seed}

            def s(scheme: str, base: dict[str, Any] = base, **kw: Any) -> RunSpec:
                kw.setdefault("lr", lr_for(settings, base["dataset"], scheme))
                kw.setdefault("head_lr_scale", head_for(settings, base["dataset"], scheme))
                kw.setdefault("rule", settings.rule)
                return spec(settings, scheme=scheme, **base, **kw)

            main = settings.main_scheme
            fp32 = settings.fp32
            if suite == "table1":
                out += [
                    s("last"),
                    *([s("last", engine="fp32"), s(main, engine="fp32")] if fp32 else []),
                    s(main, qas=False, rule="nearest"),
                    s(main, qas=False, rule="shadow"),
                    s(main),
                    # the head-multiplier ablation: head x1 at the same lr, and at the best lr for head x1
                    s(main, head_lr_scale=1.0),
                    s(main, head_lr_scale=1.0, lr=head1_lr(settings, ds)),
                ]
            elif suite == "fig9":
                out += [s(sch) for sch in settings.fig9_schemes]
                if settings.fp32_fig9 and fp32:
                    out += [s(sch, engine="fp32") for sch in settings.fig9_schemes]
            elif suite == "rounding":
                out += [s(main, rule=r) for r in RULES]
            else:
                raise TinytrainError(f"unknown suite {suite!r}: choose one of {', '.join(SUITES)}")
    return out


def dedupe(specs: list[RunSpec]) -> list[RunSpec]:
    seen: dict[str, RunSpec] = {}
    for sp in specs:
        seen.setdefault(sp.key(), sp)
    return list(seen.values())


def with_lr(
    settings: Settings, lr: dict[str, dict[str, float]], head: dict[str, dict[str, float]] | None = None
) -> Settings:
    return replace(settings, lr=lr, head=head if head is not None else settings.head)
