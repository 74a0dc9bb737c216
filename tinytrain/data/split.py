"""Seeded stratified train/test split (`sklearn.model_selection.train_test_split(stratify=y)`)."""

from __future__ import annotations

import numpy as np

from tinytrain.data.errors import DataError


def stratified_split(
    y: np.ndarray,
    test_fraction: float,
    seed: int,
    source: str,
    unit: str = "sample",
    names: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): `test_fraction` of every class to the test set, each part in the split's seeded
    shuffled order. `unit` names what is split ("sample", "recording") and `names` the classes (y indexes
    them) in errors."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    values, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        few = values[int(np.argmin(counts))].item()
        few = names[few] if names is not None else few
        raise DataError(
            f"{source}: class {few!r} has only {counts.min()} {unit}; a stratified train/test split needs at "
            "least 2 per class: add data or give a test set"
        )
    n_test = int(np.ceil(test_fraction * len(y)))
    if n_test < len(values) or len(y) - n_test < len(values):
        raise DataError(
            f"{source}: {len(y)} {unit}s cannot be split {1 - test_fraction:.2f}/{test_fraction:.2f} with "
            f"every one of the {len(values)} classes on both sides: add data, change the test fraction or "
            "give a test set"
        )
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=y
    )
    return np.asarray(idx_train), np.asarray(idx_test)
