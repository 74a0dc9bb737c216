"""Which runtime sources an exported library needs: the `firmware/runtime/*.c` files that define a function
or variable the generated model (or another needed file) refers to, and every header they include.

The closure is by file, over `tt_*` identifiers: a `.c` file is needed when it defines an identifier some
needed file uses. A runtime `.c` file may compile others of one op each (`#include "ops/tt_conv2d.c"`, one
translation unit: firmware/runtime/tt_forward.c, tt_ops.c): it defines what they define, and they come along
as included files (paths relative to firmware/runtime, e.g. `ops/tt_conv2d.c`). Unused functions inside a
needed file are dropped by the linker (`-ffunction-sections`, `--gc-sections`), so only the used kernels reach
the binary.
"""

from __future__ import annotations

import re
from pathlib import Path

from tinytrain import FIRMWARE_DIR, TinytrainError

RUNTIME_DIR = FIRMWARE_DIR / "runtime"

_IDENT = re.compile(r"\btt_\w+\b")
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# a definition starting a line: `type name(` with a body (function), `type name =` / `[` / `;` (data)
_DEF = re.compile(r"^(?!static\b)[A-Za-z_][\w \t\*]*?\b(tt_\w+)\s*(\(|=|\[|;)", re.M)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _definitions(text: str) -> set[str]:
    """Identifiers `text` defines with external linkage (functions with a body, initialised/plain globals)."""
    out = set()
    for m in _DEF.finditer(text):
        name, tail = m.group(1), m.group(2)
        if tail == "(":
            # a prototype ends with `);`; a definition opens its body before any `;`
            body = text.find("{", m.end())
            semi = text.find(";", m.end())
            if body < 0 or (0 <= semi < body):
                continue
        elif "extern" in text[m.start() : m.end()]:
            continue
        out.add(name)
    return out


def _unit_text(p: Path, runtime_dir: Path, seen: set[Path] | None = None) -> str:
    """The text of `p` with the `.c` files it includes (recursively): what its translation unit defines."""
    seen = seen if seen is not None else {p}
    text = p.read_text()
    parts = [text]
    for name in _INCLUDE.findall(_strip_comments(text)):
        q = runtime_dir / name
        if name.endswith(".c") and q.is_file() and q not in seen:
            seen.add(q)
            parts.append(_unit_text(q, runtime_dir, seen))
    return "\n".join(parts)


def runtime_closure(generated: dict[str, str], runtime_dir: Path = RUNTIME_DIR) -> list[Path]:
    """The runtime .c and .h files the `generated` sources (file name -> text) need, sorted by name."""
    c_files = sorted(runtime_dir.glob("*.c"))
    if not c_files:
        raise TinytrainError(f"no runtime sources in {runtime_dir}")
    texts = {p: _strip_comments(_unit_text(p, runtime_dir)) for p in c_files}
    defs = {p: _definitions(t) for p, t in texts.items()}
    needed: list[Path] = []
    frontier = [_strip_comments(t) for t in generated.values()]
    while frontier:
        used = set().union(*(_IDENT.findall(t) for t in frontier))
        frontier = []
        for p in c_files:
            if p not in needed and defs[p] & used:
                needed.append(p)
                frontier.append(texts[p])
    headers: list[Path] = []
    todo = [*generated.values(), *(p.read_text() for p in needed)]
    while todo:
        for name in _INCLUDE.findall(todo.pop()):
            h = runtime_dir / name
            if h.is_file() and h not in headers:
                headers.append(h)
                todo.append(h.read_text())
    return sorted(needed) + sorted(headers)
