"""`tinytrain infer`: classify one image or int8 tensor with the host reference (the device's integer
semantics, bit-exact)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tinytrain import TinytrainError

DEFAULT_RESOLUTION = 128


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "infer",
        help="run int8 inference on an image or a tensor",
        description="Run a model with the host reference (the device's exact integer semantics) "
        "and print the top classes (ImageNet class indices for the zoo models).",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="NAME|DIR",
        help="a zoo model name (see `tinytrain models`) or a model directory "
        "(mcu-int8-mbnet/1 or a saved tinytrain IR)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--image",
        metavar="FILE",
        help="PNG/JPEG; converted to RGB, resized (bilinear) to the resolution, x = pixel - 128",
    )
    src.add_argument(
        "--input",
        metavar="FILE.npy",
        help="an int8 array, used as is: [1, C, H, W] for a zoo model; for an imported model a batch "
        "[N, ...] in the model's source layout (NHWC [N, H, W, C] for a 2-D .tflite, NWC [N, W, C] for a "
        "1-D one, NCHW / NCW for .onnx), quantized with the input scale/zero point "
        "`tinytrain import` printed",
    )
    p.add_argument(
        "--resolution",
        type=int,
        metavar="R",
        help=f"input resolution (default: {DEFAULT_RESOLUTION} for --image, H of --input)",
    )
    p.add_argument(
        "--logits",
        metavar="OUT.npy",
        help="write the int8 logits of every sample, [N, K], to this .npy file (written atomically)",
    )
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many classes to print (default 5)")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"model": ..., "top": [{"class": int, "logit": int}, ...]} (int8 logits)',
    )
    p.set_defaults(func=run)


def load_image(path: str | Path, resolution: int) -> np.ndarray:
    """An image file as the int8 input [1, 3, R, R]: RGB, bilinear resize to R x R, x = pixel - 128."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((resolution, resolution), Image.Resampling.BILINEAR)
    except FileNotFoundError as exc:
        raise TinytrainError(f"--image {path}: no such file") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise TinytrainError(f"--image {path}: cannot read it as an image ({exc})") from exc
    pix = np.asarray(rgb, dtype=np.int16)
    return (pix - 128).astype(np.int8).transpose(2, 0, 1)[None].copy()


def load_input(path: str | Path, channels: int) -> np.ndarray:
    """An int8 .npy tensor [1, C, H, W], checked."""
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise TinytrainError(f"--input {path}: no such file") from exc
    except Exception as exc:  # numpy parses the header with the tokenizer: any error means a damaged file
        raise TinytrainError(f"--input {path}: not a .npy array ({type(exc).__name__}: {exc})") from None
    if not isinstance(x, np.ndarray):
        raise TinytrainError(f"--input {path}: expected a .npy array, got an .npz archive")
    if x.dtype != np.int8:
        raise TinytrainError(f"--input {path}: dtype {x.dtype}, expected int8 (x = pixel - 128)")
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != channels or x.shape[2] != x.shape[3] or x.shape[2] < 1:
        raise TinytrainError(
            f"--input {path}: shape {list(x.shape)}, expected [1, {channels}, H, H] (square)"
        )
    return x


def load_source_batch(path: str | Path, graph: object) -> np.ndarray:
    """An imported model's int8 batch [N, ...] in its source layout, checked; returned as HWC samples."""
    from tinytrain.ir import Graph

    assert isinstance(graph, Graph)
    src = list(graph.meta.get("source_input_shape") or [])
    layout = graph.meta.get("source_layout", "?")
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise TinytrainError(f"--input {path}: no such file") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise TinytrainError(f"--input {path}: not a .npy array ({exc})") from exc
    if not isinstance(x, np.ndarray):
        raise TinytrainError(f"--input {path}: expected a .npy array, got an .npz archive")
    q = graph.tensors[graph.input]
    if x.dtype != np.int8:
        raise TinytrainError(
            f"--input {path}: dtype {x.dtype}, expected int8 (quantize: round(x / {q.scale:.6g}) + {q.zero})"
        )
    want = ["N", *src[1:]]
    if x.ndim != len(src) or list(x.shape[1:]) != src[1:] or x.shape[0] < 1:
        raise TinytrainError(
            f"--input {path}: shape {list(x.shape)}, expected {want} ({layout}, a batch of N samples)"
        )
    c, h, w = q.shape
    if layout == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    elif layout == "NCW":
        x = x.transpose(0, 2, 1)
    return np.ascontiguousarray(x.reshape(x.shape[0], h, w, c))


