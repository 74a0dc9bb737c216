"""One signature per kernel: the runtime headers are the table (tinytrain.signatures). These tests fail when
the header, the C definitions, the ctypes binding, the emitters or the scratch queries diverge from it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tinytrain import TinytrainError, native, signatures
from tinytrain.codegen.emitters import call
from tinytrain.export.sources import _definitions, _strip_comments, _unit_text
from tinytrain.ops import registry

TABLE = signatures.table()
LIBRARY = {n: s for n, s in TABLE.items() if not s.inline}


def test_table_reads_every_header() -> None:
    assert {s.header for s in TABLE.values()} == set(signatures.HEADERS)
    conv = TABLE["tt_conv2d_s8"]
    assert [p.name for p in conv.params][:5] == ["x", "h", "w", "ci", "wt"]
    assert conv.params[0].pointer and conv.params[0].const and conv.params[0].ctype == "int8_t"
    assert TABLE["tt_expf"].ret == "float" and not TABLE["tt_expf"].params[0].pointer
    assert TABLE["tt_ir_block_bwd_f32_scratch_bytes"].inline


def test_parse_rejects_a_double_declaration() -> None:
    text = "void tt_a(int n);\nvoid tt_a(int n);\n"
    with pytest.raises(TinytrainError, match="declared twice"):
        signatures.parse_header(text, "x.h")


def test_every_c_definition_is_declared_and_every_declaration_defined() -> None:
    """C side: the functions the runtime's translation units define (ops/*.c through their umbrellas) are the
    table's library functions, no more, no fewer."""
    defined: set[str] = set()
    for p in sorted(signatures.RUNTIME_DIR.glob("*.c")):
        text = _strip_comments(_unit_text(p, signatures.RUNTIME_DIR))
        defined |= {n for n in _definitions(text) if re.search(rf"\b{n}\s*\(", text)}
    assert defined == set(LIBRARY), (sorted(defined - set(LIBRARY)), sorted(set(LIBRARY) - defined))


def test_the_ctypes_binding_follows_the_table() -> None:
    lib = native.load("portable").lib
    protos = native.prototypes()
    assert set(protos) == set(LIBRARY)
    for name, sig in LIBRARY.items():
        fn = getattr(lib, name)  # the built library exports it
        assert len(fn.argtypes) == len(sig.params), name
    # a pointer parameter checks the element type
    with pytest.raises(Exception, match="int32"):
        y = np.zeros(4, np.int8)
        lib.tt_add_s8(np.zeros(4, np.int32), y, 4, 1.0, 1.0, 0, 0, 0, y)


def test_emitters_pass_the_declared_argument_count() -> None:
    assert call("mask_s8", "y", 8, "bits") == "tt_mask_s8(y, 8, bits);"
    with pytest.raises(TinytrainError, match=r"tt_kernels.h declares 3 \(y, n, bits\)"):
        call("mask_s8", "y", 8)
    with pytest.raises(TinytrainError, match="declared in no runtime header"):
        call("no_such_kernel", 1)


def test_generated_calls_match_the_table(tmp_path: object) -> None:
    """Every call in generated C (a program with the memory levers on and one with them off) has the header's
    argument count, including the struct-argument call of the fused block backward."""
    from tinytrain.codegen.generate import generate
    from tinytrain.compiler import CompileOptions, compile_training
    from tinytrain.models import load_model
    from tinytrain.models.head import replace_head
    from tinytrain.schedule import plan_memory

    graph = replace_head(load_model("mcunet-5fps", resolution=48), num_classes=3)
    seen: set[str] = set()
    for opts in (CompileOptions(fused_block_backward=True), CompileOptions(reorder=False, momentum=0.5)):
        program = compile_training(graph, "full", opts)
        model_c = generate(program, plan_memory(program)).files["model.c"]
        for m in re.finditer(r"\b(tt_\w+)\((.*?)\);", model_c):
            name, args = m.group(1), m.group(2)
            if name not in LIBRARY:
                continue
            depth, n = 0, 1
            for ch in args:
                depth += ch in "({"
                depth -= ch in ")}"
                n += ch == "," and depth == 0
            assert n == len(LIBRARY[name].params), (name, args)
            seen.add(name)
    assert {"tt_conv2d_s8", "tt_dwconv2d_s8", "tt_conv2d_wgrad_f32", "tt_bias_update"} <= seen


def test_scratch_queries_are_twins() -> None:
    """Every C scratch query `tt_<k>_scratch_bytes` has the Python query of its kernel, and back."""
    c_side = {n[3:-14] for n, s in TABLE.items() if s.inline and n.endswith("_scratch_bytes")}
    py_side = {
        name[: -len("_scratch_bytes")]
        for mod in registry.MODULES
        for name in dir(mod)
        if name.endswith("_scratch_bytes") and callable(getattr(mod, name))
    }
    assert c_side == py_side
    for k in c_side:
        assert registry.scratch_function(k) is not None
        assert f"tt_{k}" in LIBRARY
