"""`tinytrain emulate`: compile a model + update scheme into training firmware, run it on an emulated
board (QEMU), compare it with the host reference, and print a summary or the run record (`--json`).

`--dataset` takes `faces`, `digits` or your own data (an image folder with one subfolder per class, an
.npz, a long-format .csv time series or a .ts file; `--window/--stride/--normalize/--layout`, docs/data.md):
it is loaded first, so a bad file is refused in one line (exit 2) before anything is built; the head gets
the data's class count (`--classes` is then a check).

`--defaults` runs the embedded default job (MCUNet-5FPS with a new 2-class head, scheme paper:99kb, the
`faces` dataset at 80x80, board m7, 3 epochs, the classifier-only scheme `last` trained on the host as the
baseline) and writes its report to ./results/main-job/ (from the repository root: the committed main-job
report); any option given beside it overrides that default, and such a variant writes its report to
./results/reports/<job key>/ instead, never over the main job's. `--task NAME` starts from a task's defaults
instead (tinytrain.tasks; `--task sensor`: the zoo's sensor-conv1d adapting on m4 to a watch worn rotated,
report in ./results/sensor-job/). Outputs go under the current directory
(./build/emulate/<job key>, ./results/runs/) unless --report / --no-save say otherwise.
While it runs it prints a progress line every ~5% of the steps; at the end a short summary (SRAM measured
vs predicted vs the board's budget, instructions per step by phase, the estimated time per step,
held-out accuracy before -> after and the baseline's, whether every step matched the host reference, where
the report is). `--json` prints the whole run record instead (progress on stderr). Exit status: 0 when the
run finished and matched the host reference, 1 when it finished but did not match, 2 for bad input
(e.g. a plan too large for the board, reported with its breakdown before anything is built), 3 when the
firmware faulted (the report names the kernel from the PC's symbol) or did not finish within --timeout, 4 when
the emulator was killed from outside (not by tinytrain), 128 + n when tinytrain got signal n (QEMU is killed
with it). Numeric options are range-checked and --report / --dump-params checked writable before anything
runs (docs/reliability.md). `--momentum MU` and `--accumulate N`
train with SGD momentum and mini-batches of N samples (docs/numerics.md, "Momentum and mini-batches"); a
step count that is not a multiple of N is run anyway, with a warning: the trailing partial batch is
accumulated but never applied, on the device and on the host alike. The compiler's switches
(`--no-reorder`, `--no-split-weights`, `--no-patch`, `--patch-grid G`, ...) are those of `tinytrain compile`:
they reach the firmware, so a lever's SRAM saving is measured on the board, not only predicted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tinytrain import TinytrainError
from tinytrain.cli.levers import add_lever_flags, lever_options
from tinytrain.data.options import DATASET_HELP, add_dataset_options, dataset_options
from tinytrain.sparse.schemes import SCHEME_FORMAT_HELP

if TYPE_CHECKING:
    from tinytrain.job import EmulateConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "emulate",
        help="train on an emulated board and compare with the host reference",
        description=__doc__,
        epilog=SCHEME_FORMAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--defaults",
        action="store_true",
        help="the embedded default job (mcunet-5fps, paper:99kb, faces, 2 classes, m7)",
    )
    p.add_argument(
        "--task",
        metavar="NAME",
        help="start from the defaults of task NAME instead (implies --defaults; tinytrain.tasks): sensor "
        "(sensor-conv1d adapting to a watch worn rotated, BasicMotions, m4), keyboard (keyboard-char, a "
        "next-character model adapting to a user's text, m4)",
    )
    p.add_argument(
        "--text", metavar="FILE.txt", help="--task keyboard: the user's text (default: CPython's LICENSE.txt)"
    )
    p.add_argument("--model", help="zoo model (mcunet-5fps, mbv2-w0.35, proxyless-w0.3) or a model directory")
    p.add_argument(
        "--scheme",
        help="update scheme: full, last, bias, paper:<budget> (a zoo model's, e.g. paper:99kb), auto or a "
        "JSON file (format below); default for a model of your own: auto (searched under the board's SRAM on "
        "your data, cached under ./results/search/auto/)",
    )
    p.add_argument("--dataset", metavar="NAME|PATH", help=DATASET_HELP)
    p.add_argument(
        "--classes",
        type=int,
        help="classes of the new head (default: the dataset's; faces/digits: the first N; your data: a "
        "check)",
    )
    p.add_argument(
        "--resolution",
        type=int,
        help="input resolution (square) of a zoo image model (required for those); an imported or 1-D "
        "model runs at its own input without it (another value is refused)",
    )
    p.add_argument("--board", help="board profile: m4, m7, stm32f405")
    p.add_argument("--steps", type=int, help="training steps (default: --epochs epochs over the train split)")
    p.add_argument(
        "--epochs",
        type=int,
        help="epochs when --steps is not given (without --defaults one of the two is needed; --defaults: 3)",
    )
    p.add_argument(
        "--lr", type=float, help="learning rate (default 0.002; --defaults: 0.001 with --head-lr-scale 30)"
    )
    p.add_argument(
        "--update-rule",
        choices=("nearest", "stochastic", "shadow"),
        help="int8 update rounding (default stochastic)",
    )
    p.add_argument("--momentum", type=float, metavar="MU", help="SGD momentum in [0, 1) (default 0)")
    p.add_argument(
        "--head-lr-scale",
        type=float,
        metavar="S",
        help="learning-rate multiplier of the new classifier head (default 1)",
    )
    p.add_argument(
        "--accumulate",
        type=int,
        metavar="N",
        help="mini-batches of N samples, one update per N steps (default 1); a trailing partial batch is "
        "accumulated but never applied (warned)",
    )
    add_lever_flags(p)
    add_dataset_options(p)
    p.add_argument("--seed", type=int, help="seed of the split and the training order (default 0)")
    p.add_argument("--max-test", type=int, help="evaluate on at most this many test images")
    p.add_argument("--no-eval", action="store_true", help="skip the accuracy evaluation before/after")
    p.add_argument("--no-reference", action="store_true", help="skip the host reference comparison")
    p.add_argument(
        "--host", action="store_true", help="run the host-native build instead of QEMU (fast; no counts)"
    )
    p.add_argument(
        "--flash-dataset",
        action="store_true",
        help="embed the dataset in the firmware image instead of reading it by semihosting",
    )
    p.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the QEMU plugin (instruction classes for the cycle estimate; ~20%% slower with it)",
    )
    p.add_argument("--timeout", type=float, help="wall-clock limit of the emulation, seconds (default 3600)")
    p.add_argument(
        "--dump-params",
        metavar="FILE.npz",
        help="save the trained tensors the device wrote back (by buffer name; Trainer.load reads them)",
    )
    p.add_argument(
        "--save-model",
        metavar="DIR",
        help="write the trained model (the device's parameters) as a model directory that "
        "`tinytrain infer --model DIR` and --model accept; DIR must not exist",
    )
    p.add_argument(
        "--baseline",
        metavar="SCHEME",
        help="also train SCHEME on the host reference with the same samples and compare accuracies "
        "(--defaults: last, the classifier-only baseline)",
    )
    p.add_argument(
        "--baseline-lr", type=float, metavar="LR", help="the baseline's own learning rate (default: --lr)"
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline scheme")
    p.add_argument(
        "--report",
        metavar="DIR",
        help="write report.html, learning_curve.png, memory_breakdown.png and record.json to DIR "
        "(--defaults: ./results/main-job for the main job itself, else ./results/reports/<job key>)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the report")
    p.add_argument("--no-save", action="store_true", help="do not write the record under ./results/runs/")
    p.add_argument(
        "--json", action="store_true", help="print the run record as JSON (progress goes to stderr)"
    )
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> EmulateConfig:
    from tinytrain.job import EmulateConfig
    from tinytrain.job.config import defaults_for
    from tinytrain.job.paths import report_dir

    given = {
        "model": args.model,
        "scheme": args.scheme,
        "dataset": args.dataset,
        "classes": args.classes,
        "resolution": args.resolution,
        "board": args.board,
        "steps": args.steps,
        "epochs": args.epochs,
        "lr": args.lr,
        "update_rule": args.update_rule,
        "momentum": args.momentum,
        "accumulate": args.accumulate,
        "head_lr_scale": args.head_lr_scale,
        "seed": args.seed,
        "max_test": args.max_test,
        "timeout": args.timeout,
        "dump_params": args.dump_params,
        "save_model": args.save_model,
        "baseline": args.baseline,
        "baseline_lr": args.baseline_lr,
        **dataset_options(args),
    }
    given = {k: v for k, v in given.items() if v is not None}
    if args.text and args.task != "keyboard":
        raise TinytrainError("--text needs --task keyboard")
    if args.task == "keyboard" and args.dataset:
        raise TinytrainError("--task keyboard trains on --text FILE.txt, not --dataset")
    if args.task is not None:
        args.defaults = True
    if args.defaults:
        fields = {**defaults_for(args.task), **given}
        if "model" in given and "resolution" not in given:  # another model: its own input when it has one
            from tinytrain.job.resolution import model_input_of

            if model_input_of(fields["model"]) is not None:
                fields["resolution"] = None
    else:
        missing = [
            f"--{k}" for k in ("model", "scheme", "dataset", "resolution", "board") if _needs(given, k)
        ]
        if missing:
            raise TinytrainError(
                f"missing {', '.join(missing)} (or use --defaults for the embedded default job)"
                + _published(given.get("model"), "--scheme" in missing)
            )
        if "steps" not in given and "epochs" not in given:
            raise TinytrainError("give --steps N (or --epochs N)")
        fields = given
    from tinytrain.job.resolution import job_resolution

    fields["resolution"] = job_resolution(fields["model"], fields.get("resolution"))
    if "scheme" not in given and (not args.defaults or "model" in given) and not _published(fields["model"]):
        fields["scheme"] = "auto"  # a model of one's own: searched for its data and the board (cached)
    from tinytrain.compiler import check_optimizer

    try:
        check_optimizer(fields.get("momentum", 0.0), fields.get("accumulate", 1))
    except TinytrainError as exc:
        raise TinytrainError(f"--momentum / --accumulate: {exc}") from None
    cfg = EmulateConfig.from_fields(**fields, **lever_options(args))
    if args.no_baseline:
        cfg.baseline = None
    if args.report:
        cfg.report_dir = args.report
    cfg.evaluate = not args.no_eval
    cfg.check_reference = not args.no_reference
    cfg.backend = "host" if args.host else "qemu"
    cfg.source = "flash" if args.flash_dataset else "semihost"
    cfg.profile = not args.no_profile
    cfg.save_record = not args.no_save
    if args.defaults and not args.report and not args.no_report:  # once the whole config is known
        cfg.report_dir = str(report_dir(cfg.is_main_job(), cfg.key(), cfg.task))
    check_config(cfg)
    from tinytrain.compiler import check_optimizer

    try:
        check_optimizer(cfg.momentum, cfg.accumulate)
    except TinytrainError as exc:
        raise TinytrainError(f"--momentum / --accumulate: {exc}") from None
    if cfg.baseline_lr is not None and cfg.baseline_lr <= 0:
        raise TinytrainError("--baseline-lr must be positive")
    if cfg.save_model:  # checked before anything is built: a finished run must not fail on its output
        out = Path(cfg.save_model)
        if out.exists():
            raise TinytrainError(f"--save-model {out}: exists; choose a new directory (it is written whole)")
        parent = out.resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise TinytrainError(f"--save-model {out}: {parent} is not a writable directory")
    return cfg


def _needs(given: dict[str, object], key: str) -> bool:
    """Is option `key` missing? --scheme and --resolution only where the model does not imply them: a zoo
    image model needs both; a model of one's own runs at its own input with the scheme `auto`."""
    if key in given:
        return False
    model = given.get("model")
    if key == "scheme" and isinstance(model, str):
        return bool(_published(model))
    if key == "resolution" and isinstance(model, str):
        from tinytrain.job.resolution import model_input_of

        return model_input_of(model) is None
    return True