def save_logits(path: str | Path, logits: np.ndarray) -> None:
    """int8 [N, K] to a .npy file via a temporary name renamed at the end."""
    dst = Path(path)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, logits.astype(np.int8))
        tmp.replace(dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TinytrainError(f"--logits {path}: cannot write it ({exc.strerror})") from None


def run_imported(args: argparse.Namespace, graph: object) -> int:
    from tinytrain.ir import Graph
    from tinytrain.reference.inference import run_forward

    assert isinstance(graph, Graph)
    if args.image is not None:
        raise TinytrainError(
            f"--image: model {graph.name!r} is imported ({graph.meta.get('source')}); give --input X.npy, "
            f"int8 in its source layout {graph.meta.get('source_layout')}"
        )
    if args.resolution is not None:
        raise TinytrainError(f"--resolution: imported model {graph.name!r} runs at its own input size only")
    xs = load_source_batch(args.input, graph)
    logits = np.stack([run_forward(graph, x)[graph.output].reshape(-1) for x in xs]).astype(np.int8)
    if args.logits:
        save_logits(args.logits, logits)
    tops = [top_k(z, min(args.top, z.size)) for z in logits]
    if args.json:
        doc = {
            "model": graph.name,
            "samples": len(xs),
            "top": [[{"class": c, "logit": v} for c, v in t] for t in tops],
        }
        print(json.dumps(doc))
        return 0
    out = graph.tensors[graph.output]
    print(
        f"model {graph.name} (imported, numerics {graph.numerics}), input {args.input}: {len(xs)} sample(s)"
    )
    for n, t in enumerate(tops[:10]):
        print(
            f"sample {n}: "
            + ", ".join(f"class {c} logit {v} ({(v - out.zero) * out.scale:.3f})" for c, v in t)
        )
    if len(tops) > 10:
        print(f"... {len(tops) - 10} more" + (f" (all logits in {args.logits})" if args.logits else ""))
    elif args.logits:
        print(f"logits int8 {list(logits.shape)} -> {args.logits}")
    return 0


def top_k(logits: np.ndarray, k: int) -> list[tuple[int, int]]:
    """(class, logit) pairs, highest logit first; ties by lower class index."""
    order = np.lexsort((np.arange(logits.size), -logits.astype(np.int32)))
    return [(int(c), int(logits[c])) for c in order[:k]]


def run(args: argparse.Namespace) -> int:
    from tinytrain.models import load_model
    from tinytrain.reference import infer

    if args.top < 1:
        raise TinytrainError(f"--top must be at least 1, got {args.top}")
    if args.resolution is not None and args.resolution < 1:
        raise TinytrainError(f"--resolution must be positive, got {args.resolution}")
    graph = load_model(args.model)
    if graph.meta.get("source_layout"):  # an imported model: source layout, a batch
        return run_imported(args, graph)
    channels = graph.tensors[graph.input].shape[0]
    if args.image is not None:
        res = args.resolution or DEFAULT_RESOLUTION
        x = load_image(args.image, res)
        source = args.image
    else:
        x = load_input(args.input, channels)
        res = x.shape[2]
        if args.resolution is not None and args.resolution != res:
            raise TinytrainError(f"--input {args.input} is {res}x{res} but --resolution is {args.resolution}")
        source = args.input
    if res != graph.resolution:
        graph = graph.with_resolution(res)
    logits = infer(graph, x)
    if args.logits:
        save_logits(args.logits, logits.reshape(1, -1))
    top = top_k(logits, args.top)
    if args.json:
        print(json.dumps({"model": graph.name, "top": [{"class": c, "logit": v} for c, v in top]}))
        return 0
    out = graph.tensors[graph.output]
    print(f"model {graph.name} at {res}x{res}, input {source}")
    print(f"{'rank':>4} {'class':>6} {'logit':>6} {'real':>8}")
    for i, (c, v) in enumerate(top, 1):
        print(f"{i:>4} {c:>6} {v:>6} {(v - out.zero) * out.scale:>8.3f}")
    return 0
