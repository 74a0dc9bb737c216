"""The data flags every command that trains shares, for the CLI to add in one call.

```python
add_dataset_options(parser)                        # --window N --stride S --normalize standard|none --layout
ds = load_dataset(args.dataset, seed=args.seed, **model_input(graph), **dataset_options(args))
```
"""

from __future__ import annotations

import argparse
from typing import Any

from tinytrain.data.arrays import LAYOUTS
from tinytrain.data.quantize import NORMALIZE

DATASET_HELP = (
    "faces, digits, sensor (the rotated-watch scenario, for a 1-D model such as sensor-conv1d), or your "
    "data: a folder of images (one subfolder per class), an .npz (x, y[, x_test, "
    "y_test, class_names]), a long-format .csv time series (sample,label,<channels>) or a UCR/UEA .ts file "
    "(docs/data.md)"
)


def add_dataset_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("your data (docs/data.md)")
    g.add_argument(
        "--window", type=int, default=None, metavar="N", help="cut time series into windows of N steps"
    )
    g.add_argument(
        "--stride", type=int, default=None, metavar="S", help="a window every S steps (default: N)"
    )
    g.add_argument(
        "--normalize",
        choices=NORMALIZE,
        default="standard",
        help="float data: per-channel standardization with training-split statistics (default), or none",
    )
    g.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="chw",
        help="how an int8 .npz stores samples: the model's source layout (default chw, PyTorch; hwc: TFLite)",
    )


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `load_dataset` keyword arguments of the flags above."""
    return {"window": args.window, "stride": args.stride, "normalize": args.normalize, "layout": args.layout}
