"""Host int8 reference evidence of the keyboard job (docs/evidence.md, "Keyboard").

The zoo model tinytrain/zoo/keyboard-char (pretrained on general English, seed 0) adapts on the user's text
(the CPython LICENSE.txt, split in reading order: adapt 0-70 %, held-out 70-100 %) with the job's stream
(one epoch over the adapt windows in a seeded order, batch 1, constant learning rate, the stochastic rounding
rule seeded per seed): schemes `last` (classifier only) and the job's scheme (tinytrain/zoo/keyboard-char/
scheme.json), against no adaptation. The learning rate of each scheme is chosen on the adapt part alone
(train on 0-60 %, validate on 60-70 %, seed 0, lowest validation perplexity over `LR_GRID`), then every seed
retrains from the pretrained model on the whole adapt part and is scored on the held-out part.

Usage: `PYTHONPATH=. python scripts/keyboard_evidence.py [--seeds 0 1 2] [--json out.json]`.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from tinytrain.codegen.datafile import make_order
from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.data.text import encode, user_split, user_text
from tinytrain.models import load_model
from tinytrain.reference.training import Trainer
from tinytrain.tasks import keyboard as task

LR_GRID = (0.0003, 0.001, 0.003)
SCHEMES = ("last", task.DEFAULTS["scheme"])


def adapt(graph, scheme, x, y, lr: float, seed: int) -> Trainer:  # noqa: ANN001
    t = Trainer(compile_training(graph, scheme, CompileOptions()), seed=0x2545F491 + seed)
    for i in make_order(len(x), len(x), seed):
        t.train_step(x[i], int(y[i]), lr)
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    graph = load_model(str(task.MODEL_DIR))
    zs = graph.tensors[graph.output].scale
    ids = encode(user_text())
    adapt_ids, _ = user_split(ids, task.ADAPT)
    n_in = int(len(adapt_ids) * 6 / 7)
    x_in, y_in = task.windows(ids, range(1, n_in, task.STRIDE))
    x_val, y_val = task.windows(ids, range(n_in, len(adapt_ids)))
    x, y = task.windows(ids, range(1, len(adapt_ids), task.STRIDE))
    xt, yt = task.windows(ids, range(len(adapt_ids), len(ids)))
    out: dict = {
        "none": task.evaluate(Trainer(compile_training(graph, "last")), xt, yt, zs),
        "lr": {},
        "val": {},
    }
    print(json.dumps({"none": out["none"]}), flush=True)
    for scheme in SCHEMES:
        key = "last" if scheme == "last" else "job"
        val = {
            lr: task.evaluate(adapt(graph, scheme, x_in, y_in, lr, 0), x_val, y_val, zs)["perplexity"]
            for lr in LR_GRID
        }
        out["val"][key] = val
        lr = min(val, key=lambda k: val[k] if np.isfinite(val[k]) else np.inf)
        out["lr"][key] = lr
        print(json.dumps({key: {"val_ppl": val, "lr": lr}}), flush=True)
        out[key] = []
        for s in args.seeds:
            r = {"seed": s, **task.evaluate(adapt(graph, scheme, x, y, lr, s), xt, yt, zs)}
            out[key].append(r)
            print(json.dumps({key: r}), flush=True)
    for key in ("last", "job"):
        for m in ("top1", "top3", "perplexity"):
            v = np.array([r[m] for r in out[key]])
            print(f"{key:>5} {m:>10}: {v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
