"""Fuzzing: a short campaign in the default run (seconds); the long one (>= 10,000 cases) is
`pytest -m slow tests/reliability/test_fuzz.py`, its numbers in docs/reliability.md and
results/reliability/fuzz.json."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinytrain import REPO_ROOT, TinytrainError

from .fuzz import campaign
from .helpers import tiny_model, write_model

HAVE_GCC = shutil.which("gcc") is not None

SHORT = {"model": 120, "scheme": 120, "baseline": 80, "npy": 60, "state": 40, "elf": 60}
#: the file kinds of the import and own-data features (fuzz_models.py, fuzz_data.py), a few seconds
SHORT_NEW = {"tflite": 200, "onnx": 120, "images": 30, "csv": 150, "npz": 150, "flashstate": 300}
LONG = {
    "model": 3000,
    "scheme": 2000,
    "baseline": 1500,
    "npy": 1000,
    "state": 800,
    "elf": 1000,
    "reader": 1500,
    "flash": 1000,
    "tflite": 3000,
    "onnx": 3000,
    "images": 800,
    "csv": 2000,
    "npz": 2000,
    "flashstate": 2000,
}
NATIVE = ("reader", "flash")  # need the host gcc (ASan + UBSan builds)


def _check(c: object) -> None:
    d = c.to_dict()  # type: ignore[attr-defined]
    assert d["tracebacks"] == 0 and d["hangs"] == 0 and d["crashes_or_sanitizer_reports"] == 0, "\n".join(
        d["failures"]
    )


def test_short_fuzz_campaign(tmp_path: Path) -> None:
    c = campaign(tmp_path, SHORT, seed=int(os.environ.get("TT_FUZZ_SEED", "1")))
    _check(c)
    assert c.total == sum(SHORT.values())
    assert sum(c.clean_errors.values()) > 0.3 * c.total  # the mutations do reach the checks


def test_short_fuzz_campaign_of_imported_models_and_user_data(tmp_path: Path) -> None:
    """.tflite / .onnx files, image folders, CSV series, .npz arrays and saved-state flash images."""
    c = campaign(tmp_path, SHORT_NEW, seed=int(os.environ.get("TT_FUZZ_SEED", "1")))
    _check(c)
    assert c.total == sum(SHORT_NEW.values())
    for target in ("tflite", "onnx", "images", "csv", "npz"):
        name = next(k for k in c.cases if target in k.lower() or target[:3] in k.lower())
        assert c.ok.get(name, 0) > 0 and c.clean_errors.get(name, 0) > 0, (name, c.to_dict())


@pytest.mark.skipif(not HAVE_GCC, reason="no host gcc")
def test_short_fuzz_of_the_device_sample_readers_under_asan(tmp_path: Path) -> None:
    c = campaign(tmp_path, {"reader": 40, "flash": 30}, seed=1)
    _check(c)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=JSON, key=st.sampled_from(["first_conv", "blocks", "classifier", "format", "name"]))
def test_hypothesis_model_json(tmp_path_factory: pytest.TempPathFactory, doc: object, key: str) -> None:
    from tinytrain.models.mcu_format import load_mcu_model

    good, arrays = tiny_model()
    good[key] = doc
    d = write_model(tmp_path_factory.mktemp("m"), good, arrays)
    try:
        load_mcu_model(d)
    except TinytrainError as exc:
        assert str(exc).strip()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=JSON)
def test_hypothesis_scheme_documents(tmp_path_factory: pytest.TempPathFactory, doc: object) -> None:
    from tinytrain.models.mcu_format import load_mcu_model
    from tinytrain.sparse import resolve_scheme

    g, arrays = tiny_model()
    graph = load_mcu_model(write_model(tmp_path_factory.mktemp("m"), g, arrays))
    for spec in (
        doc,
        {"weights": [doc]},
        {"bias_last_n": doc},
        {"weights": [{"layer": doc, "input_channel_ratio": 1}]},
    ):
        f = tmp_path_factory.mktemp("s") / "s.json"
        f.write_text(json.dumps(spec))
        try:
            resolve_scheme(str(f), graph)
        except TinytrainError as exc:
            assert str(exc).strip()


@pytest.mark.slow
def test_long_fuzz_campaign(tmp_path: Path) -> None:
    """>= 10,000 cases over every file kind; writes results/reliability/fuzz.json when TT_FUZZ_RECORD=1.
    TT_FUZZ_SCALE=k multiplies every target's budget (e.g. 10 for a campaign of ~250,000 cases)."""
    scale = float(os.environ.get("TT_FUZZ_SCALE", "1"))
    budget = {k: max(1, round(v * scale)) for k, v in LONG.items() if HAVE_GCC or k not in NATIVE}
    c = campaign(tmp_path, budget, seed=2026)
    doc = c.to_dict()
    if os.environ.get("TT_FUZZ_RECORD") == "1":
        out = REPO_ROOT / "results" / "reliability" / "fuzz.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
    _check(c)
    assert c.total >= 10_000


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    cell=st.text(max_size=12) | st.floats().map(repr) | st.integers().map(str),
    row=st.integers(0, 40),
    col=st.integers(0, 5),
)
def test_hypothesis_csv_cells(
    tmp_path_factory: pytest.TempPathFactory, cell: str, row: int, col: int
) -> None:
    """Any text in any cell of a long-format CSV (header included): a Dataset or a one-line DataError."""
    from tinytrain.data import DataError, load_dataset

    rows = [["sample", "label", "split", "ax", "ay", "az"]]
    rows += [
        [f"s{s}", "ab"[s % 2], "test" if s >= 6 else "train", "0.5", str(s), "-1"]
        for s in range(8)
        for _ in range(5)
    ]
    rows[row][col] = cell
    f = tmp_path_factory.mktemp("csv") / "d.csv"
    f.write_bytes("\n".join(",".join(r) for r in rows).encode("utf-8", errors="surrogatepass"))
    try:
        load_dataset(f, input_shape=(3, 1, 5), input_scale=0.05, input_zero=0)
    except DataError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip()
