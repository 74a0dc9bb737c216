"""`tinytrain models`: the shipped model zoo."""

from __future__ import annotations

import argparse
import json

from tinytrain import TinytrainError
from tinytrain.models import ZOO, load_model
from tinytrain.models.zoo import IR_ZOO


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the shipped pretrained models",
        description="List the shipped pretrained int8 models: parameters, MACs at a resolution, "
        "source and license.",
    )
    p.add_argument(
        "--resolution",
        type=int,
        default=128,
        metavar="R",
        help="input resolution for the MAC count (default 128)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=run)


def _task(name: str) -> str:
    return {"sensor-conv1d": "sensor series", "keyboard-char": "next character"}.get(name, "image")


def rows(resolution: int) -> list[dict[str, object]]:
    """Every shipped model: the ImageNet ones at `resolution`, the fixed-input ones (1-D sensor net, keyboard
    model) at their own input size."""
    out = []
    for name in ZOO + IR_ZOO:
        g = load_model(name, resolution if name in ZOO else None)
        cls = g.producer(g.output)
        head = cls.weight.size + cls.bias.size if cls is not None and cls.weight is not None else 0
        out.append(
            {
                "name": name,
                "task": _task(name),
                "input": list(g.tensors[g.input].shape),
                "params": g.num_params(),
                "backbone_params": g.num_params() - head,
                "macs": g.macs(),
                "resolution": resolution if name in ZOO else None,
                "classes": g.num_classes,
                "source": g.meta.get("source", "") if name in ZOO else f"zoo/{name}/README.md",
                "license": g.meta.get("license", "")
                if name in ZOO
                else _IR_LICENSE.get(name, "MIT (tinytrain)"),
            }
        )
    return out


#: what the weights of the fixed-input zoo models derive from (their README's licence section says more)
_IR_LICENSE = {
    "sensor-conv1d": "MIT (tinytrain); trained on BasicMotions, UEA/UCR archive via aeon (BSD-3-Clause)",
    "keyboard-char": "MIT (tinytrain); trained on Python's documentation text (PSF licence)",
}


def run(args: argparse.Namespace) -> int:
    from tinytrain.cli.table import print_table

    if args.resolution < 1:
        raise TinytrainError(f"--resolution must be positive, got {args.resolution}")
    table = rows(args.resolution)
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    print_table(
        ["name", "task", "input", ("params", "right"), ("backbone", "right"), ("MACs", "right"),
         ("classes", "right"), "source / license"],
        [
            (r["name"], r["task"], "x".join(map(str, r["input"])), f"{int(r['params']) / 1e6:.3f}M",  # type: ignore[call-overload]
             f"{int(r['backbone_params']) / 1e6:.3f}M", f"{int(r['macs']) / 1e6:.2f}M", r["classes"],  # type: ignore[call-overload]
             f"{r['source']}\n{r['license']}")
            for r in table
        ],
        caption=f"MACs at {args.resolution}x{args.resolution} for the image models, at their own input for "
        "the others; params include the classifier, backbone excludes it.",
    )  # fmt: skip
    return 0
