"""embedding (gather) op: forward and sparse table update, numpy vs torch autograd, host-native C vs numpy."""

from __future__ import annotations

import ctypes as C
import shutil

import numpy as np
import pytest
import torch

from tinytrain.kernels.rng import Xorshift32
from tinytrain.ops import embedding as E
from tinytrain.ops.conv2d.update import conv2d_weight_update

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host C compiler")
RULES = {"nearest": 0, "stochastic": 1, "shadow": 2}


def _case(seed: int, rows: int = 11, d: int = 70, t: int = 13) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, rows // 2, (1, t, 1)).astype(np.int8)  # half the vocabulary never appears
    ids[0, 0, 0] = rows + 5  # out of range: clamped to the last row
    w = rng.integers(-127, 128, (rows, d)).astype(np.int8)
    g = (rng.standard_normal((1, t, d)) * 0.3).astype(np.float32)
    q = np.full(rows, 1 / 0.02, np.float32)
    return ids, w, g, q


def test_forward_and_gradient_vs_torch() -> None:
    ids, w, g, _ = _case(0)
    scale = 0.02
    idx = np.clip(ids.reshape(-1).astype(np.int64), 0, w.shape[0] - 1)
    table = torch.tensor(w.astype(np.float64) * scale, requires_grad=True)
    out = torch.nn.functional.embedding(torch.from_numpy(idx), table)
    y = E.embedding_s8(ids, w)
    assert y.dtype == np.int8 and y.shape == (1, 13, 70)
    np.testing.assert_array_equal(y[0].astype(np.float64) * scale, out.detach().numpy())
    (out * torch.from_numpy(g[0].astype(np.float64))).sum().backward()
    s = E.embedding_wgrad_f32(g, ids, w.shape[0])
    ref = table.grad.numpy()
    assert np.abs(s[:, 0, 0] - ref).max() <= 1e-5 * np.abs(ref).max()
    assert not s[w.shape[0] // 2 : -1].any()  # rows of tokens not in the window: zero


@pytest.mark.parametrize("rule", ["nearest", "stochastic", "shadow"])
def test_sparse_update_touches_only_seen_rows(rule: str) -> None:
    ids, w, g, q = _case(1)
    seen = np.unique(np.clip(ids.reshape(-1), 0, w.shape[0] - 1))
    w_sparse, w_dense = w.copy(), w.copy()
    sh_sparse, sh_dense = w.astype(np.float32), w.astype(np.float32)
    r1, r2 = Xorshift32(7), Xorshift32(7)
    E.embedding_wgrad_update(g, ids, w_sparse, q, -0.5, rule, r1, sh_sparse if rule == "shadow" else None)
    # the same update through the dense sums, row by row over the seen rows only
    s = E.embedding_wgrad_f32(g, ids, w.shape[0])
    for v in seen:
        sh = sh_dense[v : v + 1] if rule == "shadow" else None
        conv2d_weight_update(s[v : v + 1], w_dense[v : v + 1], w.shape[1], q[v : v + 1], -0.5, rule, r2, sh)
    np.testing.assert_array_equal(w_sparse, w_dense)
    assert r1.state == r2.state
    unseen = np.setdiff1d(np.arange(w.shape[0]), seen)
    np.testing.assert_array_equal(w_sparse[unseen], w[unseen])
    assert (w_sparse[seen] != w[seen]).any()
    if rule == "stochastic":  # D draws per seen row, none for the others
        r3 = Xorshift32(7)
        r3.draw(len(seen) * w.shape[1])
        assert r1.state == r3.state


def _lib() -> C.CDLL:
    from tinytrain import native

    lib = native.load("portable").lib
    P, I, F = C.c_void_p, C.c_int, C.c_float
    lib.tt_embedding_s8.argtypes = [P, I, P, I, I, P]
    lib.tt_embedding_wgrad_update.argtypes = [P, P, I, P, I, I, P, F, I, P, P]
    lib.tt_embedding_wgrad_f32.argtypes = [P, P, I, I, I, P]
    return lib


def _p(a: np.ndarray) -> C.c_void_p:
    return C.c_void_p(a.ctypes.data)


@needs_gcc
@pytest.mark.parametrize("rule", ["nearest", "stochastic", "shadow"])
@pytest.mark.parametrize("d", [8, 70, 130])
def test_native_matches_numpy(rule: str, d: int) -> None:
    lib = _lib()
    ids, w, g, q = _case(2 + d, d=d)
    rows, t = w.shape[0], ids.size
    y = np.zeros((1, t, d), np.int8)
    lib.tt_embedding_s8(_p(ids), t, _p(w), rows, d, _p(y))
    np.testing.assert_array_equal(y, E.embedding_s8(ids, w))
    s = np.full((rows, 1, 1, d), 9.0, np.float32)
    lib.tt_embedding_wgrad_f32(_p(g), _p(ids), t, rows, d, _p(s))
    np.testing.assert_array_equal(s, E.embedding_wgrad_f32(g, ids, rows))
    w_c, w_np = w.copy(), w.copy()
    sh_c, sh_np = w.astype(np.float32), w.astype(np.float32)
    state = np.array([0x2545F491], np.uint32)
    rng = Xorshift32(0x2545F491)
    use_sh = rule == "shadow"
    lib.tt_embedding_wgrad_update(
        _p(g), _p(ids), t, _p(w_c), rows, d, _p(q), -0.7, RULES[rule], _p(state), _p(sh_c) if use_sh else None
    )
    E.embedding_wgrad_update(g, ids, w_np, q, float(np.float32(-0.7)), rule, rng, sh_np if use_sh else None)
    np.testing.assert_array_equal(w_c, w_np)
    np.testing.assert_array_equal(sh_c, sh_np)
    assert int(state[0]) == rng.state


def test_shape_rule_names_the_layer() -> None:
    from tinytrain import TinytrainError
    from tinytrain.ir import Graph, Op, Tensor

    def graph(table: np.ndarray, ids: tuple[int, int, int] = (1, 1, 5)) -> Graph:
        t = {"ids": Tensor("ids", ids, 1.0, 0), "e": Tensor("e", (table.shape[-1], 1, ids[2]), 0.1, 0)}
        op = Op(
            "emb", "embedding", ["ids"], "e", {"scale": 0.1}, {"weight": table, "bias": np.zeros(0, np.int32)}
        )
        return Graph("g", t, [op], "ids", "e")

    graph(np.zeros((10, 4), np.int8)).validate()
    with pytest.raises(TinytrainError, match="layer 'emb'.*V <= 127"):
        graph(np.zeros((200, 4), np.int8)).validate()
    with pytest.raises(TinytrainError, match="layer 'emb'.*window of token ids"):
        graph(np.zeros((10, 4), np.int8), (2, 1, 5)).validate()
