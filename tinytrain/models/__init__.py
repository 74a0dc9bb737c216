"""Model zoo and loaders: the shipped pretrained int8 models, and importers into the IR.

`import_torch` (PyTorch -> IR) is imported lazily, so that loading a zoo model does not import torch.
"""

from typing import Any

from tinytrain.models.head import replace_head  # noqa: F401
from tinytrain.models.zoo import ZOO, load_model  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in ("import_torch", "quantize_input"):
        from tinytrain.models import torch_import

        return getattr(torch_import, name)
    if name == "import_model":  # .tflite -> IR (tinytrain/models/importer.py)
        from tinytrain.models.importer import import_model

        return import_model
    raise AttributeError(f"module 'tinytrain.models' has no attribute {name!r}")
