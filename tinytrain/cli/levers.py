"""The compiler's switches as command-line flags, shared by `tinytrain compile` and `tinytrain emulate` (and
so by everything that builds firmware from them): every lever of `CompileOptions` reaches the firmware."""

from __future__ import annotations

import argparse
from typing import Any


def add_lever_flags(p: argparse.ArgumentParser) -> None:
    """--no-qas, --no-reorder, --no-inplace, --no-slice and the memory levers (docs/memory.md)."""
    p.add_argument(
        "--no-qas", action="store_true", help="ablation: int8 updates without quantization-aware scaling"
    )
    p.add_argument(
        "--no-reorder", action="store_true", help="ablation: keep all gradients, update after backward"
    )
    p.add_argument("--no-inplace", action="store_true", help="ablation: no in-place mask/gradient ops")
    p.add_argument(
        "--no-slice", action="store_true", help="ablation: save whole activations for partial updates"
    )
    # memory levers (docs/memory.md): on by default, --no-<lever> for the ablation
    p.add_argument(
        "--split-weights",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="SRAM keeps only the trained input channels of partly trained layers (default on)",
    )
    p.add_argument(
        "--input-in-arena",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the input sample lives in the arena, dead after the first stage (default on)",
    )
    p.add_argument(
        "--patch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the first stage tile by tile when no gradient reaches it (default on)",
    )
    p.add_argument(
        "--inplace-dw-grad",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stride-1 depthwise input gradients overwrite their output gradient (default on)",
    )
    p.add_argument(
        "--inplace-dw-forward",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a stride-1 depthwise conv writes its output over its input when nothing reads it later "
        "(default on)",
    )
    p.add_argument(
        "--fused-block-backward",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="inverted-residual blocks with frozen dw/pw2 weights run their backward one expanded channel "
        "at a time (default on)",
    )
    p.add_argument(
        "--patch-max-overhead",
        type=float,
        default=None,
        help="the automatic patch choice recomputes at most this fraction of the stage's MACs (default 0.35)",
    )
    p.add_argument("--patch-cut", type=int, help="patch the first N ops (default: chosen by the planner)")
    p.add_argument("--patch-grid", type=int, help="patch on a G x G grid (default: chosen by the planner)")


def lever_options(args: argparse.Namespace) -> dict[str, Any]:
    """The CompileOptions fields the lever flags set (patch_max_overhead only when given)."""
    opts: dict[str, Any] = {
        "qas": not args.no_qas,
        "reorder": not args.no_reorder,
        "inplace": not args.no_inplace,
        "slice_channels": not args.no_slice,
        "split_weights": args.split_weights,
        "input_in_arena": args.input_in_arena,
        "patch": args.patch,
        "inplace_dw_grad": args.inplace_dw_grad,
        "inplace_dw_forward": args.inplace_dw_forward,
        "fused_block_backward": args.fused_block_backward,
        "patch_cut": args.patch_cut,
        "patch_grid": args.patch_grid,
    }
    if args.patch_max_overhead is not None:
        opts["patch_max_overhead"] = args.patch_max_overhead
    return opts
