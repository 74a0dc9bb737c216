from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tinytrain.ir import Graph
from tinytrain.models import ZOO, load_model


def photo(name: str, resolution: int = 128) -> np.ndarray:
    """A skimage.data photo as the zoo's int8 input [3, R, R] (RGB, bilinear, x = pixel - 128)."""
    rgb = (
        Image.fromarray(getattr(data, name)())
        .convert("RGB")
        .resize((resolution, resolution), Image.Resampling.BILINEAR)
    )
    return (np.asarray(rgb, np.int16) - 128).astype(np.int8).transpose(2, 0, 1).copy()


@pytest.fixture(scope="session")
def zoo() -> dict[str, Graph]:
    return {name: load_model(name) for name in ZOO}
