"""`tinytrain compile`: model + update scheme -> training Program and its memory plan.

Writes to `--out DIR`: `program.json` (the program summary: options, scheme as resolved, steps, buffers
with storage/shape/bytes) and `plan.json` + `plan.txt` (the planner's report). Prints a readable summary,
or with `--json` an object `{"sram": {"total": bytes, <category>: bytes, ...}, "ops": <training steps>,
"scheme": <resolved scheme>, ...}`. A plan larger than the board's SRAM is reported (with what takes the
memory) and exits with status 2, after writing DIR.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from emulation.boards import DEFAULT_BOARD
from tinytrain import TinytrainError
from tinytrain.atomic import write_text
from tinytrain.cli.levers import add_lever_flags, lever_options
from tinytrain.compiler import DEFAULT_UPDATE_RULE, UPDATE_RULES
from tinytrain.program import Program
from tinytrain.sparse.schemes import SCHEME_FORMAT_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compile",
        help="compile a model + update scheme into a training program and plan",
        description=__doc__,
        epilog=SCHEME_FORMAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model", required=True, help="zoo model (mcunet-5fps, mbv2-w0.35, proxyless-w0.3) or a directory"
    )
    p.add_argument(
        "--scheme",
        help="full, last, bias, paper:<budget> (e.g. paper:99kb) or a JSON file (format below); default "
        "paper:99kb for a zoo model; a model of your own must name one",
    )
    p.add_argument(
        "--classes", type=int, help="classes of a new classifier head (default: keep the model's head)"
    )
    p.add_argument("--resolution", type=int, help="input resolution (default: the model's, 128)")
    p.add_argument(
        "--board", default=DEFAULT_BOARD, help=f"board profile: m7, m4, stm32f405 (default {DEFAULT_BOARD})"
    )
    p.add_argument(
        "--update-rule",
        default=DEFAULT_UPDATE_RULE,
        choices=UPDATE_RULES,
        help=f"int8 update rounding (default {DEFAULT_UPDATE_RULE})",
    )
    p.add_argument(
        "--momentum",
        type=float,
        default=0.0,
        metavar="MU",
        help="SGD momentum in [0, 1) (default 0: plain SGD); a float32 momentum buffer per updated tensor",
    )
    p.add_argument(
        "--accumulate",
        type=int,
        default=1,
        metavar="N",
        help="mini-batch of N samples: gradients accumulate in SRAM, one update per N steps (default 1)",
    )
    p.add_argument(
        "--head-lr-scale",
        type=float,
        default=1.0,
        metavar="S",
        help="learning-rate multiplier of the classifier, folded into its QAS tables (default 1)",
    )
    add_lever_flags(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the new head's initialization")
    p.add_argument("--out", metavar="DIR", help="write program.json, plan.json, plan.txt here")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of the readable one")
    p.set_defaults(func=run)


def program_summary(program: Program) -> dict[str, Any]:
    """A JSON-able description of a program: everything but the arrays."""
    return {
        "model": program.model,
        "scheme": program.scheme,
        "update_rule": program.update_rule,
        "num_classes": program.num_classes,
        "input_buffer": program.input_buffer,
        "logits_buffer": program.logits_buffer,
        "meta": program.meta,
        "kernels": dict(Counter(s.kernel for s in program.steps)),
        "steps": [
            {
                "kernel": s.kernel,
                "layer": s.layer,
                "phase": s.phase,
                "inputs": s.inputs,
                "outputs": s.outputs,
                "attrs": s.attrs,
                **({"when": s.when} if s.when else {}),  # "batch_end": the last sample of a mini-batch only
            }
            for s in program.steps
        ],
        "infer_steps": [
            {"kernel": s.kernel, "layer": s.layer, "inputs": s.inputs, "outputs": s.outputs, "attrs": s.attrs}
            for s in program.infer_steps
        ],
        "buffers": [
            {
                "name": b.name,
                "dtype": b.dtype,
                "shape": list(b.shape),
                "storage": b.storage.value,
                "bytes": b.nbytes,
                "layer": b.layer,
                "role": b.role,
            }
            for b in program.buffers.values()
        ],
    }


def _default_scheme(model: str) -> str:
    """`paper:99kb` where the model has it; otherwise what to do (compile has no data to search on)."""
    from tinytrain.sparse.schemes import paper_budgets

    if paper_budgets(model):  # a zoo model (one without a 99kb scheme: the error lists its budgets)
        return "paper:99kb"
    raise TinytrainError(
        f"give --scheme for {model}: it has no published schemes; use last, bias, full or a JSON file naming "
        f"its layers (format: tinytrain compile --help); `tinytrain search --model {model} --dataset DATA "
        "--budget KB --out FILE.json` finds one, and `tinytrain emulate` without --scheme searches one itself"
    )


def run(args: argparse.Namespace) -> int:
    from tinytrain.cli import validate as v
    from tinytrain.compiler import CompileOptions, check_optimizer
    from tinytrain.job.prepare import assemble, load_graph
    from tinytrain.job.resolution import job_resolution
    from tinytrain.schedule import check_fits
    from tinytrain.sparse import resolve_scheme

    v.int_at_least("--classes", args.classes, 2)
    v.resolution("--resolution", args.resolution)
    v.in_unit_interval("--momentum", args.momentum)
    v.int_at_least("--accumulate", args.accumulate, 1)
    v.positive_finite("--head-lr-scale", args.head_lr_scale)
    v.int_at_least("--patch-cut", args.patch_cut, 0)
    v.int_at_least("--patch-grid", args.patch_grid, 1)
    v.writable_dir("--out", args.out)
    check_optimizer(args.momentum, args.accumulate)  # bad input: exit 2 before loading the model
    options = CompileOptions(  # checks its own values (the patch budgets): before the model is loaded
        update_rule=args.update_rule,
        momentum=args.momentum,
        accumulate=args.accumulate,
        head_lr_scale=args.head_lr_scale,
        **lever_options(args),
    )
    # an imported or 1-D model runs at its own input (another --resolution is refused in one line)
    resolution = job_resolution(args.model, args.resolution) if args.resolution is not None else None
    graph = load_graph(args.model, resolution, args.classes, args.seed)
    scheme = resolve_scheme(args.scheme or _default_scheme(args.model), graph)
    asm = assemble(graph, scheme, options, board=args.board)  # the job's stage: one way to build a program
    program, plan = asm.program, asm.plan
    assert plan is not None
    if args.out:
        out = Path(args.out)
        try:
            write_text(out / "program.json", json.dumps(program_summary(program), indent=1))
            write_text(out / "plan.json", json.dumps(plan.to_dict(), indent=1))
            write_text(out / "plan.txt", plan.report() + "\n")
        except OSError as exc:
            raise TinytrainError(f"cannot write to {out}: {exc.strerror}") from exc
    n_upd = sum(1 for s in program.steps if s.phase == "update")
    if args.json:
        doc = {
            "model": graph.name,
            "resolution": graph.resolution,
            "classes": graph.num_classes,
            "board": args.board,
            "fits": plan.fits,
            "sram": {"total": plan.total, **plan.breakdown},
            "flash": plan.flash,
            "ops": len(program.steps),
            "infer_ops": len(program.infer_steps),
            "scheme": scheme.to_dict(),
            "options": program.meta["options"],
            "fma": program.meta["fma"],
            "peak": {
                "step": plan.peak_step,
                **plan.peak_step_info,
                "tensors": [p.to_dict() for p in plan.peak_tensors],
            },
        }
        print(json.dumps(doc, indent=1))
    else:
        phases = Counter(s.phase for s in program.steps)
        print(
            f"{graph.name} @ {graph.resolution}x{graph.resolution}, {graph.num_classes} classes, "
            f"scheme {scheme.name}: biases of {len(scheme.bias_layers)} layers, weights of "
            f"{len(scheme.weights)} layers "
            f"({', '.join(f'{w.layer} {w.channels}/{w.in_channels}' for w in scheme.weights.values())})"
        )
        by_phase = ", ".join(f"{k} {v}" for k, v in phases.items())
        print(
            f"program: {len(program.steps)} training steps ({by_phase}; "
            f"{n_upd} updates), {len(program.infer_steps)} inference steps; backward reaches "
            f"{program.meta['earliest_backward_layer']}"
        )
        print(
            "backward multiply-add: "
            + ("fused (one rounding, VFMA)" if program.meta["fma"] else "two roundings (VMUL + VADD)")
            + {True: " (--fma)", False: " (--no-fma)", None: " (the board's)"}[options.fma]
        )
        stages = program.meta.get("patches") or []
        if stages:
            ops = graph.ops
            parts = [
                f"{ops[pp['start']].name}..{pp['last_layer']} on {pp['grid']}x{pp['grid']}"
                f"{'' if pp['clipped'] else ' (unclipped)'}"
                for pp in stages
            ]
            extra = sum(int(pp["extra_macs"]) for pp in stages)
            streamed = program.buffers[program.input_buffer].storage.value == "stream"
            print(
                f"patched stages: {'; '.join(parts)}; recomputed {extra / 1e6:.2f} M MACs "
                f"({100 * extra / max(graph.macs(), 1):.1f} % of the network's)"
                + ("; the sample is streamed tile by tile (tt_input_read)" if streamed else "")
            )
        if options.buffered:
            gated = sum(1 for s in program.steps if s.when)
            print(
                f"optimizer: SGD momentum {args.momentum:g}, mini-batches of {args.accumulate} sample(s)"
                + (f" ({gated} update steps run on the last sample of each)" if gated else "")
                + f"; optimizer state {plan.breakdown.get('optimizer_state', 0):,} B of SRAM"
            )
        print(plan.report())
        if args.out:
            print(f"wrote {args.out}/program.json, plan.json, plan.txt")
    if plan.fits is False:
        check_fits(plan, args.board)  # raises: by how much, and what takes the memory
    return 0
