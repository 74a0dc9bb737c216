"""`tinytrain export`: write a self-contained C training library for one model + scheme + CPU into a folder
(one public header tinytrain.h, the generated model, the runtime kernels it uses, learned-state persistence in
two flash slots, a Makefile, CMakeLists.txt + an arm-none-eabi toolchain file, an example whose `make qemu`
runs in qemu-system-arm and checks its losses against the host reference, bit for bit). docs/export.md.

Exit status: 0 written; 2 bad input: an existing --out without --force, or a plan that does not fit the
board of --cpu (printed with the planner's breakdown; nothing is written).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinytrain.export.config import ExportConfig


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `export` and `powercut`: the model, its data and training settings."""
    p.add_argument(
        "--model", required=True, help="zoo model (mcunet-5fps, mbv2-w0.35, proxyless-w0.3) or a model dir"
    )
    p.add_argument(
        "--scheme",
        required=True,
        help="update scheme: full, last, bias, paper:<budget>, a JSON file, or auto (the scheme `emulate` "
        "searches for your model, data and board; cached)",
    )
    p.add_argument(
        "--dataset",
        default="faces",
        metavar="NAME|PATH",
        help="the example's samples: faces, digits, sensor (a 1-D model's) or a path as `emulate` takes "
        "(default faces)",
    )
    p.add_argument("--classes", type=int, help="classes of the new head (default: the dataset's)")
    p.add_argument(
        "--resolution",
        type=int,
        help="input resolution, square (default: 48 for a zoo image model, an imported model's own input)",
    )
    p.add_argument("--lr", type=float, default=0.002, help="learning rate (default 0.002)")
    p.add_argument(
        "--update-rule",
        choices=("nearest", "stochastic", "shadow"),
        default="stochastic",
        help="int8 update rounding (default stochastic)",
    )
    p.add_argument("--head-lr-scale", type=float, default=1.0, metavar="S", help="classifier lr multiplier")
    p.add_argument("--momentum", type=float, default=0.0, metavar="MU", help="SGD momentum in [0, 1)")
    p.add_argument(
        "--accumulate",
        type=int,
        default=1,
        metavar="N",
        help="mini-batches of N samples: gradients accumulate in SRAM (saved with the state), one update "
        "every N steps (default 1)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the dataset split and sample order")


def config_from_args(args: argparse.Namespace, cpu: str) -> ExportConfig:
    from tinytrain.export.config import ExportConfig

    return ExportConfig(
        model=args.model,
        scheme=args.scheme,
        dataset=args.dataset,
        classes=args.classes,
        resolution=args.resolution,
        cpu=cpu,
        lr=args.lr,
        update_rule=args.update_rule,
        head_lr_scale=args.head_lr_scale,
        momentum=args.momentum,
        accumulate=args.accumulate,
        steps=getattr(args, "steps", 3),
        seed=args.seed,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a standalone C training library (make / CMake, runs in QEMU)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(p)
    p.add_argument("--cpu", choices=("cortex-m4", "cortex-m7"), default="cortex-m4", help="target core")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (must not exist unless --force)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    p.add_argument(
        "--measure",
        action="store_true",
        help="run the example once in QEMU first: exact instructions per step, a time estimate (README)",
    )
    p.add_argument(
        "--steps", type=int, default=3, help="training steps of the example's self-check (default 3)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinytrain.export.bundle import export_library

    cfg = config_from_args(args, args.cpu)
    res = export_library(cfg, args.out, force=args.force, measure=args.measure)
    info = res.info
    mem = info["memory"]
    program = res.prepared.program
    shape = "x".join(str(v) for v in program.buffers[program.input_buffer].shape)
    batches = f", mini-batches of {cfg.accumulate}" if cfg.accumulate > 1 else ""
    print(
        f"exported {info['model']} (scheme {info['scheme']}, {info['classes']} classes, input {shape} HWC"
        f"{batches}) for {info['cpu']} to {res.out}: {len(res.files)} files"
    )
    print(
        f"  arena {mem['arena']:,} B (caller's), trainable {mem['trainable']:,} B, predicted SRAM "
        f"{mem['predicted_sram_total']:,} of {mem['sram_budget']:,} B; "
        f"flash constants {mem['flash_const']:,} B"
    )
    print(
        f"  learned state {info['state_bytes']:,} B; {info['bytes_per_save']:,} B written per save; "
        f"{info['saves_per_10k_cycles']:,} saves on a 10k-cycle flash (two slots)"
    )
    sp = info.get("measured")
    if sp:
        print(
            f"  measured on {sp['board']}: {sp['instructions_per_step']:,} instructions per step (exact), "
            f"~{sp['est_ms_per_step']:.1f} ms at {sp['clock_hz'] / 1e6:.0f} MHz (estimate)"
        )
    print(f"  kernels: {', '.join(info['kernels'])}")
    print(f"  next: make -C {res.out} qemu")
    return 0
