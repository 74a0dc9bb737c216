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
    DEEP_FAMILIES,
    FAMILY_GRID,
    FIG9_SCHEMES,
    MAIN_HEAD1,
    MAIN_SCHEME,
    RunSpec,
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
    lr = {"faces": {"last": 0.01, "main": 0.003, "bias": 1e-3, "blocks": 1e-3, "full": 3e-4}}
    head = {"faces": {"main": 10.0, "bias": 4.0, "blocks": 1.0, "full": 30.0}}
    st = dataclasses.replace(TINY, lr=lr, head=head)
    t1, f9, rd = (suite_specs(st, s) for s in ("table1", "fig9", "rounding"))
    assert len(t1) == 8 and len(f9) == 2 * len(FIG9_SCHEMES) and len(rd) == 3
    assert len(dedupe(t1)) == 7  # no head-x1 lr in the settings: the two head-x1 rows are one run
    keys = {s.key() for s in t1} & {s.key() for s in f9} & {s.key() for s in rd}
    assert len(keys) == 1  # int8 + QAS + the rule on the main scheme at the chosen lr: one shared run
    (shared,) = [s for s in rd if s.key() in keys]
    assert shared.rule == st.rule == "stochastic" and shared.head_lr_scale == 10.0
    # Table 1's `last` (int8, fp32) and main fp32 are Fig. 9's too
    assert len({s.key() for s in t1} & {s.key() for s in f9}) == 4
    assert len(dedupe(t1 + f9 + rd)) == 7 + 2 * len(FIG9_SCHEMES) + 3 - 4 - 1
    own = dataclasses.replace(st, lr={"faces": {**lr["faces"], MAIN_HEAD1: 0.001}})
    head1 = [s for s in suite_specs(own, "table1") if s.scheme == MAIN_SCHEME and s.head_lr_scale == 1.0]
    assert sorted(s.lr for s in head1 if s.qas) == [0.001, 0.003]
    by = {s.scheme: s for s in f9 if s.engine == "int8"}
    assert by["last"].head_lr_scale == 1.0 and by["bias"].head_lr_scale == 4.0
    assert by["full"].head_lr_scale == 30.0 and by["paper:49kb"].head_lr_scale == 10.0
    assert {s.head_lr_scale for s in t1 if s.scheme == MAIN_SCHEME and s.engine == "int8" and s.qas} == {
        1.0,
        10.0,
    }  # the head ablation
    assert (
        spec(st, dataset="faces", seed=0, scheme="last").key()
        == spec(st, dataset="faces", seed=0, scheme="last").key()
    )
    sw = sweep_specs(st)
    per_seed = {f: len(g) * len(st.head_grid_of(f)) for f, g in FAMILY_GRID.items()}
    assert len(sw) == 3 * (per_seed["last"] + per_seed["main"]) + sum(per_seed[f] for f in DEEP_FAMILIES)
    assert {s.seed for s in sw if s.scheme == "full"} == {0} and {s.seed for s in sw} == {0, 1, 2}
    assert {s.head_lr_scale for s in sw if s.scheme == "last"} == {1.0}
    assert {s.head_lr_scale for s in sw if s.scheme == MAIN_SCHEME} == {1.0, 4.0, 10.0, 30.0}
    fixed = dataclasses.replace(st, head_grid=(8.0,))
    assert {s.head_lr_scale for s in sweep_specs(fixed) if s.scheme != "last"} == {8.0}


def test_new_fields_keep_old_keys():
    """Fields added later are left out of the key at their default: rows cached before keep their keys."""
    sp = spec(TINY, dataset="faces", seed=0, scheme="last", rule="nearest")
    old = {
        k: v
        for k, v in dataclasses.asdict(sp).items()
        if k not in ("head_lr_scale", "val_size", "data_options")
    }
    import hashlib

    h = hashlib.sha1(json.dumps(old, sort_keys=True).encode()).hexdigest()[:10]
    assert sp.key().endswith(h)
    scaled = dataclasses.replace(sp, head_lr_scale=4.0)
    assert scaled.key() != sp.key() and "-h4-" in scaled.key() and "head×4" in scaled.label()
    assert RunSpec(**{**dataclasses.asdict(sp), "val_size": 300}).key() != sp.key()


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
    # faces has no training images outside the cap: val_size falls back to val_fraction of the cap
    assert len(make_split(dataclasses.replace(sp, val_size=300)).eval_y) == len(data.eval_y)


