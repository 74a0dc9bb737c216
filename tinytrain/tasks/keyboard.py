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

from pathlib import Path
from typing import Any

import numpy as np

from tinytrain.data.text import VOCAB, encode, read_user_text, user_split, user_text

NAME = "keyboard"
MODEL_DIR = Path(__file__).resolve().parent.parent / "zoo" / "keyboard-char"
CONTEXT = 13  # 3 VALID convs of kernel 5 reduce 13 positions to the last one
ADAPT = 0.7
STRIDE = 3  # the device trains on every 3rd target position of the adapt part (one window per step)

#: job defaults of `tinytrain emulate --defaults --task keyboard` (tinytrain.job.JobConfig fields)
DEFAULTS: dict[str, Any] = {
    "model": str(MODEL_DIR),
    "scheme": str(MODEL_DIR / "scheme.json"),
    "resolution": 1,
    "board": "m4",
    "epochs": 1,
    "lr": 0.03,
    "baseline": "last",
    "update_rule": "stochastic",
}


def windows(ids: np.ndarray, targets: range) -> tuple[np.ndarray, np.ndarray]:
    """x int8 [N, 1, CONTEXT, 1] (HWC; the CONTEXT ids before each target position; before the text's start: the
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
        "class_names": np.array(VOCAB),
    }


def write_dataset(out: Path, text_file: str | None = None) -> Path:
    """The npz the job reads (`--dataset`), written to a temp name and renamed."""
    text = read_user_text(text_file) if text_file else None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
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
