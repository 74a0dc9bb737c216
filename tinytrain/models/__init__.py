"""Model zoo and loaders: the shipped pretrained int8 models, and importers into the IR."""

from tinytrain.models.zoo import ZOO, load_model  # noqa: F401
