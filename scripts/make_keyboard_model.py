"""Make tinytrain/zoo/keyboard-char: a tiny int8 next-character model (seeded, reproducible).

Float (PyTorch): `Embedding(97, 32) -> 3 x [causal Conv1d(k=5, 64 channels) + ReLU] -> 1x1 classifier (97)`,
60,801 parameters, the architecture of scripts/keyboard_baseline.py, pretrained the same way (Adam 3e-3,
1,500 steps of 32 random windows of 128 characters from the first 95 % of `pydoc_data.topics`).

Int8: the IR is built directly (the ONNX importer has no Gather, and an embedding has no QDQ route into it):
post-training quantization with TFLite Micro numerics (qconv: per-channel symmetric int8 weights, int32
biases, TFLM multiplier/shift; activations per tensor, ReLU outputs with zero point -128) and the `embedding`
op (table symmetric per tensor). Activation ranges are calibrated on 32 windows of 128 characters of the
general text (the 99.99th percentile of each ReLU output, the largest |logit|). The device model reads a
window of 13 ids (`tinytrain.tasks.keyboard.CONTEXT`) and computes only the last position: VALID convs
13 -> 9 -> 5 -> 1, exactly the causal net's output at the window's last character (no padding op needed).

Usage: `PYTHONPATH=. python scripts/make_keyboard_model.py [--seed 0] [--out tinytrain/zoo/keyboard-char]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinytrain.data.text import VOCAB, encode, general_text
from tinytrain.ir import Graph, Op, Tensor
from tinytrain.ops import tflm
from tinytrain.tasks import keyboard as task

EMBED, WIDTH, KERNEL, LAYERS = 32, 64, 5, 3
PRETRAIN_STEPS = 1500


class CausalConv(nn.Conv1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, (self.kernel_size[0] - 1, 0)))


class KeyboardNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(len(VOCAB), EMBED)
        self.convs = nn.ModuleList(
            [CausalConv(EMBED if i == 0 else WIDTH, WIDTH, KERNEL) for i in range(LAYERS)]
        )
        self.classifier = nn.Conv1d(WIDTH, len(VOCAB), 1)

    def features(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """[embedding, relu1, relu2, relu3, logits], each [N, C, L]."""
        h = self.embedding(ids).transpose(1, 2)
        outs = [h]
        for conv in self.convs:
            h = torch.relu(conv(h))
            outs.append(h)
        outs.append(self.classifier(h))
        return outs

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.features(ids)[-1]


def pretrain(ids: np.ndarray, seed: int) -> KeyboardNet:
    torch.manual_seed(seed)
    net = KeyboardNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    for _ in range(PRETRAIN_STEPS):
        starts = rng.integers(0, len(ids) - 129, 32)
        win = torch.from_numpy(np.stack([ids[s : s + 129] for s in starts]))
        opt.zero_grad()
        nn.functional.cross_entropy(net(win[:, :-1]), win[:, 1:]).backward()
        opt.step()
    return net


def _qconv(name: str, x: Tensor, y: Tensor, w: np.ndarray, b: np.ndarray, relu: bool) -> Op:
    """A qconv (TFLM numerics) from float OIHW weights and bias; y's scale/zero are set."""
    co = w.shape[0]
    ws = np.maximum(np.abs(w).reshape(co, -1).max(axis=1), 1e-8) / 127.0
    ws = ws.astype(np.float32)
    wq = np.clip(np.rint(w / ws[:, None, None, None]), -127, 127).astype(np.int8)
    bq = np.rint(b / (np.float64(x.scale) * ws.astype(np.float64))).astype(np.int32)
    mult, shift = tflm.conv_multipliers(x.scale, ws, y.scale)
    lo, hi = tflm.activation_range("RELU" if relu else "NONE", y.scale, y.zero)
    kh, kw = w.shape[2], w.shape[3]
    attrs = {
        "kernel_h": kh,
        "kernel_w": kw,
        "stride_h": 1,
        "stride_w": 1,
        "pad_top": 0,
        "pad_bottom": 0,
        "pad_left": 0,
        "pad_right": 0,
        "depthwise": False,
        "x_scale": float(x.scale),
        "x_zero": int(x.zero),
        "act_min": lo,
        "act_max": hi,
        "activation": "RELU" if relu else "NONE",
    }
    params = {"weight": wq, "bias": bq, "w_scales": ws, "multiplier": mult, "shift": shift}
    return Op(name, "qconv", [x.name], y.name, attrs, params)


