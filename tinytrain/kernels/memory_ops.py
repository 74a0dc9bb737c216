"""Data-movement kernels of patch-based execution (CompileOptions(patch=True), docs/memory.md); C twins in
firmware/runtime/tt_memory_ops.c. The conv2d memory levers (split weights, in-place depthwise, the fused block
backward) live with their op in tinytrain/ops/conv2d/memory.py."""

from __future__ import annotations

import numpy as np

# patch-based execution of the first stage (CompileOptions(patch=True)) ------------------------------------
# The stage's ops run tile by tile on small HWC tile buffers with the ordinary kernels and pad = 0: a tile
# of tensor X covers the window [row0, row0 + rows) x [col0, col0 + cols) of X, which may reach outside the
# image; the positions outside hold the consuming conv's `x_zero`, so the unpadded conv over the tile equals
# the padded conv over the whole tensor (bit for bit: integer kernels). Three data-movement kernels:


def _window_mask(rows: int, cols: int, row0: int, col0: int, h: int, w: int) -> np.ndarray:
    r = np.arange(int(row0), int(row0) + int(rows))
    c = np.arange(int(col0), int(col0) + int(cols))
    return ((r >= 0) & (r < int(h)))[:, None] & ((c >= 0) & (c < int(w)))[None, :]


def tile_load_s8(x: np.ndarray, row0: int, col0: int, rows: int, cols: int, fill: int) -> np.ndarray:
    """Window [row0, row0+rows) x [col0, col0+cols) of x s8 [H, W, C] -> t s8 [rows, cols, C]; positions
    outside the image (row0/col0 may be negative, the window may pass H/W) hold `fill`."""
    x = np.asarray(x)
    h, w, c = x.shape
    t = np.full((int(rows), int(cols), c), int(fill), np.int8)
    r_lo, r_hi = max(0, int(row0)), min(h, int(row0) + int(rows))
    c_lo, c_hi = max(0, int(col0)), min(w, int(col0) + int(cols))
    if r_lo < r_hi and c_lo < c_hi:
        t[r_lo - row0 : r_hi - row0, c_lo - col0 : c_hi - col0] = x[r_lo:r_hi, c_lo:c_hi]
    return t


def tile_fill_s8(t: np.ndarray, row0: int, col0: int, h: int, w: int, fill: int) -> np.ndarray:
    """A tile t s8 [rows, cols, C] whose top-left element is position (row0, col0) of an H x W tensor:
    every position outside the tensor set to `fill` (C: in place). Needed between two convs of a tile: a
    conv of the padding is not the next conv's zero point."""
    t = np.array(t, np.int8, copy=True)
    inside = _window_mask(t.shape[0], t.shape[1], row0, col0, h, w)
    t[~inside] = np.int8(fill)
    return t


def tile_store_s8(t: np.ndarray, y: np.ndarray, row0: int, col0: int) -> np.ndarray:
    """y s8 [H, W, C] with the tile t s8 [rows, cols, C] written at (row0, col0) (inside y; C: in place on y,
    which only ever writes the tile's positions)."""
    y = np.array(y, np.int8, copy=True)
    rows, cols = t.shape[0], t.shape[1]
    y[int(row0) : int(row0) + rows, int(col0) : int(col0) + cols] = t
    return y


def tile_store_first_s8(t: np.ndarray, row0: int, col0: int, h: int, w: int) -> np.ndarray:
    """The first tile store into y s8 [h, w, C] (y is not read: its other positions are written by the
    later stores; the reference fills them with 0). Same C function as `tile_store_s8`."""
    y = np.zeros((int(h), int(w), np.asarray(t).shape[2]), np.int8)
    return tile_store_s8(t, y, row0, col0)
