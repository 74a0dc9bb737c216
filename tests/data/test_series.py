"""Long-format CSV and UCR/UEA .ts time series: windows, train-only normalization, quantization, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinytrain.data import DataError, load_dataset, quantize

HEADER = "sample,label,ax,ay\n"


def _csv(
    path: Path, samples: dict[str, tuple[str, np.ndarray]], header: str = HEADER, split: dict | None = None
) -> Path:
    lines = [header]
    for sid, (label, v) in samples.items():
        for row in v:
            extra = f",{split[sid]}" if split else ""
            lines.append(f"{sid},{label},{','.join(repr(float(t)) for t in row)}{extra}\n")
    path.write_text("".join(lines))
    return path


def _samples(n_per_class: int = 4, length: int = 12, seed: int = 0) -> dict[str, tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = {}
    for k, label in enumerate(("walk", "run")):
        for i in range(n_per_class):
            out[f"{label}{i}"] = (label, rng.normal(k * 2.0, 1.0 + k, (length, 2)))
    return out


def test_csv_split_by_recording_normalized_on_train(tmp_path: Path) -> None:
    s = _samples()
    p = _csv(tmp_path / "d.csv", s)
    ds = load_dataset(p, input_shape=(2, 1, 12), input_scale=0.04, input_zero=1, seed=3, test_fraction=0.25)
    assert (
        ds.class_names == ["run", "walk"]
        and ds.train_x.shape == (6, 1, 12, 2)
        and ds.test_x.shape == (2, 1, 12, 2)
    )
    assert ds.provenance["format"] == "csv-long" and ds.provenance["split"]["by"] == "recording"
    mean, std = np.asarray(ds.provenance["mean"]), np.asarray(ds.provenance["std"])
    q = {sid: quantize((v - mean) / std, 0.04, 1) for sid, (_, v) in s.items()}
    train_ids = [sid for sid in s if any(np.array_equal(q[sid], x[0]) for x in ds.train_x)]
    test_ids = [sid for sid in s if any(np.array_equal(q[sid], x[0]) for x in ds.test_x)]
    assert len(train_ids) == 6 and len(test_ids) == 2 and not set(train_ids) & set(test_ids)
    train_raw = np.concatenate([s[sid][1] for sid in train_ids])
    assert np.allclose(mean, train_raw.mean(0)) and np.allclose(std, train_raw.std(0))  # train split only
    assert ds.provenance["quantize"]["rounding"].startswith("round half to even")
    again = load_dataset(
        p, input_shape=(2, 1, 12), input_scale=0.04, input_zero=1, seed=3, test_fraction=0.25
    )
    assert np.array_equal(again.train_x, ds.train_x)


def test_csv_windows_and_split_column(tmp_path: Path) -> None:
    s = _samples(length=25)
    split = {sid: ("test" if sid.endswith("3") else "train") for sid in s}
    p = _csv(tmp_path / "w.csv", s, header="sample,label,ax,ay,split\n", split=split)
    ds = load_dataset(p, input_scale=0.05, window=10, stride=5, normalize="none")
    assert ds.input_shape == (2, 1, 10)
    assert (
        len(ds.train_y) == 6 * 4 and len(ds.test_y) == 2 * 4
    )  # (25 - 10) // 5 + 1 = 4 windows per recording
    assert ds.provenance["split"] == "given" and ds.provenance["stride"] == 5
    walk0 = s["walk0"][1]
    assert any(np.array_equal(x[0], quantize(walk0[5:15], 0.05, 0)) for x in ds.train_x)


def test_ts_file_with_test_sibling(tmp_path: Path) -> None:
    head = "# comment\n@problemName Toy\n@timeStamps false\n@univariate false\n@dimensions 2\n"
    head += "@equalLength true\n@seriesLength 4\n@classLabel true a b\n@data\n"
    (tmp_path / "Toy_TRAIN.ts").write_text(
        head + "1,2,3,4:5,6,7,8:a\n2,3,4,5:6,7,8,9:b\n1,1,1,1:0,0,0,0:a\n3,3,3,3:1,1,1,1:b\n"
    )
    (tmp_path / "Toy_TEST.ts").write_text(head + "1,2,3,4:5,6,7,8:b\n")
    ds = load_dataset(tmp_path / "Toy_TRAIN.ts", input_shape=(2, 4), input_scale=1.0, normalize="none")
    assert ds.train_x.shape == (4, 1, 4, 2) and ds.test_x.shape == (1, 1, 4, 2) and ds.test_y.tolist() == [1]
    assert ds.train_x[0, 0, :, 1].tolist() == [5, 6, 7, 8] and "Toy_TEST.ts" in ds.provenance["split"]
    (tmp_path / "Toy_TEST.ts").write_text(head + "1,2,3,4:5,6,7,8:c\n")
    with pytest.raises(DataError, match=r"Toy_TEST.ts: line 10: label 'c' of test sample"):
        load_dataset(tmp_path / "Toy_TRAIN.ts", input_scale=1.0)
    (tmp_path / "Toy_TEST.ts").write_text(head + "1,2,3:5,6,7:a\n")
    with pytest.raises(DataError, match=r"Toy_TEST.ts: line 10: sample 'case 1' has 3 steps, the others 4"):
        load_dataset(tmp_path / "Toy_TRAIN.ts", input_scale=1.0)
    (tmp_path / "Toy_TEST.ts").write_text(head + "1,?,3,4:5,6,7,8:a\n")
    with pytest.raises(DataError, match=r"Toy_TEST.ts: line 10, dimension 1: not a number"):
        load_dataset(tmp_path / "Toy_TRAIN.ts", input_scale=1.0)


def _err(path: Path, **kw: object) -> str:
    kw.setdefault("input_scale", 0.1)
    with pytest.raises(DataError) as e:
        load_dataset(path, **kw)  # type: ignore[arg-type]
    assert "\n" not in str(e.value) and e.value.exit_code == 2
    return str(e.value)


def test_bad_csv(tmp_path: Path) -> None:
    good = _csv(tmp_path / "good.csv", _samples())
    text = good.read_text().splitlines(keepends=True)

    def variant(name: str, line: int, new: str) -> Path:
        t = list(text)
        t[line - 1] = new
        (tmp_path / name).write_text("".join(t))
        return tmp_path / name

    assert "nan.csv: line 5, column 'ay': 'nan' is not a finite number" in _err(
        variant("nan.csv", 5, "walk0,walk,1.0,nan\n")
    )
    assert "inf.csv: line 3, column 'ax': 'inf'" in _err(variant("inf.csv", 3, "walk0,walk,inf,1\n"))
    assert "txt.csv: line 7, column 'ax': 'abc'" in _err(variant("txt.csv", 7, "walk0,walk,abc,1\n"))
    assert "emp.csv: line 4, column 'ay': empty" in _err(variant("emp.csv", 4, "walk0,walk,1,\n"))
    assert "missing column 'label'" in _err(variant("col.csv", 1, "sample,lab,ax,ay\n"))
    msg = _err(variant("order.csv", 30, "walk0,walk,1,1\n"))
    assert "order.csv: line 30: rows of sample 'walk0' are not consecutive (it also starts on line 2)" in msg
    assert "line 9: sample 'walk0' changes label" in _err(variant("lab.csv", 9, "walk0,run,1,1\n"))
    short = dict(_samples())
    short["walk2"] = ("walk", short["walk2"][1][:7])
    p = _csv(tmp_path / "short.csv", short)
    assert "short.csv: line 26: sample 'walk2' has 7 steps, the others 12; give --window N" in _err(p)
    assert "sample 'walk2' has 7 steps, shorter than the window (10)" in _err(p, window=10)
    assert "only one class ('walk')" in _err(
        _csv(tmp_path / "one.csv", {k: v for k, v in _samples().items() if k.startswith("walk")})
    )
    assert "samples are 12 steps long, the model's input is 16: the recordings are too short" in _err(
        good, input_shape=(2, 1, 16)
    )
    assert "samples are 12 steps long, the model's input is 8: give --window 8" in _err(
        good, input_shape=(2, 1, 8)
    )
    assert "samples are 5 steps long, the model's input is 8: use --window 8" in _err(
        good, input_shape=(2, 1, 8), window=5
    )
    assert "2 channels (ax, ay), the model's input has 3" in _err(good, input_shape=(3, 1, 12))
    assert "needs the model's input scale" in _err(good, input_scale=None)
    assert "a stride needs a window" in _err(good, stride=3)
    split = {sid: ("test" if sid == "run3" else "train") for sid in _samples()}
    tr = _csv(
        tmp_path / "sp.csv",
        {k: v for k, v in _samples().items() if k != "run0"},
        "sample,label,ax,ay,split\n",
        split,
    )
    t = tr.read_text().replace("run3,run", "run3,jump")
    tr.write_text(t)
    assert "label 'jump' of test sample 'run3' is not in the training set" in _err(tr)
    (tmp_path / "ragged.csv").write_text(HEADER + "a,x,1,2\na,x,1,2,3\n")
    assert "ragged.csv: not a readable CSV" in _err(tmp_path / "ragged.csv")


def test_integer_labels_sort_numerically(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    s = {f"r{i}": (str(lab), rng.normal(size=(5, 2))) for i, lab in enumerate([2, 10, 2, 10, 1, 1])}
    ds = load_dataset(_csv(tmp_path / "n.csv", s), input_scale=0.1, test_fraction=0.5)
    assert ds.class_names == ["1", "2", "10"]
