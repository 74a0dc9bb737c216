"""SGD momentum and mini-batch gradient accumulation (CompileOptions.momentum / accumulate; docs/numerics.md,
"Momentum and mini-batches"): the kernels against PyTorch and their C twins, the compiled program, the host
reference's exact equivalences, the memory levers in buffered mode, the memory plan and the CLI."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from tinytrain import TinytrainError
from tinytrain.cli import main
from tinytrain.compiler import CompileOptions, compile_training, updated_elements
from tinytrain.kernels import momentum_f32, zero_f32
from tinytrain.program import OPTIMIZER_ROLES, WHEN_BATCH_END, Storage
from tinytrain.reference.training import Trainer
from tinytrain.schedule import plan_memory
from tinytrain.schedule.lifetimes import align_up

from .helpers import TWO_BLOCKS, headed_graph, two_class_problem

F32 = np.float32
RULES = ["nearest", "stochastic", "shadow"]
#: trains pw1 of block 0 (a fused-block-backward candidate without momentum), the biases of the last five
#: convs (block 1's stride-1 depthwise bias: the in-place depthwise-gradient lever), a partial pw2
SCHEME = {
    "bias_last_n": 5,
    "weights": [
        {"layer": "blocks.0.pointwise1", "input_channel_ratio": 0.5},
        {"layer": "blocks.1.pointwise2", "input_channel_ratio": 0.5},
        {"layer": "blocks.1.depthwise", "input_channel_ratio": 0.5},
    ],
}
#: only block 0's pw1 weights: block 1 (pw1 -> dw -> pw2, nothing updated) passes the gradient through
SCHEME_PASS = {"bias_last_n": 0, "weights": [{"layer": "blocks.0.pointwise1", "input_channel_ratio": 0.5}]}


def bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.view(np.uint32) if a.dtype == F32 else a


def _graph(seed: int = 3):
    return headed_graph(seed, blocks=TWO_BLOCKS)


def _problem(n: int, res: int = 12, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The training half of `two_class_problem` (two noisy prototypes)."""
    return two_class_problem(seed, n, res)[:2]


def _train(graph, scheme, options, xs, ys, lr=0.05, seed=7):
    tr = Trainer(compile_training(graph, scheme, options), seed=seed)
    losses = [tr.train_step(x, int(y), lr) for x, y in zip(xs, ys, strict=True)]
    return losses, {k: v.copy() for k, v in tr.parameters().items()}, tr


