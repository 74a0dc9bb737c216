"""Host float baseline of the sensor personalization scenario (tinytrain.data.sensor): evidence groundwork.

A small float PyTorch Conv1d network is pretrained on the archive's 40 BasicMotions training recordings and
then evaluated on held-out recordings seen through a watch worn rotated (180 degrees about z), with:

- `none`: no adaptation;
- `classifier`: plain SGD (batch 1, no momentum: what the device runs) on the final linear layer only;
- `bias`: the same SGD on every bias and the classifier (TinyTL-like, no weight gradients);
- `last`: the same SGD on the last Conv1d and the classifier (a sparse scheme's shape);
- `full`: the same SGD on every parameter (the float upper bound).

Learning rates of the two fine-tunings are chosen per seed on the adapt set alone (train on 3 recordings per
class, validate on the other 2, grid `LR_GRID`), then the chosen rate retrains from the pretrained network on
all adapt recordings. The held-out test recordings are used for nothing but the final figure.

Usage: `PYTHONPATH=. python scripts/sensor_baseline.py [--seeds 0 1 2] [--json out.json] [--input-scale S]
[--net baseline|zoo]` (`--net zoo`: the float twin of the zoo's smaller `sensor-conv1d`)
(`--input-scale`: every split is first quantized to the int8 input a device would get, then dequantized).
Float figures on the host, not the int8 device.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from torch import nn

from tinytrain.data.sensor import SensorScenario, sensor_scenario

LR_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
METHODS = ("classifier", "bias", "last", "full")
PRETRAIN_EPOCHS = 150
ADAPT_EPOCHS = 20


class SensorNet(nn.Module):
    """Conv1d blocks + global average pooling + linear: input [N, 6, 100] -> logits [N, 4]."""

    def __init__(self, channels: int = 6, classes: int = 4, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(channels, width, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


#: the network `pretrain` builds (`--net`)
NET: type[nn.Module] = SensorNet


def _t(x: np.ndarray) -> torch.Tensor:
    """[N, L, C] float -> [N, C, L] float32 tensor (PyTorch's Conv1d layout)."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1), np.float32))


def accuracy(net: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    net.eval()
    with torch.no_grad():
        return float((net(_t(x)).argmax(1).numpy() == y).mean())


def pretrain(s: SensorScenario, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = NET()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, y = _t(s.pretrain[0]), torch.from_numpy(s.pretrain[1])
    g = torch.Generator().manual_seed(seed)
    for _ in range(PRETRAIN_EPOCHS):
        net.train()
        for idx in torch.randperm(len(y), generator=g).split(8):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return net


def trainable(net: SensorNet, what: str) -> list[nn.Parameter]:
    """The parameters a method updates (METHODS)."""
    last = len(net.features) - 4  # index of the last Conv1d in `features`
    keep = {
        "classifier": lambda n: n.startswith("classifier."),
        "bias": lambda n: n.startswith("classifier.") or n.endswith(".bias"),
        "last": lambda n: n.startswith("classifier.") or n.startswith(f"features.{last}."),
        "full": lambda n: True,
    }[what]
    return [p for n, p in net.named_parameters() if keep(n)]


def finetune(net: nn.Module, x: np.ndarray, y: np.ndarray, what: str, lr: float, seed: int) -> nn.Module:
    """Plain SGD, batch 1, `ADAPT_EPOCHS` epochs over (x, y), on the parameters of `what` (a copy)."""
    tuned = type(net)()
    tuned.load_state_dict(net.state_dict())
    params = trainable(tuned, what)
    opt = torch.optim.SGD(params, lr=lr)
    xt, yt = _t(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    for _ in range(ADAPT_EPOCHS):
        tuned.train()
        for i in torch.randperm(len(yt), generator=g):
            opt.zero_grad()
            nn.functional.cross_entropy(tuned(xt[i : i + 1]), yt[i : i + 1]).backward()
            opt.step()
    return tuned


def choose_lr(net: SensorNet, s: SensorScenario, what: str, seed: int) -> float:
    """Best rate of `LR_GRID` on the adapt set: 3 recordings per class to train, 2 to validate."""
    x, y = s.adapt
    rng = np.random.default_rng(1000 + seed)
    val = np.concatenate([rng.choice(np.flatnonzero(y == c), 2, replace=False) for c in np.unique(y)])
    tr = np.setdiff1d(np.arange(len(y)), val)
    scores = [accuracy(finetune(net, x[tr], y[tr], what, lr, seed), x[val], y[val]) for lr in LR_GRID]
    return LR_GRID[int(np.argmax(scores))]  # ties: the smallest rate


def as_device_input(s: SensorScenario, scale: float | None) -> SensorScenario:
    """Every split as an int8 model sees it: `quantize(x, scale, 0)`, dequantized (None: unchanged)."""
    if scale is None:
        return s
    for part in ("pretrain", "adapt", "test"):
        x8, y = s.int8(part, scale, 0)
        setattr(s, part, (x8[:, 0].astype(np.float64) * scale, y))
    return s


def run_seed(seed: int, input_scale: float | None = None) -> dict[str, object]:
    s = as_device_input(sensor_scenario(seed), input_scale)
    net = pretrain(s, seed)
    unrotated = as_device_input(sensor_scenario(seed, rotation=np.eye(3)), input_scale)
    xs = np.concatenate([unrotated.adapt[0], unrotated.test[0]])
    ys = np.concatenate([unrotated.adapt[1], unrotated.test[1]])
    out: dict[str, object] = {
        "seed": seed,
        "source_test": accuracy(net, xs, ys),
        "none": accuracy(net, *s.test),
    }
    for what in METHODS:
        lr = choose_lr(net, s, what, seed)
        out[what] = accuracy(finetune(net, *s.adapt, what, lr, seed), *s.test)
        out[f"lr_{what}"] = lr
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", help="write the per-seed figures here")
    ap.add_argument(
        "--net",
        choices=("baseline", "zoo"),
        default="baseline",
        help="baseline: SensorNet (width 16); zoo: the float twin of the zoo's sensor-conv1d "
        "(scripts/make_sensor_model.py's TinySensorNet)",
    )
    ap.add_argument(
        "--input-scale",
        type=float,
        help="train and test on the int8 inputs a device gets (quantize with this scale, zero 0, dequantize)",
    )
    args = ap.parse_args(argv)
    global NET
    if args.net == "zoo":
        from make_sensor_model import TinySensorNet

        NET = TinySensorNet
    torch.set_num_threads(1)
    t0 = time.time()
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, args.input_scale))
        print(json.dumps(rows[-1]), flush=True)
    for key in ("source_test", "none", *METHODS):
        v = np.array([r[key] for r in rows], np.float64) * 100
        print(f"{key:>12}: {v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.1f} % (n={len(v)})")
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
