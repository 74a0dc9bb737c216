"""`tinytrain models`: the shipped model zoo."""

from __future__ import annotations

import argparse
import json

from tinytrain import TinytrainError
from tinytrain.models import ZOO, load_model


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


def rows(resolution: int) -> list[dict[str, object]]:
    out = []
    for name in ZOO:
        g = load_model(name, resolution)
        cls = g.producer(g.output)
        head = cls.weight.size + cls.bias.size if cls is not None and cls.kind == "conv2d" else 0
        out.append(
            {
                "name": name,
                "params": g.num_params(),
                "backbone_params": g.num_params() - head,
                "macs": g.macs(),
                "resolution": resolution,
                "classes": g.num_classes,
                "source": g.meta.get("source", ""),
                "license": g.meta.get("license", ""),
            }
        )
    return out


def run(args: argparse.Namespace) -> int:
    if args.resolution < 1:
        raise TinytrainError(f"--resolution must be positive, got {args.resolution}")
    table = rows(args.resolution)
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    print(f"{'name':<16}{'params':>9}{'backbone':>10}{'MACs@' + str(args.resolution):>10}  source / license")
    for r in table:
        print(
            f"{r['name']:<16}{r['params'] / 1e6:>8.3f}M{r['backbone_params'] / 1e6:>9.3f}M"
            f"{r['macs'] / 1e6:>9.1f}M  {r['source']}"
        )
        print(f"{'':<46}{r['license']}")
    print("params include the 1000-way classifier; backbone excludes it. MACs: conv multiply-accumulates.")
    return 0
