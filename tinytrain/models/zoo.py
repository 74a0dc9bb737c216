"""The shipped model zoo: ImageNet-pretrained int8 models (MIT License, MIT HAN Lab; see zoo/LICENSE) and
`sensor-conv1d` (a 1-D net pretrained on BasicMotions, tinytrain-ir/1; zoo/sensor-conv1d/README.md) and
`keyboard-char` (a next-character model, tinytrain-ir/1; zoo/keyboard-char/README.md)."""

from __future__ import annotations

from pathlib import Path

from tinytrain import TinytrainError
from tinytrain.ir import Graph
from tinytrain.models.mcu_format import load_mcu_model

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"
ZOO = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
#: zoo models stored as tinytrain IR directories (made by a script under scripts/, named in their README)
IR_ZOO = ("sensor-conv1d", "keyboard-char")


def load_model(name_or_dir: str | Path, resolution: int | None = None) -> Graph:
    """A zoo model by name, or a model directory (mcu-int8-mbnet/1 or a saved tinytrain IR)."""
    name = str(name_or_dir)
    if name in ZOO:
        return load_mcu_model(ZOO_DIR / name, resolution)
    p = ZOO_DIR / name if name in IR_ZOO else Path(name)
    if p.is_dir():
        if (p / "graph.json").exists():
            g = Graph.load(p)
            return g.with_resolution(resolution) if resolution and resolution != g.resolution else g
        return load_mcu_model(p, resolution)
    raise TinytrainError(
        f"unknown model {name!r}: choose one of {', '.join(ZOO + IR_ZOO)} or give a model directory"
    )
