"""What an evidence run is: the settings shared by every run (`Settings`), one training run (`RunSpec`),
and the suites (lr sweep, Table 1, Fig. 9, rounding) as lists of run specs.

A run is identified by everything that changes its result (`RunSpec.key()`), so a row cached under that
key can be reused by any suite that needs the same run (Table 1's "int8 with QAS", Fig. 9's
`paper:99kb` and the rounding suite's `nearest` are one run).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

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
#: learning-rate grid of the sweep (log-spaced, ~x3 apart; QAS makes the int8 lr an fp32-SGD lr)
LR_GRID = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)
#: lr families (family -> the scheme its lr is swept on): the classifier-only baseline, the main scheme
#: (every paper budget, fp32, no-QAS and the rounding runs use its lr), and the deep baselines of Fig. 9
#: (bias-only, last-k blocks, full), which diverge at the main scheme's lr and get their own
FAMILIES = {"last": "last", "main": MAIN_SCHEME, "bias": "bias", "blocks": "blocks:2", "full": "full"}
#: the deep baselines' grids: below and at the main scheme's divergence point (0.003 on the validation split)
FAMILY_GRID = {
    "last": LR_GRID,
    "main": LR_GRID,
    "bias": (0.0001, 0.0003, 0.001),
    "blocks": (0.0003, 0.001, 0.003),
    "full": (0.0001, 0.0003, 0.001),
}
SUITES = ("lr", "table1", "fig9", "rounding")


@dataclass(frozen=True)
class Settings:
    """Settings shared by all runs of an evidence run."""

    datasets: tuple[str, ...] = ("faces", "digits")
    seeds: tuple[int, ...] = (0, 1, 2)
    resolution: int = 64
    epochs: int = 2
    #: stratified subset of the training split (the fixed split's first-seed subset, same for every seed);
    #: faces has 140 training images, so the cap only bites on digits (1257 -> 200, 20 per class)
    max_train: int = 200
    #: validation split of the (capped) training set, for the lr sweep only
    val_fraction: float = 0.25
    #: seeds of the lr sweep
    sweep_seeds: tuple[int, ...] = (0,)
    warmup_fraction: float = 0.05
    split_seed: int = 0
    board: str = "m7"
    memory_resolution: int = 128  # the paper's resolution, memory is reported at this one too
    #: update rule of the int8 + QAS runs of the sweep, Table 1 and Fig. 9 (the rounding suite runs all three)
    rule: str = "nearest"
    lr: dict[str, dict[str, float]] = field(default_factory=dict)  # dataset -> family -> lr (if fixed)

    def base(self) -> dict[str, Any]:
        """The fields every run's key includes."""
        return {
            "model": MODEL,
            "resolution": self.resolution,
            "epochs": self.epochs,
            "max_train": self.max_train,
            "warmup_fraction": self.warmup_fraction,
            "split_seed": self.split_seed,
            "val_fraction": self.val_fraction,
        }


@dataclass(frozen=True)
class RunSpec:
    """One training run: a dataset, a seed, an engine and scheme, the update options and the lr."""

    dataset: str
    seed: int
    scheme: str  # last | bias | full | paper:<b> | blocks:<k>
    engine: str = "int8"  # int8 (host reference = device) | fp32 (PyTorch FloatNet)
    qas: bool = True
    rule: str = "nearest"
    lr: float = 0.01
    split: str = "test"  # test: train on the training set, evaluate on the test split; val: sweep
    model: str = MODEL
    resolution: int = 64
    epochs: int = 2
    max_train: int = 200
    warmup_fraction: float = 0.05
    split_seed: int = 0
    val_fraction: float = 0.25

    def key(self) -> str:
        doc = json.dumps(asdict(self), sort_keys=True)
        h = hashlib.sha1(doc.encode()).hexdigest()[:10]
        tag = self.scheme.replace(":", "-")
        qas = "" if self.qas or self.engine == "fp32" else "-noqas"
        rule = "" if self.engine == "fp32" else f"-{self.rule}"
        return f"{self.split}-{self.dataset}-s{self.seed}-{self.engine}-{tag}{qas}{rule}-lr{self.lr:g}-{h}"

    def label(self) -> str:
        if self.engine == "fp32":
            return f"fp32 {self.scheme}"
        return f"int8 {self.scheme}{'' if self.qas else ' no-QAS'} {self.rule}"


def lr_at(step: int, total: int, base: float, warmup_fraction: float) -> float:
    """Linear warmup over the first `warmup_fraction` of the steps, then cosine decay to 0."""
    warm = max(1, math.ceil(warmup_fraction * total)) if warmup_fraction > 0 else 0
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return base * 0.5 * (1.0 + math.cos(math.pi * t))


def spec(settings: Settings, **kw: Any) -> RunSpec:
    return RunSpec(**{**settings.base(), **kw})


def sweep_specs(settings: Settings) -> list[RunSpec]:
    """The lr sweep: each family's scheme (int8, QAS, nearest) at every lr of the grid, on the validation
    split of the training set."""
    out = []
    for seed in settings.sweep_seeds:
        for ds in settings.datasets:
            for fam, fam_scheme in FAMILIES.items():
                for lr in FAMILY_GRID[fam]:
                    out.append(
                        spec(
                            settings,
                            dataset=ds,
                            seed=seed,
                            scheme=fam_scheme,
                            lr=lr,
                            split="val",
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


def suite_specs(settings: Settings, suite: str) -> list[RunSpec]:
    """The runs of a suite (the lr sweep must have fixed `settings.lr` for all but `lr`)."""
    if suite == "lr":
        return sweep_specs(settings)
    out: list[RunSpec] = []
    for seed in settings.seeds:
        for ds in settings.datasets:
            main = lr_for(settings, ds, MAIN_SCHEME)
            base = {"dataset": ds, "seed": seed}

            def s(scheme: str, base: dict[str, Any] = base, **kw: Any) -> RunSpec:
                kw.setdefault("lr", lr_for(settings, base["dataset"], scheme))
                kw.setdefault("rule", settings.rule)
                return spec(settings, scheme=scheme, **base, **kw)

            if suite == "table1":
                out += [
                    s("last"),
                    s(MAIN_SCHEME, engine="fp32"),
                    s(MAIN_SCHEME, qas=False, rule="nearest"),
                    s(MAIN_SCHEME, qas=False, rule="shadow"),
                    s(MAIN_SCHEME),
                ]
            elif suite == "fig9":
                out += [s(sch) for sch in FIG9_SCHEMES]
            elif suite == "rounding":
                out += [s(MAIN_SCHEME, rule=r, lr=main) for r in RULES]
            else:
                raise TinytrainError(f"unknown suite {suite!r}: choose one of {', '.join(SUITES)}")
    return out


def dedupe(specs: list[RunSpec]) -> list[RunSpec]:
    seen: dict[str, RunSpec] = {}
    for sp in specs:
        seen.setdefault(sp.key(), sp)
    return list(seen.values())


def with_lr(settings: Settings, lr: dict[str, dict[str, float]]) -> Settings:
    return replace(settings, lr=lr)
