"""Example for `tinytrain import` (docs/models.md, "PyTorch import"): a small 2-D PyTorch net with non-square
kernels and strides, max pool, torch.cat and a residual add, trained for two epochs on 640 digits at 16x16.

    tinytrain import docs/examples/torch_digits.py:make --out digitsnet --input-scale 0.00784313725490196

`make()` returns (model, calibration_batch): the model in eval mode and 256 float training inputs in the
model's units (`pixel / 127.5 - 1.004`: tinytrain's int8 `x = pixel - 128` times 1/127.5).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinytrain.data import load_dataset


class Net(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 12, (3, 5), stride=(1, 2), padding=(1, 2), bias=False), nn.BatchNorm2d(12), nn.ReLU()
        )
        self.pool = nn.MaxPool2d(2)
        self.a = nn.Sequential(nn.Conv2d(12, 8, (1, 3), padding=(0, 1)), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(12, 8, (3, 1), padding=(1, 0)), nn.ReLU())
        self.mix = nn.Sequential(nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16))
        self.fc = nn.Linear(16 * 4 * 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(x))  # 16x16 -> 16x8 -> 8x4
        y = torch.cat([self.a(x), self.b(x)], dim=1)
        y = F.relu(self.mix(y) + y)
        return self.fc(torch.flatten(F.avg_pool2d(y, 2), 1))  # the 4x2 map, flattened


def make() -> tuple[nn.Module, torch.Tensor]:
    d = load_dataset("digits", 16, seed=0)
    x = torch.from_numpy(d.train_x.transpose(0, 3, 1, 2).astype(np.float32) / 127.5)
    y = torch.from_numpy(d.train_y)
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(2):
        for i in range(0, 640, 16):
            loss = F.cross_entropy(net(x[i : i + 16]), y[i : i + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval(), x[:256]
