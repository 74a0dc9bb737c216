"""The keyboard task: a next-character model (tinytrain/zoo/keyboard-char) adapts on the device to one user's
text (`--text FILE.txt`; default the CPython LICENSE.txt, docs/data.md).

Samples are windows of `CONTEXT` token ids (int8, the vocabulary has 97 < 128 characters), stored as
`[N, 1, CONTEXT, 1]` (HWC of the model's logical input `(1, 1, CONTEXT)`); the label is the next character's
id. The user's text is split in reading order (`tinytrain.data.text.user_split`): the device trains on
windows whose target lies in the first 70 % (every `STRIDE`-th position, one epoch: each character is seen
in 13 / STRIDE windows), and is evaluated on every character of the last 30 % predicted
from the `CONTEXT` characters before it (the first ones of the held-out part see the end of the adapt part:
the keyboard knows what was typed before). Metrics: top-1 / top-3 accuracy and perplexity (exp of the mean
cross-entropy of the softmax over the dequantized int8 logits), from the host reference, which is bit-exact
with the device (the job checks it: `matched_reference`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain.data.text import VOCAB, encode, read_user_text, user_split, user_text, user_text_path

NAME = "keyboard"
MODEL_DIR = Path(__file__).resolve().parent.parent / "zoo" / "keyboard-char"
CONTEXT = 13  # 3 VALID convs of kernel 5 reduce 13 positions to the last one
ADAPT = 0.7
STRIDE = 3  # the device trains on every 3rd target position of the adapt part (one window per step)

#: job defaults of `tinytrain emulate --defaults --task keyboard` (tinytrain.job.JobConfig fields, over the
#: main job's DEFAULTS); lr chosen on the adapt part's validation split (docs/evidence.md, "Keyboard")
DEFAULTS: dict[str, Any] = {
    "model": "keyboard-char",  # tinytrain/zoo/keyboard-char
    "scheme": str(MODEL_DIR / "scheme.json"),
    "classes": None,  # the model's 97 characters: no new head
    "head_lr_scale": 1.0,
    "resolution": None,  # the model's own input (1, 1, CONTEXT)
    "board": "m4",
    "epochs": 1,
    "lr": 0.001,
    "baseline": "last",
    "update_rule": "stochastic",
}


def windows(ids: np.ndarray, targets: range) -> tuple[np.ndarray, np.ndarray]:
    """x int8 [N, 1, CONTEXT, 1] (HWC; the CONTEXT ids before each target; before the text's start: the
    newline id), y int64 [N] (the target ids)."""
    pad = np.concatenate([np.zeros(CONTEXT, np.int64), np.asarray(ids, np.int64)])
    idx = np.array(list(targets), np.int64)
    x = np.stack([pad[t : t + CONTEXT] for t in idx]) if len(idx) else np.zeros((0, CONTEXT), np.int64)
    return x.astype(np.int8).reshape(-1, 1, CONTEXT, 1), np.asarray(ids, np.int64)[idx]


def user_dataset(text: str | None = None) -> dict[str, np.ndarray]:
    """The adapt / held-out windows of a user's text (None: the CPython LICENSE.txt), npz-ready (CHW)."""
    ids = encode(user_text() if text is None else text)
    adapt, _ = user_split(ids, ADAPT)
    n = len(adapt)
    x, y = windows(ids, range(1, n, STRIDE))
    xt, yt = windows(ids, range(n, len(ids)))
    chw = (0, 3, 1, 2)  # an int8 .npz holds samples in the model's source layout, CHW
    return {
        "x": x.transpose(chw),
        "y": y,
        "x_test": xt.transpose(chw),
        "y_test": yt,
        "class_names": np.array(["\\n" if c == "\n" else c for c in VOCAB]),  # printable names
    }


def write_dataset(out: Path, text_file: str | None = None) -> Path:
    """The npz the job reads (`--dataset`), written to a temp name and renamed."""
    text = read_user_text(text_file) if text_file else None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **user_dataset(text))
    tmp.replace(out)
    return out


def scores(logits: np.ndarray, z_scale: float, y: np.ndarray) -> dict[str, float]:
    """top1, top3 (fractions) and perplexity of int8 logits [N, V] (dequantized with `z_scale`)."""
    z = np.asarray(logits, np.float64) * z_scale
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    y = np.asarray(y, np.int64)
    ce = -logp[np.arange(len(y)), y].mean()
    top3 = np.argsort(-np.asarray(logits, np.int64), axis=1, kind="stable")[:, :3]
    return {
        "top1": float((top3[:, 0] == y).mean()),
        "top3": float((top3 == y[:, None]).any(axis=1).mean()),
        "perplexity": float(np.exp(ce)),
    }


