"""`tinytrain models`: the shipped model zoo."""

from __future__ import annotations

import argparse
import json

from tinytrain.models import ZOO, load_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the shipped pretrained models",
                       description="List the shipped pretrained int8 models: parameters, MACs at a resolution, "
                                   "source and license.")
    p.add_argument("--resolution", type=int, default=128, metavar="R",
                   help="input resolution for the MAC count (default 128)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=run)


def rows(resolution: int) -> list[dict[str, object]]:
    out = []
    for name in ZOO:
        g = load_model(name, resolution)
        out.append({"name": name, "params": g.num_params(), "macs": g.macs(), "resolution": resolution,
                    "classes": g.num_classes, "source": g.meta.get("source", ""),
                    "license": g.meta.get("license", "")})
    return out


def run(args: argparse.Namespace) -> int:
    from tinytrain import TinytrainError

    if args.resolution < 1:
        raise TinytrainError(f"--resolution must be positive, got {args.resolution}")
    table = rows(args.resolution)
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    print(f"{'name':<16}{'params':>10}{'MACs@' + str(args.resolution):>12}  {'source':<70}license")
    for r in table:
        print(f"{r['name']:<16}{r['params'] / 1e6:>9.3f}M{r['macs'] / 1e6:>11.1f}M  {r['source']:<70}{r['license']}")
    return 0
