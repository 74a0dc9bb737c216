"""The compiler's switches as command-line flags, shared by `tinytrain compile` and `tinytrain emulate` (and
so by everything that builds firmware from them): every lever of `CompileOptions` reaches the firmware."""

from __future__ import annotations

import argparse
from typing import Any

#: Ablations: `--no-<flag>` turns the CompileOptions field off (it is on by default).
ABLATIONS = (
    ("qas", "qas", "ablation: int8 updates without quantization-aware scaling"),
    ("reorder", "reorder", "ablation: keep all gradients, update after backward"),
    ("inplace", "inplace", "ablation: no in-place mask/gradient ops"),
    ("slice", "slice_channels", "ablation: save whole activations for partial updates"),
)
#: Memory levers (docs/memory.md): on by default, `--<lever>` / `--no-<lever>`.
LEVERS = (
    ("split_weights", "SRAM keeps only the trained input channels of partly trained layers"),
    ("input_in_arena", "the input sample lives in the arena, dead after the first stage"),
    ("patch", "run the first stages tile by tile when no gradient reaches them"),
    (
        "stream_input",
        "the patched first stage reads the sample tile by tile where the caller keeps it (tt_input_read): "
        "never whole in SRAM",
    ),
    ("inplace_dw_grad", "stride-1 depthwise input gradients overwrite their output gradient"),
    (
        "inplace_dw_forward",
        "a stride-1 depthwise conv writes its output over its input when nothing reads it later",
    ),
    (
        "fused_block_backward",
        "inverted-residual blocks with frozen dw/pw2 weights run their backward one expanded channel "
        "at a time",
    ),
)


def add_lever_flags(p: argparse.ArgumentParser) -> None:
    """--no-qas, --no-reorder, --no-inplace, --no-slice and the memory levers (docs/memory.md)."""
    for flag, _field, text in ABLATIONS:
        p.add_argument(f"--no-{flag}", action="store_true", help=text)
    for name, text in LEVERS:
        p.add_argument(
            f"--{name.replace('_', '-')}",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=f"{text} (default on)",
        )
    p.add_argument(
        "--patch-max-overhead",
        type=float,
        default=None,
        help="the automatic patch choice recomputes at most this fraction of the stage's MACs (default 0.35)",
    )
    p.add_argument(
        "--patch-max-network-overhead",
        type=float,
        default=None,
        help="... and all patched stages together at most this fraction of the network's MACs (default 0.15)",
    )
    p.add_argument(
        "--fma",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the backward sums' multiply-add: fused (one rounding, VFMA) or --no-fma two roundings "
        "(default: the board's: fused on m7, two roundings on m4; docs/numerics.md)",
    )
    p.add_argument("--patch-cut", type=int, help="patch the first N ops (default: chosen by the planner)")
    p.add_argument("--patch-grid", type=int, help="patch on a G x G grid (default: chosen by the planner)")


def lever_options(args: argparse.Namespace) -> dict[str, Any]:
    """The CompileOptions fields the lever flags set (patch_max_overhead only when given)."""
    opts: dict[str, Any] = {field: not getattr(args, f"no_{flag}") for flag, field, _text in ABLATIONS}
    opts.update({name: getattr(args, name) for name, _text in LEVERS})
    opts.update(patch_cut=args.patch_cut, patch_grid=args.patch_grid, fma=args.fma)
    if args.patch_max_overhead is not None:
        opts["patch_max_overhead"] = args.patch_max_overhead
    if args.patch_max_network_overhead is not None:
        opts["patch_max_network_overhead"] = args.patch_max_network_overhead
    return opts