# ---- kernels ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("mu", [0.9, 0.5, 0.99, 0.1])
def test_momentum_f32_is_torch_sgd_momentum_buffer(mu, foreach):
    """`momentum_f32` from a zero buffer = torch.optim.SGD's momentum buffer (dampening 0, no Nesterov), bit
    for bit, over several steps of gradients spanning 11 decades."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(int(mu * 100))
    n = 4099
    p = torch.nn.Parameter(torch.zeros(n))
    opt = torch.optim.SGD([p], lr=0.0, momentum=mu, foreach=foreach)
    m = np.zeros(n, F32)
    for _ in range(5):
        g = (rng.standard_normal(n) * 10.0 ** rng.integers(-8, 3, n)).astype(F32)
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        m = momentum_f32(m, g, mu)
        np.testing.assert_array_equal(bits(opt.state[p]["momentum_buffer"].numpy()), bits(m))


def test_momentum_f32_rounds_twice_and_zero_f32():
    m = np.array([1.0, -3.0, 1e30, 2.0**-140], F32)
    g = np.array([0.1, 0.25, -1e30, 0.0], F32)
    mu = 0.9
    expect = np.array([F32(F32(F32(mu) * x) + y) for x, y in zip(m, g, strict=True)], F32)
    np.testing.assert_array_equal(bits(momentum_f32(m, g, mu)), bits(expect))
    assert momentum_f32(m, g, mu) is not m and m[0] == F32(1.0)  # inputs untouched
    z = zero_f32(m.reshape(2, 2))
    assert z.dtype == F32 and z.shape == (2, 2) and not np.signbit(z).any() and not z.any()
    with pytest.raises(ValueError):
        momentum_f32(m, g[:3], mu)


@pytest.mark.parametrize("variant", ["portable", "dsp"])
def test_optim_kernels_c_vs_numpy(variant):
    """tt_momentum_f32 / tt_zero_f32 (firmware/runtime/tt_optim.c, host-native build) = the numpy kernels."""
    import shutil

    if shutil.which("gcc") is None:
        pytest.skip("host gcc not installed")
    from tinytrain import native

    nk = native.load(variant)
    rng = np.random.default_rng(5)
    special = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-38, 3.4e38, -3.4e38, np.inf, -np.inf, 1.0, -1.0], F32)
    for mu in (0.9, 0.5, 0.999, 0.0, 1e-8):
        for n in (1, 7, 1000):
            m = (rng.standard_normal(n) * 10.0 ** rng.integers(-40, 38, n)).astype(F32)
            g = (rng.standard_normal(n) * 10.0 ** rng.integers(-40, 38, n)).astype(F32)
            m[: min(n, len(special))] = special[:n]
            g[: min(n, len(special))] = special[::-1][:n]
            with np.errstate(all="ignore"):
                ref = momentum_f32(m, g, mu)
            got = nk.momentum_f32(m, g, mu)
            np.testing.assert_array_equal(bits(got), bits(ref))
            np.testing.assert_array_equal(bits(nk.zero_f32(m)), bits(zero_f32(m)))


# ---- options ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mu", [-0.1, 1.0, 1.5, math.nan, math.inf, True, "0.9", 0.99999999, None])
def test_bad_momentum(mu):
    with pytest.raises(TinytrainError, match="momentum"):
        CompileOptions(momentum=mu)


@pytest.mark.parametrize("n", [0, -2, 2.5, True, "4", None])
def test_bad_accumulate(n):
    with pytest.raises(TinytrainError, match="accumulate"):
        CompileOptions(accumulate=n)


def test_defaults_change_nothing():
    """momentum 0 and accumulate 1 are plain SGD: the same program as the defaults, no optimizer state, no
    gated steps (the golden C of tests/codegen is this program's)."""
    g = _graph()
    a = compile_training(g, SCHEME, CompileOptions())
    b = compile_training(g, SCHEME, CompileOptions(momentum=0.0, accumulate=1))
    assert not CompileOptions().buffered and a.meta["optimizer"] == {
        "momentum": 0.0,
        "accumulate": 1,
        "buffered": False,
    }
    key = [(s.kernel, s.inputs, s.outputs, s.attrs, s.layer, s.phase, s.when) for s in a.steps]
    assert key == [(s.kernel, s.inputs, s.outputs, s.attrs, s.layer, s.phase, s.when) for s in b.steps]
    assert a.buffers.keys() == b.buffers.keys()
    assert not any(s.when for s in a.steps)
    assert not any(buf.role in OPTIMIZER_ROLES for buf in a.buffers.values())
    assert "$neg_lr_batch" not in str([s.attrs for s in a.steps])
    xs, ys = _problem(6)
    la, pa, _ = _train(g, SCHEME, CompileOptions(update_rule="stochastic"), xs, ys)
    lb, pb, _ = _train(g, SCHEME, CompileOptions(update_rule="stochastic", momentum=0, accumulate=1), xs, ys)
    assert la == lb and all(np.array_equal(pa[k], pb[k]) for k in pa)


# ---- the compiled program -----------------------------------------------------------------------------


@pytest.mark.parametrize("mu,n", [(0.9, 1), (0.0, 3), (0.9, 4)])
@pytest.mark.parametrize("reorder", [True, False])
def test_program_structure(mu, n, reorder):
    g = _graph()
    p = compile_training(g, SCHEME, CompileOptions(momentum=mu, accumulate=n, reorder=reorder))
    opt = [b for b in p.buffers.values() if b.role in OPTIMIZER_ROLES]
    upd = [b for b in p.buffers.values() if b.storage == Storage.SRAM and b.role in ("weight", "bias")]
    kinds = (mu > 0) + (n > 1)
    assert len(opt) == kinds * len(upd)
    for b in opt:
        assert b.storage == Storage.SRAM and b.dtype == "f32" and not np.asarray(b.data).any()
        prefix = {"momentum": "mom", "grad_acc": "gacc"}[b.role]
        assert b.name in (f"{prefix}:{b.layer}", f"{prefix}b:{b.layer}")
    assert sum(b.nbytes for b in opt) == 4 * kinds * updated_elements(p)
    # no fused update kernel: every update reads the optimizer state
    kern = Counter(s.kernel for s in p.steps)
    assert (
        not kern["conv2d_wgrad_update"] and not kern["dwconv2d_wgrad_update"] and not kern["bias_grad_update"]
    )
    assert kern["momentum_f32"] == (len(upd) if mu else 0) and kern["zero_f32"] == (len(upd) if n > 1 else 0)
    updates = [s for s in p.steps if s.kernel.endswith("_update")]
    assert len(updates) == len(upd)
    for s in updates:
        src = p.buffers[s.inputs["s"]]
        assert src.role == ("momentum" if mu else "grad_acc")
        assert s.attrs["neg_lr"] == ("$neg_lr_batch" if n > 1 else "$neg_lr")
    gated = [i for i, s in enumerate(p.steps) if s.when == WHEN_BATCH_END]
    if n == 1:
        assert not gated
    else:  # one run at the very end, all "update": momentum, update, clear, tensor by tensor
        assert gated == list(range(len(p.steps) - len(gated), len(p.steps)))
        assert {p.steps[i].phase for i in gated} == {"update"}
        assert len(gated) == len(upd) * (2 + (mu > 0))
        assert {p.steps[i].kernel for i in gated} >= {"zero_f32"}
        assert not any(
            s.kernel == "add_f32" and p.buffers[s.outputs["y"]].role == "grad_acc"
            for s in (p.steps[i] for i in gated)
        )
    if reorder:  # the per-sample optimizer step follows its gradient at once: the arena sums die there
        for t, s in enumerate(p.steps):
            if s.kernel in ("conv2d_wgrad_f32", "dwconv2d_wgrad_f32", "bias_grad_f32"):
                # (the in-place depthwise gradient lever runs its layer's bias gradient just before it)
                if p.steps[t + 1].kernel == "dwconv2d_bwd_input_inplace_f32":
                    assert s.kernel == "bias_grad_f32" and p.steps[t + 1].layer == s.layer
                    t += 1
                nxt = p.steps[t + 1]
                assert s.outputs["s"] in nxt.inputs.values(), (s.layer, nxt.kernel)
                assert nxt.kernel in ("add_f32", "momentum_f32") and not nxt.when
                assert not any(s.outputs["s"] in u.inputs.values() for u in p.steps[t + 2 :])
    assert p.meta["optimizer"] == {"momentum": float(F32(mu)), "accumulate": n, "buffered": True}


# ---- the host reference: exact equivalences -----------------------------------------------------------


@pytest.mark.parametrize("mu", [0.0, 0.9])
@pytest.mark.parametrize("rule", RULES)
def test_accumulate_2_same_sample_twice_is_one_step(rule, mu):
    """A mini-batch of the same sample twice: the sums double exactly and the step halves exactly
    (neg_lr_batch = -lr * 0.5), so every update (and draw) equals one step on that sample; with momentum the
    buffer is exactly twice the one-sample buffer. The first loss of each pair is the one-sample loss."""
    g = _graph()
    xs, ys = _problem(8)
    one = Trainer(compile_training(g, SCHEME, CompileOptions(update_rule=rule, momentum=mu)), seed=11)
    two = Trainer(
        compile_training(g, SCHEME, CompileOptions(update_rule=rule, momentum=mu, accumulate=2)), seed=11
    )
    for x, y in zip(xs, ys, strict=True):
        la = one.train_step(x, int(y), 0.05)
        lb = two.train_step(x, int(y), 0.05)
        two.train_step(x, int(y), 0.05)
        assert la == lb
        pa, pb = one.parameters(), two.parameters()
        for k, v in pa.items():
            if k.startswith("mom"):
                np.testing.assert_array_equal(bits(pb[k]), bits(v * F32(2)), err_msg=k)
            else:
                np.testing.assert_array_equal(bits(pb[k]), bits(v), err_msg=k)
        assert all(not pb[k].any() for k in pb if k.startswith("gacc"))  # cleared after the update
    assert one.rng.state == two.rng.state


def test_updates_only_at_batch_ends_and_trailing_batch_unapplied():
    g = _graph()
    xs, ys = _problem(7)
    tr = Trainer(compile_training(g, SCHEME, CompileOptions(accumulate=3)))
    weights = lambda: {k: v.copy() for k, v in tr.parameters().items() if k[:2] in ("w:", "b:")}  # noqa: E731
    before = weights()
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        tr.train_step(x, int(y), 0.2)
        now = weights()
        changed = any(not np.array_equal(now[k], before[k]) for k in now)
        acc = {k: v for k, v in tr.parameters().items() if k.startswith("gacc")}
        if (i + 1) % 3:
            assert not changed and any(v.any() for v in acc.values()) and tr.batch_count == (i + 1) % 3
        else:
            assert changed and not any(v.any() for v in acc.values()) and tr.batch_count == 0
        before = now
    # the 7th sample is accumulated but never applied; save/load keep the counter and the accumulators
    assert tr.batch_count == 1


def test_save_load_keeps_optimizer_state(tmp_path):
    g = _graph()
    xs, ys = _problem(5)
    opts = CompileOptions(momentum=0.9, accumulate=2, update_rule="stochastic")
    a = Trainer(compile_training(g, SCHEME, opts))
    for x, y in zip(xs[:3], ys[:3], strict=True):
        a.train_step(x, int(y), 0.05)
    a.save(tmp_path / "p.npz")
    b = Trainer(compile_training(g, SCHEME, opts))
    b.load(tmp_path / "p.npz")
    assert b.batch_count == a.batch_count == 1
    for x, y in zip(xs[3:], ys[3:], strict=True):
        assert a.train_step(x, int(y), 0.05) == b.train_step(x, int(y), 0.05)
    assert all(np.array_equal(v, b.parameters()[k]) for k, v in a.parameters().items())


LEVERS = (
    dict(fused_block_backward=False),
    dict(inplace_dw_grad=False),
    dict(reorder=False),
    dict(inplace=False),
    dict(slice_channels=False),
    dict(
        reorder=False, inplace=False, slice_channels=False, fused_block_backward=False, inplace_dw_grad=False
    ),
)


@pytest.mark.parametrize("scheme", [SCHEME, SCHEME_PASS], ids=["scheme", "pass-through"])
@pytest.mark.parametrize(
    "mu,n,rule",
    [
        (0.9, 1, "nearest"),
        (0.9, 1, "stochastic"),
        (0.9, 1, "shadow"),
        (0.9, 2, "stochastic"),
        (0.0, 3, "shadow"),
    ],
)
def test_levers_are_bit_identical_in_buffered_mode(mu, n, rule, scheme):
    """Every compiler lever on vs off: the same losses, parameters and optimizer state, bit for bit. The
    in-place depthwise gradient still applies (its bias gradient moves before it); the fused block backward
    applies to blocks without updates and leaves the others unfused."""
    g = _graph()
    xs, ys = _problem(8)
    base_opts = CompileOptions(update_rule=rule, momentum=mu, accumulate=n)
    base_losses, base, tr = _train(g, scheme, base_opts, xs, ys)
    kern = Counter(s.kernel for s in tr.program.steps)
    plain = Counter(s.kernel for s in compile_training(g, scheme, CompileOptions(update_rule=rule)).steps)
    if scheme is SCHEME:
        assert kern["dwconv2d_bwd_input_inplace_f32"] >= 1 and plain["ir_block_bwd_f32"] == 1
        assert kern["ir_block_bwd_f32"] == 0  # block 0's pw1 is updated: not fused in buffered mode
    else:
        # block 1 only passes the gradient: fused in both; block 0 (pw1 updated) only without momentum
        assert kern["ir_block_bwd_f32"] == 1 and plain["ir_block_bwd_f32"] == 2
    for opts in LEVERS:
        losses, params, _ = _train(
            g, scheme, CompileOptions(update_rule=rule, momentum=mu, accumulate=n, **opts), xs, ys
        )
        assert losses == base_losses, opts
        assert params.keys() == base.keys()
        for k in base:
            np.testing.assert_array_equal(bits(params[k]), bits(base[k]), err_msg=f"{k} with {opts}")


@pytest.mark.parametrize("rule", RULES)
def test_momentum_and_minibatches_train(rule):
    """Momentum 0.9 with mini-batches of 4 learns the two-class problem (all three rounding rules)."""
    g = headed_graph(0, blocks=[{"expand": 2, "k": 3, "stride": 1, "out": 8}])
    xs, ys = _problem(48, seed=0)
    tr = Trainer(compile_training(g, "full", CompileOptions(update_rule=rule, momentum=0.9, accumulate=4)))
    epochs = [
        np.mean([tr.train_step(x, int(y), 0.01) for x, y in zip(xs, ys, strict=True)]) for _ in range(3)
    ]
    assert epochs[-1] < 0.5 * epochs[0], epochs


# ---- memory plan and CLI ------------------------------------------------------------------------------


@pytest.mark.parametrize("mu,n", [(0.9, 1), (0.0, 4), (0.9, 4)])
def test_plan_counts_optimizer_state(mu, n):
    g = _graph()
    plain = compile_training(g, SCHEME, CompileOptions())
    prog = compile_training(g, SCHEME, CompileOptions(momentum=mu, accumulate=n))
    kinds = (mu > 0) + (n > 1)
    opt = [b for b in prog.buffers.values() if b.role in OPTIMIZER_ROLES]
    assert (
        sum(b.nbytes for b in opt)
        == 4 * kinds * updated_elements(prog)
        == 4 * kinds * updated_elements(plain)
    )
    plan, base = plan_memory(prog, "m7"), plan_memory(plain, "m7")
    assert plan.breakdown["optimizer_state"] == sum(align_up(b.nbytes) for b in opt)
    assert base.breakdown["optimizer_state"] == 0
    assert plan.total == sum(plan.breakdown.values())
    for cat in ("trainable_weights", "trainable_biases", "shadow_copies", "input", "stack", "runtime_state"):
        assert plan.breakdown[cat] == base.breakdown[cat], cat
    assert "optimizer_state" in plan.report()


def test_cli_compile_momentum_accumulate(tmp_path, capsys):
    from tests.compiler.helpers import tiny_graph

    model = tmp_path / "tiny"
    tiny_graph().save(model)
    common = ["compile", "--model", str(model), "--scheme", "full", "--board", "m4"]
    assert main([*common, "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert (
        main([*common, "--momentum", "0.9", "--accumulate", "4", "--json", "--out", str(tmp_path / "o")]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert plain["sram"]["optimizer_state"] == 0 and doc["sram"]["optimizer_state"] > 0
    assert doc["sram"]["total"] == sum(v for k, v in doc["sram"].items() if k != "total")
    assert doc["sram"]["total"] - plain["sram"]["total"] >= doc["sram"]["optimizer_state"] - 64
    assert doc["options"]["momentum"] == 0.9 and doc["options"]["accumulate"] == 4
    prog = json.loads((tmp_path / "o" / "program.json").read_text())
    assert prog["meta"]["optimizer"]["accumulate"] == 4
    gated = [s for s in prog["steps"] if s.get("when") == "batch_end"]
    assert gated and {s["phase"] for s in gated} == {"update"} and prog["steps"][-1] == gated[-1]
    assert main([*common, "--momentum", "0.5", "--accumulate", "2"]) == 0
    out = capsys.readouterr().out
    assert "optimizer: SGD momentum 0.5, mini-batches of 2" in out and "optimizer_state" in out


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--momentum", "1"], "in [0, 1)"),
        (["--momentum", "-0.5"], "in [0, 1)"),
        (["--momentum", "nan"], "momentum"),
        (["--accumulate", "0"], "accumulate"),
    ],
)
def test_cli_bad_optimizer_exits_2(args, msg, capsys):
    assert main(["compile", "--model", "mcunet-5fps", "--scheme", "last", *args]) == 2
    assert msg in capsys.readouterr().err
    emulate = [
        "emulate",
        "--model",
        "mcunet-5fps",
        "--scheme",
        "last",
        "--dataset",
        "faces",
        "--resolution",
        "48",
        "--board",
        "m7",
        "--steps",
        "2",
        "--no-save",
        *args,
    ]
    assert main(emulate) == 2
    assert msg in capsys.readouterr().err
