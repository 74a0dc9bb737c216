"""The shared data flags and the one-line summary / JSON provenance a run record carries."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tinytrain.data import load_dataset
from tinytrain.data.options import add_dataset_options, dataset_options


def test_flags_map_to_load_dataset_arguments() -> None:
    p = argparse.ArgumentParser()
    add_dataset_options(p)
    args = p.parse_args(["--window", "50", "--stride", "10", "--normalize", "none"])
    assert dataset_options(args) == {"window": 50, "stride": 10, "normalize": "none", "layout": "chw"}
    assert dataset_options(p.parse_args([]))["normalize"] == "standard"


def test_summary_and_provenance_are_serializable(tmp_path: Path) -> None:
    rows = ["sample,label,a,b"] + [f"r{i},{'xy'[i % 2]},{t},{t * i}" for i in range(6) for t in range(8)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(tmp_path / "s.csv", input_scale=0.02, window=4, stride=2, test_fraction=0.34)
    line = ds.summary()
    assert line.startswith("dataset s.csv: 2 classes (x, y), ") and "(2, 1, 4) (C, H, W)" in line
    assert "saturated" in line and "\n" not in line
    doc = json.loads(json.dumps(ds.provenance))
    assert (
        doc["window"] == 4
        and doc["stride"] == 2
        and doc["format"] == "csv-long"
        and doc["train"] == len(ds.train_y)
    )
    np.savez(tmp_path / "d.npz", x=np.zeros((6, 3, 2, 2), np.int8), y=np.array([0, 1] * 3))
    assert (
        json.loads(json.dumps(load_dataset(tmp_path / "d.npz", test_fraction=0.34).provenance))["dtype"]
        == "int8"
    )
    assert json.dumps(load_dataset("digits", 8).provenance)
