"""SGD momentum and mini-batches on the device: the generated C (the gated update block, the optimizer state),
and whole training runs of the generated firmware (host-native build, QEMU m4/m7) against the host reference
`Trainer`: every loss, the final parameters and the optimizer state bit-equal."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.compiler.helpers import tiny_graph
from tinytrain.codegen import generate
from tinytrain.compiler import CompileOptions, compile_training
from tinytrain.emulate import EmulateConfig, emulate
from tinytrain.program import OPTIMIZER_ROLES, WHEN_BATCH_END
from tinytrain.schedule import plan_memory

HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None
needs_qemu = pytest.mark.skipif(not (HAVE_ARM and HAVE_QEMU), reason="QEMU / arm toolchain not installed")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")

#: partial channels, a depthwise weight update, the last biases, the classifier (as the golden scheme)
SCHEME = {
    "name": "optim",
    "bias_last_n": 2,
    "weights": [
        {"layer": "blocks.0.pointwise2", "input_channel_ratio": 0.5},
        {"layer": "blocks.0.depthwise", "input_channel_ratio": 0.5},
    ],
}


def _generated(mu: float, n: int, rule: str = "nearest", scheme: object = SCHEME):
    program = compile_training(
        tiny_graph(), scheme, CompileOptions(update_rule=rule, momentum=mu, accumulate=n)
    )
    plan = plan_memory(program, "m7")
    return program, plan, generate(program, plan)


@pytest.mark.parametrize("mu,n", [(0.9, 3), (0.0, 2), (0.9, 1)])
def test_generated_c_gates_the_update(mu, n):
    program, _, gen = _generated(mu, n, "stochastic")
    c = gen.files["model.c"]
    body = c[c.index("float tt_train_step(") : c.index("float tt_train_step_calls(")]
    body_calls = c[c.index("float tt_train_step_calls(") : c.index("void tt_infer(")]
    calls = re.findall(r"^\s+tt_(\w+)\(", body, re.M)
    assert calls == [s.kernel for s in program.steps]
    gated = [s for s in program.steps if s.when == WHEN_BATCH_END]
    assert bool(gated) == (n > 1)
    # flat phase brackets stay valid: begin/end alternate, the gated run opens and closes inside the braces
    marks = re.findall(r"TT_PHASE_(BEGIN|END)\(|(if \(batch_end\) \{)|^  (\})$", body, re.M)
    seq = [m[0] or ("IF" if m[1] else "}") for m in marks]
    flat = [x for x in seq if x in ("BEGIN", "END")]
    assert flat == ["BEGIN", "END"] * (len(flat) // 2)
    if n > 1:
        assert seq[-4:] == ["IF", "BEGIN", "END", "}"] and seq.count("IF") == 1
        inside = body[body.index("if (batch_end) {") :]
        assert re.findall(r"^\s+tt_(\w+)\(", inside, re.M) == [s.kernel for s in gated]
        assert "const int batch_end = tt_batch_next();" in body and "const int batch_end" in body_calls
        inv = str(np.float32(1 / n))
        assert f"const float neg_lr_batch = neg_lr * {inv}" in body
        assert f"#define TT_ACCUMULATE {n}" in c and "tt_batch_count = 0;" in c
        assert body_calls.count("if (batch_end) {") == 1
        assert "neg_lr_batch" in body.split("if (batch_end) {")[1]
    else:
        assert "batch_end" not in c and "neg_lr_batch" not in c
    # the per-call variant: the same calls in the same order
    assert re.findall(r"^\s+(tt_\w+\(.*)$", body_calls, re.M) == [
        x for x in re.findall(r"^\s+(tt_\w+\(.*)$", body, re.M) if not x.startswith("tt_phase")
    ]
    # optimizer state: static arrays cleared by tt_model_init, no flash image, dumped with the parameters
    init = c[c.index("void tt_model_init(void) {") : c.index("void tt_model_seed(")]
    for name, buf in program.buffers.items():
        if buf.role in OPTIMIZER_ROLES:
            cname = "tt_p_" + re.sub(r"[^0-9A-Za-z_]", "_", name)
            assert f"static float {cname}[" in c and f"{cname}_init" not in c
            assert f"tt_zero_f32({cname}, {int(np.prod(buf.shape))});" in init
            assert f'{{"{name}", {cname}, {buf.nbytes}u}}' in c
    assert {p.role for p in gen.params} >= ({"momentum"} if mu else set()) | (
        {"grad_acc"} if n > 1 else set()
    )
    assert gen.flash_bytes == sum(
        b.nbytes
        for b in program.buffers.values()
        if b.storage.value in ("flash", "sram")
        and b.role not in OPTIMIZER_ROLES
        and b.name
        in {x for s in program.steps + program.infer_steps for x in (*s.inputs.values(), *s.outputs.values())}
    )


def _config(
    tmp_path: Path,
    backend: str,
    board: str,
    rule: str,
    mu: float,
    n: int,
    steps: int,
    scheme: object = SCHEME,
) -> EmulateConfig:
    d = tmp_path / "tiny_ir"
    if not d.exists():
        tiny_graph().save(d)
    if not isinstance(scheme, str):
        (tmp_path / "scheme.json").write_text(json.dumps(scheme))
        scheme = str(tmp_path / "scheme.json")
    return EmulateConfig(
        model=str(d),
        scheme=scheme,
        dataset="faces",
        classes=2,
        resolution=8,
        board=board,
        steps=steps,
        lr=0.01,
        options=CompileOptions(update_rule=rule, momentum=mu, accumulate=n),
        backend=backend,
        max_test=8,
        build_dir=str(tmp_path / f"build-{board}-{backend}"),
        save_record=False,
    )


def _assert_matched(rec: dict, program_momentum: float, n: int) -> None:
    m = rec["match"]
    assert rec["matched_reference"], {k: v for k, v in m.items() if k != "reference_losses"}
    assert m["losses"] and m["params"] and m["predictions"]
    assert rec["losses"] == m["reference_losses"] and len(rec["losses"]) == rec["steps"]
    assert rec["momentum"] == program_momentum and rec["accumulate"] == n


@needs_gcc
@pytest.mark.parametrize(
    "mu,n,rule,scheme,steps",
    [
        (0.9, 2, "stochastic", SCHEME, 12),
        (0.9, 1, "shadow", SCHEME, 10),
        (0.5, 4, "nearest", "full", 12),
        (0.0, 3, "stochastic", "full", 7),  # a trailing partial batch: accumulated, never applied (warned)
    ],
)
def test_host_native_matches_reference(tmp_path, mu, n, rule, scheme, steps):
    said: list[str] = []
    rec = emulate(_config(tmp_path, "host", "m7", rule, mu, n, steps, scheme), progress=said.append).record
    _assert_matched(rec, mu, n)
    assert rec["unapplied_samples"] == steps % n
    assert any("not a multiple of the mini-batch" in s for s in said) == bool(steps % n)


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("board,rule", [("m4", "stochastic"), ("m7", "shadow")])
def test_qemu_momentum_minibatch_matches_reference(tmp_path, board, rule):
    """Momentum 0.9, mini-batches of 2, in QEMU: every loss, the trained parameters and the optimizer state
    (dumped with them) bit-equal to the host reference; exact per-phase counts with the gated update block."""
    rec = emulate(_config(tmp_path, "qemu", board, rule, 0.9, 2, 6)).record
    _assert_matched(rec, 0.9, 2)
    assert rec["instructions_source"] == "plugin" and rec["profile_phase_alignment"]["complete"]
    ips = rec["instructions_per_step"]
    assert ips["forward"] + ips["loss"] + ips["backward"] + ips["update"] == ips["total"]
    # steps 1, 3, 5 (0-based) end a batch and apply the update; step 0 ran as the per-call variant
    per = rec["instructions_per_step_all"]
    assert per[1] > per[2] and per[3] > per[2] and per[3] > per[4] and per[5] > per[4]
    sram, pred = rec["sram"], rec["sram_predicted"]["breakdown"]
    assert pred["optimizer_state"] > 0
    assert sram["breakdown"]["trainable"] == sum(
        pred[k] for k in ("trainable_weights", "trainable_biases", "shadow_copies", "optimizer_state")
    )
