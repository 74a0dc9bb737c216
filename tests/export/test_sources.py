"""The runtime closure of an exported library: only the files that define what the model calls."""

from __future__ import annotations

from pathlib import Path

from tinytrain.export.sources import _definitions, runtime_closure


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
