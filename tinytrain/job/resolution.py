"""Which input resolution a job loads its model at: given by `--resolution`, or implied by the model.

- A zoo image model (mcu-int8-mbnet: mcunet-5fps, mbv2-w0.35, proxyless-w0.3, or such a directory) runs at
  any square size: the resolution is the user's choice and must be given.
- A tinytrain IR model (an imported model, the zoo's sensor-conv1d / keyboard-char, a saved trained model)
  has its own input: without `--resolution` the job uses it. A 1-D model (input C x 1 x L: a time series)
  has no square resolution; an imported model with ops beyond the zoo's (conv2d, add, avgpool) runs at its
  own input only; giving another `--resolution` for either is refused in one line (what to do instead).
  An IR model made of the zoo's ops only (a saved zoo model) still resizes to a given square resolution.

Reads the model directory's `graph.json` header only (no weights): it runs before anything is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tinytrain import TinytrainError


@dataclass(frozen=True)
class ModelInput:
    """A model's input as its files state it (None for a zoo image model: any square size)."""

    shape: tuple[int, int, int]  # (C, H, W)
    resizable: bool  # only the zoo's op kinds: Graph.with_resolution can change H = W

    @property
    def one_d(self) -> bool:
        return self.shape[1] == 1 and self.shape[2] > 1


def model_input_of(model: str) -> ModelInput | None:
    """The input of an IR model (zoo IR name or directory with graph.json); None for an image model of the
    mcu-int8-mbnet format (any square size) and for names the loader will refuse itself."""
    from tinytrain.ir import OP_KINDS
    from tinytrain.models.zoo import IR_ZOO, ZOO, ZOO_DIR

    if model in ZOO:
        return None
    p = ZOO_DIR / model if model in IR_ZOO else Path(model)
    f = p / "graph.json"
    if not f.is_file():
        return None
    try:
        doc = json.loads(f.read_text())
        (t,) = [t for t in doc["tensors"] if t["name"] == doc["input"]]
        c, h, w = (int(v) for v in t["shape"])
        kinds = {op["kind"] for op in doc["ops"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # load_model reports the broken file in its own words
    return ModelInput((c, h, w), kinds <= set(OP_KINDS))


def job_resolution(model: str, resolution: int | None, option: str = "--resolution") -> int | None:
    """The resolution to load `model` at (None: the model's own input), or a TinytrainError naming what
    to do when `resolution` is missing for an image model or conflicts with the model's fixed input."""
    info = model_input_of(model)
    if info is None:
        if resolution is None and _is_image_zoo(model):
            raise TinytrainError(
                f"missing {option}: {model} is an image model that runs at any square input size "
                f"(e.g. {option} 128)"
            )
        return resolution
    c, h, w = info.shape
    if resolution is None or (resolution == h == w):
        return None  # the model's own input
    if info.one_d:
        raise TinytrainError(
            f"{option} {resolution}: model {model} takes a 1-D series ({c} channels x {w} steps), not a "
            f"square image; leave {option} out (the length is the model's; cut longer recordings with "
            f"--window {w})"
        )
    if not info.resizable:
        raise TinytrainError(
            f"{option} {resolution}: model {model} (imported) runs at its own input {h}x{w} only; leave "
            f"{option} out"
        )
    return resolution


def _is_image_zoo(model: str) -> bool:
    from tinytrain.models.zoo import ZOO

    return model in ZOO or Path(model).is_dir()  # a directory without graph.json: mcu-int8-mbnet
