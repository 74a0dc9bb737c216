"""The main-job recipe measurement (tinytrain.experiments.mainjob) on tiny settings."""

from __future__ import annotations

import numpy as np

from tinytrain.experiments.mainjob import Job, _streams, best, run_job


def test_test_job_is_the_emulate_job():
    """A test job trains on `tinytrain emulate`'s stream: its train split (first max_train) and test split."""
    from tinytrain.emulate import EmulateConfig, make_job

    job = Job(dataset="digits", resolution=32, epochs=1, max_train=20)
    _, program, xs, ys, xt, yt, classes = _streams(job)
    cfg = EmulateConfig(dataset="digits", classes=10, resolution=32, epochs=1, max_train=20, seed=0)
    tj = make_job(cfg, 10, tuple(program.buffers[program.input_buffer].shape))
    assert classes == 10 and np.array_equal(xs, tj.x_train) and np.array_equal(yt, tj.y_test)
    row = run_job(job)
    assert row["steps"] == 20 and row["eval_samples"] == len(tj.y_test) and 0 <= row["accuracy"] <= 1


def test_validation_never_uses_the_test_split():
    job = Job(dataset="digits", resolution=32, epochs=1, max_train=20, split="val", val_size=30)
    _, _, xs, ys, xt, yt, _ = _streams(job)
    _, _, xs0, _, xtest, _, _ = _streams(Job(dataset="digits", resolution=32, max_train=20))
    assert np.array_equal(xs, xs0) and len(yt) == 30 and len(set(yt.tolist())) == 10
    test = {x.tobytes() for x in xtest}
    assert not {x.tobytes() for x in xt} & test
    assert not {x.tobytes() for x in xt} & {x.tobytes() for x in xs}
    faces = Job(dataset="faces", resolution=32, split="val")  # no spare images: a quarter of the train split
    _, _, fx, _, fv, _, _ = _streams(faces)
    assert (len(fx), len(fv)) == (105, 35)
    rows = [
        {"split": "val", "dataset": "d", "accuracy": 0.5, "eval_loss": 1.0, "lr": 1},
        {"split": "val", "dataset": "d", "accuracy": 0.5, "eval_loss": 0.5, "lr": 2},
        {"split": "test", "dataset": "d", "accuracy": 0.9, "eval_loss": 0.1, "lr": 3},
    ]
    assert best(rows, dataset="d")["lr"] == 2
