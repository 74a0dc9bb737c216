"""Host float baseline of the keyboard job (tinytrain.data.text): next-character prediction (groundwork).

A float PyTorch model (embedding, causal Conv1d blocks, a linear classifier over the 97-character vocabulary)
is pretrained on general English (`pydoc_data.topics`, the first 95 %; the last 5 % is a general held-out
text), then adapted to one user's text (the CPython LICENSE.txt: legal English) with:

- `none`: no adaptation;
- `classifier`: plain SGD (batch 1 = one window of `WINDOW` characters, no momentum) on the classifier only;
- `embedding`: the same SGD on the embedding table and the classifier (on a device, an embedding update
  touches only the rows of the characters in the window);
- `last`: the same SGD on the last causal Conv1d and the classifier (a sparse scheme's shape);
- `full`: the same SGD on every parameter (the float upper bound).

The user text is split in reading order: adapt 0-70 %, held-out test 70-100 %. Learning rates are chosen
per seed on the adapt part alone (train on 0-60 %, validate on 60-70 %, grid `LR_GRID`, lowest validation
perplexity), then the chosen rate retrains from the pretrained model on the whole adapt part. Reported on
the held-out 30 %: top-1 / top-3 next-character accuracy and perplexity (exp of the mean cross-entropy, every
position, the model seeing the text before it). Float figures on the host, not the int8 device.

Usage: `PYTHONPATH=. python scripts/keyboard_baseline.py [--seeds 0 1 2] [--json out.json]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from torch import nn

from tinytrain.data.text import VOCAB, encode, general_text, user_split, user_text

LR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
METHODS = ("classifier", "embedding", "last", "full")
WINDOW = 64
PRETRAIN_STEPS = 1500
ADAPT_EPOCHS = 2


class CausalConv(nn.Conv1d):
    """Conv1d that sees only the current and earlier positions (left zero padding k - 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, (self.kernel_size[0] - 1, 0)))


class KeyboardNet(nn.Module):
    """Embedding [V, E] -> 3 causal Conv1d(k=5) + ReLU -> linear classifier (a 1x1 conv) over V characters."""

    def __init__(self, vocab: int = len(VOCAB), embed: int = 32, width: int = 64, kernel: int = 5) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.features = nn.Sequential(
            CausalConv(embed, width, kernel),
            nn.ReLU(),
            CausalConv(width, width, kernel),
            nn.ReLU(),
            CausalConv(width, width, kernel),
            nn.ReLU(),
        )
        self.classifier = nn.Conv1d(width, vocab, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [N, L] -> logits [N, V, L]; position t predicts character t + 1."""
        return self.classifier(self.features(self.embedding(ids).transpose(1, 2)))


def evaluate(net: nn.Module, ids: np.ndarray) -> dict[str, float]:
    """Every next character of `ids` predicted from the text before it (one causal pass)."""
    net.eval()
    x = torch.from_numpy(ids[None, :-1])
    y = torch.from_numpy(ids[1:])
    with torch.no_grad():
        logits = net(x)[0].T  # [L, V]
        ce = nn.functional.cross_entropy(logits, y).item()
        top3 = logits.topk(3, dim=1).indices
    return {
        "top1": float((top3[:, 0] == y).float().mean()),
        "top3": float((top3 == y[:, None]).any(1).float().mean()),
        "perplexity": float(np.exp(ce)) if ce < 700 else float("inf"),  # a diverged rate: inf, not a warning
    }


def _loss(net: nn.Module, win: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(net(win[:, :-1]), win[:, 1:])


def pretrain(ids: np.ndarray, seed: int) -> KeyboardNet:
    torch.manual_seed(seed)
    net = KeyboardNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    net.train()
    for _ in range(PRETRAIN_STEPS):
        starts = rng.integers(0, len(ids) - 129, 32)
        win = torch.from_numpy(np.stack([ids[s : s + 129] for s in starts]))
        opt.zero_grad()
        _loss(net, win).backward()
        opt.step()
    return net


def trainable(net: KeyboardNet, what: str) -> list[nn.Parameter]:
    """The parameters a method updates (METHODS)."""
    last = len(net.features) - 2  # index of the last causal Conv1d in `features`
    keep = {
        "classifier": lambda n: n.startswith("classifier."),
        "embedding": lambda n: n.startswith("classifier.") or n.startswith("embedding."),
        "last": lambda n: n.startswith("classifier.") or n.startswith(f"features.{last}."),
        "full": lambda n: True,
    }[what]
    return [p for n, p in net.named_parameters() if keep(n)]


def finetune(net: KeyboardNet, ids: np.ndarray, what: str, lr: float, seed: int) -> KeyboardNet:
    """Plain SGD, one window of `WINDOW` + 1 characters per step (stride WINDOW / 2, seeded order)."""
    tuned = KeyboardNet()
    tuned.load_state_dict(net.state_dict())
    params = trainable(tuned, what)
    opt = torch.optim.SGD(params, lr=lr)
    starts = np.arange(0, len(ids) - WINDOW - 1, WINDOW // 2)
    rng = np.random.default_rng(seed)
    tuned.train()
    for _ in range(ADAPT_EPOCHS):
        for s in rng.permutation(starts):
            opt.zero_grad()
            _loss(tuned, torch.from_numpy(ids[None, s : s + WINDOW + 1])).backward()
            opt.step()
    return tuned


def run_seed(seed: int, general: np.ndarray, user: np.ndarray) -> dict[str, object]:
    cut = int(len(general) * 0.95)
    t0 = time.time()
    net = pretrain(general[:cut], seed)
    adapt, test = user_split(user, 0.7)
    inner, val = user_split(adapt, 6 / 7)
    out: dict[str, object] = {"seed": seed, "pretrain_s": round(time.time() - t0, 1)}
    out["general_heldout"] = evaluate(net, general[cut:])
    out["none"] = evaluate(net, test)
    for what in METHODS:
        ppl = [evaluate(finetune(net, inner, what, lr, seed), val)["perplexity"] for lr in LR_GRID]
        lr = LR_GRID[int(np.nanargmin(np.where(np.isfinite(ppl), ppl, np.nan)))]
        tuned = finetune(net, adapt, what, lr, seed)
        out[what] = {
            **evaluate(tuned, test),
            "lr": lr,
            "general_heldout_ppl": evaluate(tuned, general[cut:])["perplexity"],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", help="write the per-seed figures here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    general, user = encode(general_text()), encode(user_text())
    rows = []
    for s in args.seeds:
        rows.append(run_seed(s, general, user))
        print(json.dumps(rows[-1]), flush=True)
    for key in ("none", *METHODS):
        for m in ("top1", "top3", "perplexity"):
            v = np.array([r[key][m] for r in rows]) * (100 if m != "perplexity" else 1)  # type: ignore[index]
            sd = v.std(ddof=1) if len(v) > 1 else 0.0
            print(f"{key:>10} {m:>10}: {v.mean():.2f} ± {sd:.2f} (n={len(v)})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