def evaluate(trainer: Any, x: np.ndarray, y: np.ndarray, z_scale: float) -> dict[str, float]:
    """`scores` of a host reference `Trainer` (or anything with `infer(x_hwc) -> int8 logits`)."""
    logits = np.stack([np.asarray(trainer.infer(s)).reshape(-1) for s in x])
    return scores(logits, z_scale, y)


def _stream(cfg: Any, data: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The job's samples (HWC) and order, as tinytrain.job.prepare.make_job builds them."""
    from tinytrain.codegen.datafile import make_order

    hwc = (0, 2, 3, 1)
    xs, ys = data["x"].transpose(hwc), data["y"]
    xt, yt = data["x_test"].transpose(hwc), data["y_test"]
    if cfg.max_train:
        xs, ys = xs[: cfg.max_train], ys[: cfg.max_train]
    if cfg.max_test is not None:
        xt, yt = xt[: cfg.max_test], yt[: cfg.max_test]
    steps = cfg.steps if cfg.steps is not None else cfg.epochs * len(xs)
    return xs, ys, xt, yt, make_order(len(xs), steps, cfg.seed)


def run(cfg: Any, text_file: str | None = None, progress: Any = None, on_step: Any = None) -> Any:
    """`tinytrain emulate --task keyboard`: the job on the user's windows, then its record gains the held-out
    top-1 / top-3 / perplexity before (= no adaptation) and after (the device's trained parameters, scored
    by the bit-exact host inference) and of the classifier-only scheme on the same stream (host reference):
    `perplexity_before`, `perplexity_after`, `keyboard`."""
    import hashlib
    import time

    from tinytrain.job import emulate, paths
    from tinytrain.job.prepare import compile_program
    from tinytrain.job.record import save_record
    from tinytrain.models import load_model
    from tinytrain.reference.training import Trainer

    text = read_user_text(text_file) if text_file else user_text()
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    data_dir = paths.build_root() / "keyboard-data"
    npz = data_dir / f"{digest}.npz"
    write_dataset(npz, text_file)  # always rewritten (cheap): never a stale cut of an older version
    cfg.dataset = str(npz)
    report_dir, save = cfg.report_dir, cfg.save_record
    cfg.report_dir, cfg.save_record = None, False
    dump = cfg.dump_params or str(data_dir / f"{digest}-{cfg.key()}-params.npz")
    cfg.dump_params = dump
    result = emulate(cfg, progress=progress, on_step=on_step)
    rec = result.record
    t0 = time.perf_counter()
    data = dict(np.load(npz))
    xs, ys, xt, yt, order = _stream(cfg, data)
    graph = load_model(cfg.model, cfg.resolution)
    zs = graph.tensors[graph.output].scale
    before = Trainer(compile_program(graph, cfg.scheme, cfg.options, board=cfg.board), seed=cfg.rng_seed)
    scored: dict[str, Any] = {"none": evaluate(before, xt, yt, zs)}
    if Path(dump).exists():
        after = Trainer(compile_program(graph, cfg.scheme, cfg.options, board=cfg.board), seed=cfg.rng_seed)
        for name, arr in np.load(dump).items():
            if name in after.buffers:
                after.buffers[name] = np.array(arr).reshape(after.buffers[name].shape)
        scored["device"] = evaluate(after, xt, yt, zs)
    if cfg.baseline:
        base = Trainer(compile_program(graph, cfg.baseline, cfg.options, board=cfg.board), seed=cfg.rng_seed)
        lr_b = cfg.baseline_lr if getattr(cfg, "baseline_lr", None) else cfg.lr
        for i in order:
            base.train_step(xs[i], int(ys[i]), lr_b)
        scored[f"baseline_{cfg.baseline}"] = evaluate(base, xt, yt, zs)
    rec["perplexity_before"] = scored["none"]["perplexity"]
    rec["perplexity_after"] = scored.get("device", {}).get("perplexity")
    rec["keyboard"] = {
        "text": text_file or str(user_text_path()),
        "context": CONTEXT,
        "train_windows": len(xs),
        "test_characters": len(yt),
        "scored": scored,
        "note": "held-out top1/top3/perplexity; 'device' = the device's trained parameters (host inference, "
        "bit-exact); baseline on the host reference with the same stream",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if progress is not None:
        for k, v in scored.items():
            progress(
                f"keyboard {k}: top-1 {v['top1']:.1%} top-3 {v['top3']:.1%} perplexity {v['perplexity']:.2f}"
            )
    if report_dir:
        from tinytrain.report import write_run_report

        rec["report"] = str(Path(report_dir) / "report.html")
        write_run_report(rec, report_dir)
    if save:
        rec["record_file"] = str(save_record(rec, paths.runs_dir(), cfg.key()))
    return result
