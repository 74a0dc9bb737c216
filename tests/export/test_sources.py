"""The runtime closure of an exported library: only the files that define what the model calls."""

from __future__ import annotations

from pathlib import Path

from tinytrain.export.sources import _definitions, library_path, runtime_closure


def test_definitions_skip_prototypes_statics_and_externs() -> None:
    text = (
        "void tt_a(int x);\n"
        "void tt_b(int x) {\n}\n"
        "static void tt_c(void) {}\n"
        "extern uint32_t tt_d;\n"
        "uint32_t tt_e = 1;\n"
        "float tt_f(const float *g,\n    int n) { return 0; }\n"
    )
    assert _definitions(text) == {"tt_b", "tt_e", "tt_f"}


def test_closure_follows_calls_and_includes(tmp_path: Path) -> None:
    (tmp_path / "one.c").write_text('#include "h1.h"\nvoid tt_one(void) { tt_two(); }\n')
    (tmp_path / "two.c").write_text('#include "h2.h"\nvoid tt_two(void) {}\n')
    (tmp_path / "three.c").write_text("void tt_three(void) {}\n")
    (tmp_path / "h1.h").write_text('#include "h3.h"\n')
    (tmp_path / "h2.h").write_text("\n")
    (tmp_path / "h3.h").write_text("\n")
    got = runtime_closure({"model.c": "void f(void) { tt_one(); }\n"}, tmp_path)
    assert [p.name for p in got] == ["one.c", "two.c", "h1.h", "h2.h", "h3.h"]


def test_closure_keeps_subdirectories_and_skips_umbrellas(tmp_path: Path) -> None:
    """An umbrella `.c` (it #includes `.c` files) is not taken; the op files it includes are, one by one, and
    an include resolves beside the including file or from the runtime root (`-I`)."""
    ops = tmp_path / "ops"
    ops.mkdir()
    (tmp_path / "all_ops.c").write_text('#include "ops/a.c"\n#include "ops/b.c"\n')
    (ops / "ops.h").write_text('#include "math.h"\n')
    (tmp_path / "math.h").write_text("\n")
    (ops / "a.c").write_text('#include "ops/ops.h"\nvoid tt_a(void) { tt_c(); }\n')
    (ops / "b.c").write_text('#include "ops/ops.h"\nvoid tt_b(void) {}\n')
    (tmp_path / "c.c").write_text("void tt_c(void) {}\n")
    got = runtime_closure({"model.c": '#include "ops/ops.h"\nvoid f(void) { tt_a(); }\n'}, tmp_path)
    assert [library_path(p, tmp_path) for p in got] == [
        "src/c.c",
        "src/ops/a.c",
        "src/math.h",
        "src/ops/ops.h",
    ]


def test_a_unit_with_code_of_its_own_is_taken_whole_with_the_op_files_it_includes(tmp_path: Path) -> None:
    """`tt_forward.c` defines code and `#include`s `ops/tt_conv2d.c` (one translation unit): the unit is
    compiled, the op file it includes is copied beside it but not compiled on its own; a file the unit
    includes is not a candidate of its own either (no second definition of the same kernel)."""
    from tinytrain.export.sources import translation_units

    ops = tmp_path / "ops"
    ops.mkdir()
    (tmp_path / "k.h").write_text("\n")
    (ops / "conv.c").write_text(
        '#include "k.h"\nstatic int helper(void) { return 1; }\nvoid tt_conv(void) {}\n'
    )
    (ops / "add.c").write_text(
        '#include "k.h"\nvoid tt_add(void) { (void)helper(); }\n'
    )  # uses conv.c's static
    (tmp_path / "forward.c").write_text(
        '#include "k.h"\n#include "ops/conv.c"\n#include "ops/add.c"\nvoid tt_slice(void) {}\n'
    )
    (tmp_path / "other.c").write_text("void tt_other(void) {}\n")
    got = runtime_closure({"model.c": "void f(void) { tt_add(); }\n"}, tmp_path)
    assert [library_path(p, tmp_path) for p in got] == [
        "src/forward.c",
        "src/k.h",
        "src/ops/add.c",
        "src/ops/conv.c",
    ]
    assert [library_path(p, tmp_path) for p in translation_units(got, tmp_path)] == ["src/forward.c"]


def test_the_real_runtime_splits_into_units_that_define_each_kernel_once() -> None:
    """Against firmware/runtime: every kernel the headers declare is defined by exactly one translation unit
    of a closure that asks for all of them."""
    from tinytrain.export.sources import RUNTIME_DIR, _unit_text, translation_units
    from tinytrain.signatures import table

    names = sorted(n for n, sig in table().items() if not sig.inline)
    got = runtime_closure({"model.c": "void f(void) {" + "".join(f" {n};" for n in names) + " }\n"})
    units = translation_units(got)
    owners: dict[str, list[str]] = {}
    for u in units:
        for name in _definitions(_unit_text(u, RUNTIME_DIR.resolve())):
            owners.setdefault(name, []).append(u.name)
    assert all(len(v) == 1 for v in owners.values()), {k: v for k, v in owners.items() if len(v) > 1}
    missing = [n for n in names if n not in owners]
    assert not missing, missing