def test_validation_from_outside_the_cap():
    """digits: the sweep trains on the same capped set as the test runs and validates on other training
    images, never on test images."""
    from tinytrain.experiments.runner import _dataset

    sp = spec(TINY, dataset="digits", seed=0, scheme="last", split="val", max_train=30, val_size=40)
    val = make_split(sp)
    test = make_split(dataclasses.replace(sp, split="test"))
    assert np.array_equal(val.train_x, test.train_x) and len(val.eval_y) == 40
    assert sorted(np.bincount(val.eval_y).tolist()) == [4] * 10
    ds = _dataset(sp.model, "digits", 32, 0)
    flat = {x.tobytes() for x in val.eval_x}
    assert not flat & {x.tobytes() for x in val.train_x}
    assert not flat & {x.tobytes() for x in ds.test_x}


@pytest.mark.parametrize("engine", ["int8", "fp32"])
def test_one_run(engine):
    sp = spec(TINY, dataset="faces", seed=0, scheme=MAIN_SCHEME, engine=engine, lr=0.001, head_lr_scale=4.0)
    row = run(sp, with_memory=engine == "int8")
    assert row["key"] == sp.key() and row["steps"] == 8 and row["eval_samples"] == 60
    assert 0.0 <= row["accuracy"] <= 1.0 and math.isfinite(row["eval_loss"]) and not row["diverged"]
    json.dumps(row)
    if engine == "int8":
        assert row["options"]["head_lr_scale"] == 4.0 and row["options"]["update_rule"] == "stochastic"
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
    best = {"last": (0.03, 1.0), MAIN_SCHEME: (0.001, 10.0), "full": (0.0003, 10.0)}
    sweep = [
        _fake(sp, 0.8 if (sp.lr, sp.head_lr_scale) == best.get(sp.scheme) else 0.5) for sp in sweep_specs(st)
    ]
    chosen, heads, table = choose_lrs(sweep, st.datasets)
    # ties: the largest lr, then the largest head multiplier
    want = {"last": 0.03, "main": 0.001, "full": 0.0003, "bias": 0.001, "blocks": 0.003, MAIN_HEAD1: 0.003}
    want_head = {"last": 1.0, "main": 10.0, "full": 10.0, "bias": 10.0, "blocks": 10.0}
    assert "own best lr" in report.table1_methods(st)[-1][0]
    assert chosen == {"faces": want, "digits": want} and heads == {"faces": want_head, "digits": want_head}
    assert sum(t["chosen"] for t in table) == 2 * (len(want) - 1)
    st = dataclasses.replace(st, lr=chosen, head=heads)
    specs = dedupe([sp for s in ("table1", "fig9", "rounding") for sp in suite_specs(st, s)])
    rows = [_fake(sp, 0.6 + 0.1 * sp.seed + (0.05 if sp.engine == "fp32" else 0.0)) for sp in specs]
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
    assert "65.0 ± 7.1" in t1 and "70.0 ± 7.1" in t1  # mean ± sample std of 0.6, 0.7 (fp32: +5)
    assert "—" not in t1  # every method found its runs, the head ablation included
    assert "head ×10" in t1
    rd = (tmp_path / "rounding.md").read_text()
    assert "+12.0" in rd  # the shadow's extra SRAM over nearest at 128 (3 x 4 KB in the fake)
    f9 = (tmp_path / "fig9.csv").read_text()
    assert "paper:148kb" in f9 and "blocks:4" in f9
    f9md = (tmp_path / "fig9.md").read_text()
    assert "—" not in f9md and "0.001 ×10" in f9md
    sw = (tmp_path / "lr_sweep.md").read_text()
    assert "×30" in sw and "×4" in sw and "stochastic" in sw


def test_refresh_memory_uses_the_current_compiler():
    from tinytrain.experiments.pipeline import refresh_memory

    sp = spec(TINY, dataset="faces", seed=1, scheme="last")
    rows, options = refresh_memory(
        [_fake(sp, 0.5), _fake(dataclasses.replace(sp, split="val"), 0.5)], "m7", 128
    )
    assert set(rows[0]["memory"]) == {"32", "128"} and rows[0]["run_memory"]["32"]["arena"] == 50_000
    assert rows[0]["memory"]["128"]["total"] > rows[0]["memory"]["32"]["total"] > 0
    assert rows[1]["memory"]["32"]["arena"] == 50_000  # validation rows are left alone
    assert options["qas"] is True and options["update_rule"] == "stochastic"
