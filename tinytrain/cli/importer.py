"""`tinytrain import FILE --out DIR`: a deployed int8 model, or a PyTorch model built by `module:function`
-> a tinytrain-ir/1 model directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinytrain import TinytrainError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import an int8 .tflite / .onnx file or a PyTorch model (module:function)",
        description="Parse a full-integer int8 .tflite file (as the TFLite converter writes it with a "
        "representative dataset) or an int8 .onnx file (QDQ or QOperator, as onnxruntime's quantize_static "
        "writes it) into a tinytrain-ir/1 directory that infer, compile and emulate accept "
        "like a zoo name. Its numerics are TFLite Micro's integer kernels (.tflite) or onnxruntime's "
        "CPU kernels (.onnx), bit for bit. Or import a float PyTorch model: SOURCE module:function (a module "
        "importable from the current directory, or path/to/file.py:function) whose function returns "
        "(model, calibration_batch); it is traced with torch.fx, BatchNorm and ReLU folded, and quantized "
        "post-training on the batch (no pickle is loaded). Prints the ops, "
        "parameters, MACs, inference peak memory, the input's shape/layout/quantization, what was dropped "
        "and the layer names a scheme can name.",
    )
    p.add_argument("file", metavar="SOURCE", help="the .tflite or .onnx file, or module:function (PyTorch)")
    p.add_argument("--out", required=True, metavar="DIR", help="the model directory to write (atomically)")
    p.add_argument("--force", action="store_true", help="replace DIR if it is a tinytrain model directory")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    g = p.add_argument_group("PyTorch (module:function)")
    g.add_argument(
        "--input-scale",
        default="auto",
        metavar="S|auto",
        help="real value of one input LSB; auto (default): from a float calibration batch's min/max "
        "(an int8 batch: 1/127.5, the zoo's x = pixel - 128)",
    )
    g.add_argument(
        "--input-zero", type=int, default=None, metavar="Z", help="input zero point (with --input-scale S)"
    )
    g.add_argument(
        "--numerics",
        choices=("auto", "float-m", "tflm"),
        default="auto",
        help="float-m: the zoo's ops (square convs, adds, global pool); tflm: TFLite Micro's kernels (every "
        "op); auto (default): float-m when the net fits it",
    )
    g.add_argument("--name", default=None, help="the model's name (default: the function's)")
    p.set_defaults(func=run)


def _input_quantization(args: argparse.Namespace) -> tuple[float, int] | None:
    """--input-scale / --input-zero, checked before any work (None: auto, from the calibration batch)."""
    if args.input_scale == "auto":
        if args.input_zero is not None:
            raise TinytrainError("--input-zero needs --input-scale S (a number)")
        return None
    try:
        scale = float(args.input_scale)
    except ValueError:
        raise TinytrainError(f"--input-scale {args.input_scale!r}: expected a number or auto") from None
    if not scale > 0:
        raise TinytrainError(f"--input-scale {scale}: must be positive")
    zero = args.input_zero if args.input_zero is not None else 0
    if not -128 <= zero <= 127:
        raise TinytrainError(f"--input-zero {zero}: must be in [-128, 127]")
    return scale, zero


def _import_torch(args: argparse.Namespace) -> object:
    from tinytrain.models.importer import import_torch_source

    given = _input_quantization(args)
    if Path(args.out).exists() and not args.force:  # before running the user's code (it may train)
        raise TinytrainError(f"--out {args.out}: already exists; choose another directory or pass --force")
    scale, zero = given if given is not None else (None, 0)
    return import_torch_source(
        args.file, input_scale=scale, input_zero=zero, numerics=args.numerics, name=args.name
    )


#: PyTorch files tinytrain does not open, and why (all of them unpickle)
PICKLED = {
    ".pt2": "a torch.export archive: torch.export.load unpickles its weights and constants "
    "(weights_only=False)",
    ".pt": "a torch.save file (pickle)",
    ".pth": "a torch.save file (pickle)",
}


def run(args: argparse.Namespace) -> int:
    from tinytrain.models.importer import format_summary, import_model, summary, write_model_dir
    from tinytrain.models.torch_source import is_torch_spec

    why = PICKLED.get(Path(args.file).suffix.lower())
    if why:
        raise TinytrainError(
            f"{args.file}: {why}, which can run arbitrary code; tinytrain does not load it. Write a function "
            "that builds the model (loading weights with torch.load(path, weights_only=True)) and returns "
            "(model, calibration_batch), then: tinytrain import path/to/file.py:function --out DIR"
        )
    torch_src = is_torch_spec(args.file)
    graph = _import_torch(args) if torch_src else import_model(args.file)
    # a deployed file is kept beside the graph: the adapted model's round trip rewrites it (docs/export.md)
    out = write_model_dir(graph, args.out, force=args.force, source=None if torch_src else args.file)
    s = summary(graph)
    if args.json:
        print(json.dumps({**s, "out": str(out)}, indent=1))
        return 0
    text = format_summary(s, str(out))
    if torch_src:  # the header's claim is about deployed files; a PyTorch import is quantized here
        meta = graph.meta  # type: ignore[attr-defined]
        lines = text.splitlines()
        lines[0] = (
            f"imported {s['source']} -> {out} (tinytrain-ir/1, PyTorch via torch.fx, post-training int8 on "
            f"{meta['calibration']['samples']} calibration samples, numerics {s['numerics']})"
        )
        lines = [
            f"folded  {meta['folded_ops']} op(s): " + "; ".join(meta["folded"])
            if ln.startswith("folded  ")
            else ln
            for ln in lines
        ]
        clipped = meta["calibration"].get("inputs_clipped", 0.0)
        if clipped > 0.001:
            lines.insert(
                2,
                f"warning {clipped:.1%} of the calibration inputs fall outside the int8 input range; "
                "pass --input-scale auto or a wider scale",
            )
        text = "\n".join(lines)
    print(text)
    return 0
