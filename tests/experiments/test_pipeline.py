"""The evidence machinery on tiny settings: schemes, schedule, one run per engine, the cache, lr
selection and the report (on synthetic rows). The full evidence run is not part of the test suite."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from tinytrain.experiments import report
from tinytrain.experiments.config import (
    FAMILY_GRID,
    FIG9_SCHEMES,
    MAIN_SCHEME,
    Settings,
    dedupe,
    lr_at,
    spec,
    suite_specs,
    sweep_specs,
)
from tinytrain.experiments.pipeline import Store, choose_lrs, execute
from tinytrain.experiments.runner import make_split, run, schedule, train_subset
from tinytrain.experiments.schemes import last_blocks_scheme, resolve
from tinytrain.models import load_model

TINY = Settings(datasets=("faces",), seeds=(0,), resolution=32, epochs=1, max_train=8)


def test_last_blocks_scheme():
    g = load_model("mcunet-5fps", resolution=32)
    one = last_blocks_scheme(g, 1)
    assert [w["layer"] for w in one["weights"]] == [
        "blocks.13.pointwise1",
        "blocks.13.depthwise",
        "blocks.13.pointwise2",
    ]
    assert one["bias_last_n"] == 3
    s = resolve("blocks:2", g)
    assert set(s.weights) == {
        f"blocks.{b}.{n}" for b in (12, 13) for n in ("pointwise1", "depthwise", "pointwise2")
    } | {"classifier"}
    assert s.bias_last_n == 6
    with pytest.raises(Exception, match="blocks"):
        resolve("blocks:99", g)


def test_lr_schedule():
    total, base = 100, 0.1
    lrs = [lr_at(t, total, base, 0.05) for t in range(total)]
    assert lrs[0] == pytest.approx(base / 5) and lrs[4] == pytest.approx(base)
    assert max(lrs) == pytest.approx(base) and lrs[-1] < 0.01 * base
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:], strict=False))


def test_suites_share_runs_and_keys_are_stable():
    st = dataclasses.replace(
        TINY, lr={"faces": {"last": 0.01, "main": 0.003, "bias": 1e-3, "blocks": 1e-3, "full": 3e-4}}
    )
    t1, f9, rd = (suite_specs(st, s) for s in ("table1", "fig9", "rounding"))
    assert len(t1) == 5 and len(f9) == len(FIG9_SCHEMES) and len(rd) == 3
    keys = {s.key() for s in t1} & {s.key() for s in f9} & {s.key() for s in rd}
    assert len(keys) == 1  # int8 + QAS + nearest on the main scheme at the chosen lr: one shared run
    assert len(dedupe(t1 + f9 + rd)) == 5 + len(FIG9_SCHEMES) + 3 - 3
    assert (
        spec(st, dataset="faces", seed=0, scheme="last").key()
        == spec(st, dataset="faces", seed=0, scheme="last").key()
    )
    assert len(sweep_specs(st)) == sum(len(g) for g in FAMILY_GRID.values())


def test_split_and_schedule():
    y = np.repeat(np.arange(4), 10)
    idx = train_subset(y, 12, 0)
    assert len(idx) == 12 and np.bincount(y[idx]).tolist() == [3, 3, 3, 3]
    assert len(train_subset(y, 100, 0)) == 40
    sp = spec(TINY, dataset="faces", seed=0, scheme="last", split="val")
    data = make_split(sp)
    assert len(data.train_y) + len(data.eval_y) == 8 and data.classes == 2
    steps = schedule(dataclasses.replace(sp, epochs=2), 6)
    assert sorted(i for i, _ in steps[:6]) == list(range(6)) and len(steps) == 12


@pytest.mark.parametrize("engine", ["int8", "fp32"])
def test_one_run(engine):
    sp = spec(TINY, dataset="faces", seed=0, scheme=MAIN_SCHEME, engine=engine, lr=0.001)
    row = run(sp, with_memory=engine == "int8")
    assert row["key"] == sp.key() and row["steps"] == 8 and row["eval_samples"] == 60
    assert 0.0 <= row["accuracy"] <= 1.0 and math.isfinite(row["eval_loss"]) and not row["diverged"]
    json.dumps(row)
    if engine == "int8":
        assert set(row["memory"]) == {"32", "128"}
        assert row["memory"]["128"]["total"] > row["memory"]["32"]["total"] > 0


def test_cache_and_resume(tmp_path):
    store = Store(tmp_path)
    specs = [spec(TINY, dataset="faces", seed=0, scheme="last", lr=lr, split="val") for lr in (0.01, 0.03)]
    logs: list[str] = []
    rows = execute(specs, store, jobs=1, log=logs.append)
    assert len(rows) == 2 and "0 cached, 2 to run" in logs[0]
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2
    logs.clear()
    again = execute(specs + specs[:1], store, jobs=1, log=logs.append)
    assert "2 cached, 0 to run" in logs[0] and again == rows
    (tmp_path / "runs" / f"{specs[0].key()}.json").write_text("{broken")
    logs.clear()
    execute(specs, store, jobs=1, log=logs.append)
    assert "1 cached, 1 to run" in logs[0]


def _fake(sp, acc):
    row = dataclasses.asdict(sp) | {
        "key": sp.key(),
        "label": sp.label(),
        "accuracy": acc,
        "eval_loss": 1 - acc,
        "eval_samples": 10,
        "train_samples": 6,
        "steps": 6,
        "diverged": False,
        "loss_curve": [1.0, 0.5, 0.2],
        "seconds": 1.0,
    }
    shadow = 4096 if sp.rule == "shadow" else 0
    mem = {
        "total": 100_000 + len(sp.scheme) * 1000 + shadow,
        "arena": 50_000,
        "flash": 1,
        "breakdown": {"shadow_copies": shadow, "trainable_weights": 10},
    }
    row["memory"] = {"32": mem, "128": dict(mem, total=mem["total"] * 3)}
    return row


def test_choose_lrs_and_report(tmp_path):
    st = dataclasses.replace(TINY, datasets=("faces", "digits"), seeds=(0, 1))
    best = {"last": 0.03, MAIN_SCHEME: 0.003, "full": 0.0003}
    sweep = [_fake(sp, 0.8 if sp.lr == best.get(sp.scheme) else 0.5) for sp in sweep_specs(st)]
    chosen, table = choose_lrs(sweep, st.datasets)
    want = {"last": 0.03, "main": 0.003, "full": 0.0003, "bias": 0.001, "blocks": 0.003}  # ties: largest lr
    assert chosen == {"faces": want, "digits": want}
    assert sum(t["chosen"] for t in table) == 2 * len(want)
    st = dataclasses.replace(st, lr=chosen)
    specs = dedupe([sp for s in ("table1", "fig9", "rounding") for sp in suite_specs(st, s)])
    rows = [_fake(sp, 0.6 + 0.1 * sp.seed) for sp in specs]
    written = report.write_all(
        tmp_path, st, ["lr", "table1", "fig9", "rounding"], rows, table, {"lr_source": "x"}
    )
    names = {p.name for p in written}
    assert {
        "table1.md",
        "table1.csv",
        "fig9.md",
        "fig9.csv",
        "fig9.png",
        "rounding.md",
        "rounding.csv",
        "rounding.png",
        "lr_sweep.md",
        "learning_curves.png",
        "runs.csv",
        "README.md",
    } <= names
    t1 = (tmp_path / "table1.md").read_text()
    assert "65.0 ± 7.1" in t1  # mean ± sample std of 0.6, 0.7
    rd = (tmp_path / "rounding.md").read_text()
    assert "+12.0" in rd  # the shadow's extra SRAM over nearest at 128 (3 x 4 KB in the fake)
    f9 = (tmp_path / "fig9.csv").read_text()
    assert "paper:148kb" in f9 and "blocks:4" in f9


def test_refresh_memory_uses_the_current_compiler():
    from tinytrain.experiments.pipeline import refresh_memory

    sp = spec(TINY, dataset="faces", seed=1, scheme="last")
    rows, options = refresh_memory(
        [_fake(sp, 0.5), _fake(dataclasses.replace(sp, split="val"), 0.5)], "m7", 128
    )
    assert set(rows[0]["memory"]) == {"32", "128"} and rows[0]["run_memory"]["32"]["arena"] == 50_000
    assert rows[0]["memory"]["128"]["total"] > rows[0]["memory"]["32"]["total"] > 0
    assert rows[1]["memory"]["32"]["arena"] == 50_000  # validation rows are left alone
    assert options["qas"] is True and options["update_rule"] == "nearest"