def _published(model: object, say: bool = True) -> str:
    """A zoo model's published schemes, as a hint ("" for a model without any)."""
    from tinytrain.sparse.schemes import paper_budgets

    budgets = paper_budgets(model) if isinstance(model, str) else []
    if not (budgets and say):
        return ""
    return (
        f"; {model}'s published schemes: {', '.join(f'paper:{b}' for b in budgets)} (or full, last, bias, "
        "auto, a JSON file)"
    )


def check_config(cfg: EmulateConfig) -> None:
    """Validate before work: every numeric option in range and every output writable, before the model is
    loaded (one line, exit 2)."""
    from tinytrain.cli import validate as v

    v.int_at_least("--classes", cfg.classes, 2)
    v.resolution("--resolution", cfg.resolution)
    v.int_at_least("--steps", cfg.steps, 1)
    v.int_at_least("--epochs", cfg.epochs, 1)
    v.positive_finite("--lr", cfg.lr)
    v.in_unit_interval("--momentum", cfg.momentum)
    v.int_at_least("--accumulate", cfg.accumulate, 1)
    v.positive_finite("--head-lr-scale", cfg.head_lr_scale)
    v.positive_finite("--timeout", cfg.timeout)
    v.int_at_least("--seed", cfg.seed, 0)
    v.int_at_least("--max-test", cfg.max_test, 0)
    if cfg.seed >= 2**32:
        raise TinytrainError(f"--seed must be below 2**32, not {cfg.seed}")
    from emulation.boards import get_board

    get_board(cfg.board)  # an unknown board is refused before the model is loaded
    v.writable_dir("--report", cfg.report_dir)
    v.writable_file("--dump-params", cfg.dump_params)
    if cfg.save_record:
        from tinytrain.job import paths

        v.writable_dir("the run record directory (--no-save skips it)", paths.runs_dir())


def run(args: argparse.Namespace) -> int:
    from tinytrain.job import emulate
    from tinytrain.progress import Tracker, live_default
    from tinytrain.report import summary

    cfg = config_from_args(args)
    out = sys.stderr if args.json else sys.stdout

    def lines(msg: str) -> None:
        print(msg, file=out, flush=True)

    from tinytrain.sparse.auto import resolve_auto

    cfg = resolve_auto(cfg, lines)  # `auto`: the default scheme, searched for this model, data and board
    # A live bar of the training steps on stderr when it is a terminal (not under --json); the text lines
    # then print above it. Not a terminal: the same lines as always, nothing drawn.
    with Tracker(
        "training steps", total=max(1, cfg.steps or 1), live=live_default(args.json), log=lines
    ) as track:
        if args.task == "keyboard":
            from tinytrain.tasks import keyboard

            result = keyboard.run(cfg, args.text, track.say, on_step=track.hook())
        else:
            result = emulate(cfg, progress=track.say, on_step=track.hook())
    rec = result.record
    if args.json:
        print(json.dumps(rec, indent=1))
    else:
        print(summary(rec), flush=True)
    return 0 if rec["matched_reference"] in (True, None) else 1
