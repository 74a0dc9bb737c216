"""The paper's published figures (Lin et al., "On-Device Training Under 256KB Memory", NeurIPS 2022):
STM32F746 (Cortex-M7, 216 MHz, 320 KB SRAM), 128x128, batch 1, sparse update + operator reordering.
These are **reference rows, not measurements**: the memory is the training arena only (the trainable
weight copies, stack and buffers came on top) and KB is read as 1024 bytes."""

from __future__ import annotations

PAPER_CLOCK_HZ = 216_000_000
PAPER_RESOLUTION = 128
PAPER_BOARD = "STM32F746 (published)"
PAPER_SOURCE = "Lin et al. 2022, sparse update + reordering, arena only"

#: model -> (peak memory KB, latency ms per training image); cycles = ms x 216 MHz.
PUBLISHED: dict[str, tuple[float, float]] = {
    "mcunet-5fps": (173.0, 546.0),
    "mbv2-w0.35": (141.0, 373.0),
    "proxyless-w0.3": (135.0, 443.0),
}

#: The ~100 KB schemes the paper's headline results use (paper.json names them by budget).
HEADLINE_SCHEME: dict[str, str] = {
    "mcunet-5fps": "paper:99kb",
    "mbv2-w0.35": "paper:99kb",
    "proxyless-w0.3": "paper:98kb",
}


def published_bytes(model: str) -> int:
    return int(PUBLISHED[model][0] * 1024)


def published_cycles(model: str) -> int:
    return int(round(PUBLISHED[model][1] * 1e-3 * PAPER_CLOCK_HZ))