def quantize(net: KeyboardNet, calib: np.ndarray) -> Graph:
    """The int8 IR of `net` for windows of task.CONTEXT ids; ranges from the calibration windows."""
    with torch.no_grad():
        feats = [f.numpy().astype(np.float64) for f in net.features(torch.from_numpy(calib))]
    c = task.CONTEXT
    table = net.embedding.weight.detach().numpy().astype(np.float64)
    es = float(np.float32(np.abs(table).max() / 127.0))
    tq = np.clip(np.rint(table / es), -127, 127).astype(np.int8)
    tensors = {"ids": Tensor("ids", (1, 1, c), 1.0, 0)}
    tensors["emb"] = Tensor("emb", (EMBED, 1, c), es, 0)
    ops = [
        Op(
            "embedding",
            "embedding",
            ["ids"],
            "emb",
            {"scale": es},
            {"weight": tq, "bias": np.zeros(0, np.int32)},
        )
    ]
    x = tensors["emb"]
    width = c
    for i, conv in enumerate(net.convs):
        width -= KERNEL - 1
        hi = float(np.percentile(feats[i + 1][:, :, KERNEL * LAYERS :], 99.99))
        y = Tensor(f"conv{i + 1}", (WIDTH, 1, width), float(np.float32(hi / 255.0)), -128)
        tensors[y.name] = y
        w = conv.weight.detach().numpy().astype(np.float64)[:, :, None, :]
        ops.append(_qconv(f"conv{i + 1}", x, y, w, conv.bias.detach().numpy().astype(np.float64), True))
        x = y
    zmax = float(np.abs(feats[-1]).max())
    logits = Tensor("logits", (len(VOCAB), 1, 1), float(np.float32(zmax / 127.0)), 0)
    tensors["logits"] = logits
    wc = net.classifier.weight.detach().numpy().astype(np.float64)[:, :, :, None]
    ops.append(
        _qconv("classifier", x, logits, wc, net.classifier.bias.detach().numpy().astype(np.float64), False)
    )
    g = Graph("keyboard-char", tensors, ops, "ids", "logits", {"numerics": "tflm"})
    g.validate()
    return g


def float_scores(net: KeyboardNet, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    with torch.no_grad():
        z = net(torch.from_numpy(x.reshape(len(x), -1).astype(np.int64)))[:, :, -1].numpy()
    ce = nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(y)).item()
    top3 = np.argsort(-z, axis=1)[:, :3]
    return {
        "top1": float((top3[:, 0] == y).mean()),
        "top3": float((top3 == y[:, None]).any(1).mean()),
        "perplexity": float(np.exp(ce)),
    }


def int8_scores(graph: Graph, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from tinytrain.compiler import compile_training
    from tinytrain.reference.training import Trainer

    trainer = Trainer(compile_training(graph, "last"))
    return task.evaluate(trainer, x, y, graph.tensors[graph.output].scale)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="tinytrain/zoo/keyboard-char")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    general = encode(general_text())
    cut = int(len(general) * 0.95)
    t0 = time.time()
    net = pretrain(general[:cut], args.seed)
    print(f"pretrained in {time.time() - t0:.0f} s", flush=True)
    rng = np.random.default_rng(args.seed + 1)
    starts = rng.integers(0, cut - 129, 4000 // 128 + 1)
    calib = np.stack([general[s : s + 128] for s in starts])
    graph = quantize(net, calib)
    heldout = general[cut:]
    xg, yg = task.windows(heldout, range(task.CONTEXT, min(len(heldout), task.CONTEXT + 4000)))
    data = task.user_dataset()
    summary = {
        "seed": args.seed,
        "params": int(sum(p.numel() for p in net.parameters())),
        "general_heldout_float": float_scores(net, xg, yg),
        "general_heldout_int8": int8_scores(graph, xg, yg),
        "user_heldout_float": float_scores(net, data["x_test"], data["y_test"]),
        "user_heldout_int8": int8_scores(graph, data["x_test"].transpose(0, 2, 3, 1), data["y_test"]),
    }
    print(json.dumps(summary, indent=1), flush=True)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    graph.save(tmp)
    (tmp / "make.json").write_text(json.dumps(summary, indent=1) + "\n")
    for keep in ("README.md", "scheme.json"):
        if (out / keep).exists():
            shutil.copy(out / keep, tmp / keep)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
