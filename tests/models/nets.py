"""Small float PyTorch networks for the importer tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class TinyMobileNetV2(nn.Module):
    """MobileNetV2-style: stem, inverted residual blocks (expand 1 and 4, residuals), 1x1 head conv,
    adaptive average pool, flatten, dropout, linear (torchvision's structure, scaled down)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        cfg = [(1, 8, 1), (4, 12, 2), (4, 12, 1), (4, 16, 2), (4, 16, 1)]  # expand, cout, stride
        layers: list[nn.Module] = [conv_bn(3, 8, 3, 2)]
        cin = 8
        for t, c, s in cfg:
            layers.append(InvertedResidual(cin, c, s, t))
            cin = c
        layers.append(conv_bn(cin, 48, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(48, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class PlainCNN(nn.Module):
    """conv-bn-relu stack, spatial mean, a two-layer MLP head."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.b1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.b2 = nn.BatchNorm2d(32)
        self.c3 = nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False)
        self.b3 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.b1(self.c1(x)))
        x = torch.relu(self.b2(self.c2(x)))
        x = self.b3(self.c3(x)).clamp(0, 6)
        x = x.mean((2, 3))
        return self.fc2(F.relu(self.fc1(x)))


class PoolCNN(nn.Module):
    """Plain CNN with nn.AvgPool2d over the whole map and x.view(x.size(0), -1)."""

    def __init__(self, num_classes: int = 4, res: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU()
        )
        self.pool = nn.AvgPool2d(res // 2)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.body(x))
        return self.fc(x.view(x.size(0), -1))


class WithGelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


class WithTanh(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
        self.head = Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x))


class Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(x).mean((2, 3)))


def calibrate_bn(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set BatchNorm running statistics from data (cumulative average), as a trained net would have."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), 64):
            model(x[i : i + 64])
    return model.eval()


class SensorNet1D(nn.Module):
    """A 1-D sensor net (6 channels x 100 steps): Conv1d + BatchNorm1d + ReLU, MaxPool1d, a strided Conv1d +
    ReLU6, a windowed AvgPool1d, a depthwise Conv1d + Hardswish, AdaptiveAvgPool1d(1), Flatten, Dropout,
    Linear."""

    def __init__(self, num_classes: int = 4, cin: int = 6) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(cin, 16, 5, padding=2, bias=False),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 24, 3, stride=2, padding=1),
            nn.BatchNorm1d(24),
            nn.ReLU6(),
            nn.AvgPool1d(2),
            nn.Conv1d(24, 24, 5, padding="same", groups=24),
            nn.BatchNorm1d(24),
            nn.Hardswish(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(24, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Branchy2D(nn.Module):
    """A 2-D net with non-square kernels, strides and paddings, MaxPool2d, torch.cat of two branches, a
    residual add, a windowed AvgPool2d, and Flatten + Linear on the (non-square) map."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 12, (3, 5), stride=(1, 2), padding=(1, 2), bias=False), nn.BatchNorm2d(12), nn.ReLU()
        )
        self.pool = nn.MaxPool2d(2)
        self.a = nn.Sequential(nn.Conv2d(12, 8, (1, 3), padding=(0, 1)), nn.BatchNorm2d(8), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(12, 8, (3, 1), padding=(1, 0)), nn.BatchNorm2d(8), nn.ReLU())
        self.mix = nn.Sequential(nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16))
        self.avg = nn.AvgPool2d((2, 2))
        self.fc = nn.Linear(16 * 4 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(x))  # 16x16 -> 16x8 -> 8x4
        y = torch.cat([self.a(x), self.b(x)], dim=1)
        y = F.relu(self.mix(y) + y)
        return self.fc(torch.flatten(self.avg(y), 1))  # 4x2 map flattened


class SqueezeExcite(nn.Module):
    """Conv + Hardswish, a squeeze-excite gate (mean, Linear, ReLU, Linear, Sigmoid, Mul), SiLU, mean,
    Linear."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(16, 8)
        self.fc2 = nn.Linear(8, 16)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.act = nn.SiLU()
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.c1(x))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        x = x * s.view(s.size(0), -1, 1, 1)
        x = self.act(self.c2(x))
        return self.fc(x.mean((2, 3)))
