"""`tinytrain import FILE --out DIR`: a deployed int8 model -> a tinytrain-ir/1 model directory."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import an int8 .tflite or .onnx model into a model directory",
        description="Parse a full-integer int8 .tflite file (as the TFLite converter writes it with a "
        "representative dataset) or an int8 .onnx file (QDQ or QOperator, as onnxruntime's quantize_static "
        "writes it) into a tinytrain-ir/1 directory that infer, compile and emulate accept "
        "like a zoo name. Its numerics are TFLite Micro's integer kernels (.tflite) or onnxruntime's "
        "CPU kernels (.onnx), bit for bit. Prints the ops, "
        "parameters, MACs, inference peak memory, the input's shape/layout/quantization, what was dropped "
        "and the layer names a scheme can name.",
    )
    p.add_argument("file", metavar="FILE", help="the .tflite or .onnx file")
    p.add_argument("--out", required=True, metavar="DIR", help="the model directory to write (atomically)")
    p.add_argument("--force", action="store_true", help="replace DIR if it is a tinytrain model directory")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinytrain.models.importer import format_summary, import_model, summary, write_model_dir

    graph = import_model(args.file)
    out = write_model_dir(graph, args.out, force=args.force, source=args.file)
    s = summary(graph)
    print(json.dumps({**s, "out": str(out)}, indent=1) if args.json else format_summary(s, str(out)))
    return 0
