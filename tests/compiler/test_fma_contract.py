"""The multiply-add contract is a property of the compiled program (CompileOptions.fma): the board's by
default (fused on m7, two roundings on m4: the M4's VFMA takes 3 cycles, VMUL + VADD 2), recorded in
meta["fma"], followed by the host reference (Trainer) and by the generated firmware (tt_config.h ->
tt_math.h), and a build flag that disagrees with the model is a compile error."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinytrain import FIRMWARE_DIR, TinytrainError
from tinytrain.cli import main
from tinytrain.codegen.generate import generate_model
from tinytrain.compiler import CompileOptions
from tinytrain.job.prepare import assemble, compile_program, load_graph
from tinytrain.kernels.fma import fma_enabled, fma_mode
from tinytrain.reference.training import Trainer


@pytest.fixture(scope="module")
def graph():  # type: ignore[no-untyped-def]
    return load_graph("mcunet-5fps", 48, 3, 0, fresh_head=True)


@pytest.mark.parametrize(
    ("board", "fma", "want"),
    [("m7", None, True), ("m4", None, False), (None, None, True), ("m4", True, True), ("m7", False, False)],
)
def test_the_board_decides_unless_the_options_do(graph, board, fma, want) -> None:  # type: ignore[no-untyped-def]
    program = compile_program(graph, "paper:99kb", CompileOptions(fma=fma), board=board)
    assert program.meta["fma"] is want
    assert Trainer(program).fma is want
    gen = generate_model(program, *_offsets(program))
    assert f"#define TT_MODEL_FMA {int(want)}" in gen.files["tt_config.h"]


def _offsets(program):  # type: ignore[no-untyped-def]
    from tinytrain.schedule import plan_memory

    plan = plan_memory(program, "m7")
    return plan.offsets, plan.arena


def test_the_trainer_runs_the_programs_contract_whatever_the_process_default(graph) -> None:  # type: ignore[no-untyped-def]
    """A two-rounding program trains the same under either process default, and differs from the fused one
    in the last bits of its float sums (so the contract really reaches the kernels)."""
    two = compile_program(graph, "paper:99kb", CompileOptions(update_rule="nearest", fma=False))
    fused = compile_program(graph, "paper:99kb", CompileOptions(update_rule="nearest", fma=True))
    x = np.random.default_rng(0).integers(-128, 128, (48, 48, 3), dtype=np.int8)

    def grads(program, default):  # type: ignore[no-untyped-def]
        t, seen = Trainer(program), {}
        t.trace = lambda step, bufs: seen.update(  # noqa: ARG005
            {b: bufs[b].copy() for b in step.outputs.values() if bufs[b].dtype == np.float32}
        )
        with fma_mode(default):
            t.train_step(x, 1, 0.01)
            assert fma_enabled() is default  # the trainer restores the process's contract
        return seen

    a, b = grads(two, True), grads(two, False)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    c = grads(fused, False)
    assert any(not np.array_equal(a[k], c[k]) for k in a if k in c)


def test_bad_fma_option_is_refused() -> None:
    with pytest.raises(TinytrainError, match="fma must be true, false or unset"):
        CompileOptions(fma="yes")  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")
def test_a_build_flag_that_disagrees_with_the_model_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "tt_config.h").write_text("#define TT_MODEL_FMA 0\n")
    src = tmp_path / "t.c"
    src.write_text('#include "tt_math.h"\nint contract(void) { return TT_FMA; }\n')
    base = ["gcc", "-std=c99", "-fsyntax-only", f"-I{tmp_path}", f"-I{FIRMWARE_DIR / 'runtime'}", str(src)]
    assert subprocess.run(base, capture_output=True).returncode == 0
    bad = subprocess.run([*base, "-DTT_FMA=1"], capture_output=True, text=True)
    assert bad.returncode != 0 and "disagrees with the model's multiply-add contract" in bad.stderr
    # the model's value wins over the runtime's default
    probe = tmp_path / "p.c"
    probe.write_text('#include "tt_math.h"\n_Static_assert(TT_FMA == 0, "model contract");\n')
    ok = subprocess.run(
        ["gcc", "-std=c11", "-fsyntax-only", f"-I{tmp_path}", f"-I{FIRMWARE_DIR / 'runtime'}", str(probe)]
    )
    assert ok.returncode == 0


def test_compile_prints_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["compile", "--model", "mcunet-5fps", "--resolution", "48", "--scheme", "last", "--board", "m4"]
    assert main(args) == 0
    assert "backward multiply-add: two roundings (VMUL + VADD) (the board's)" in capsys.readouterr().out
    assert main([*args, "--fma"]) == 0
    assert "backward multiply-add: fused (one rounding, VFMA) (--fma)" in capsys.readouterr().out


def test_assemble_passes_the_board(graph) -> None:  # type: ignore[no-untyped-def]
    assert assemble(graph, "last", CompileOptions(), board="m4").program.meta["fma"] is False
