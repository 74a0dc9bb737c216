"""Which runtime sources an exported library needs: the `firmware/runtime/**/*.c` files that define a function
or variable the generated model (or another needed file) refers to, and every header they include.

The closure is by file, over `tt_*` identifiers: a `.c` file is needed when it defines an identifier some
needed file uses. Op kernels live one per file in `runtime/ops/` (tinytrain/ops/registry.py), and the
firmware build compiles them through runtime `.c` files that `#include` them. Two kinds:
- a *pure umbrella* defines nothing itself (`runtime/tt_ops.c`, the imported ops' files): the export skips it
  and takes the op files themselves, each its own translation unit (`ops/tt_qconv.c` -> `src/ops/tt_qconv.c`;
  their `#include "ops/tt_ops.h"` resolves with `-Isrc`), so only the ops the model uses are copied;
- a *unit* defines code of its own besides the op files it includes (`tt_forward.c` with `ops/tt_conv2d.c`,
  ...: one translation unit, as the firmware compiles it): it is taken whole, its included `.c` files come
  along as included files (copied, not compiled on their own).
Unused functions inside a needed file are dropped by the linker (`-ffunction-sections`, `--gc-sections`), so
only the used kernels reach the binary.
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


def _included_c(text: str) -> list[str]:
    return [n for n in _INCLUDE.findall(_strip_comments(text)) if n.endswith(".c")]


def is_umbrella(text: str) -> bool:
    """A pure umbrella: a `.c` file that includes other `.c` files and defines nothing itself."""
    return bool(_included_c(text)) and not _definitions(_strip_comments(text))


def _unit_text(p: Path, runtime_dir: Path, seen: set[Path] | None = None) -> str:
    """The text of `p` with the `.c` files it includes (recursively): what its translation unit defines."""
    seen = seen if seen is not None else {p}
    text = p.read_text()
    parts = [text]
    for name in _included_c(text):
        q = _resolve(name, p, runtime_dir)
        if q is not None and q not in seen:
            seen.add(q)
            parts.append(_unit_text(q, runtime_dir, seen))
    return "\n".join(parts)


def _resolve(name: str, including: Path | None, runtime_dir: Path) -> Path | None:
    """Where `#include "name"` lands: beside the including file first, then the runtime root (`-I`)."""
    for base in ((including.parent,) if including else ()) + (runtime_dir,):
        p = base / name
        if p.is_file():
            return p.resolve()
    return None


def runtime_closure(generated: dict[str, str], runtime_dir: Path = RUNTIME_DIR) -> list[Path]:
    """The runtime files the `generated` sources (file name -> text) need: the translation units (.c) then the
    included files (headers, and the .c files a unit includes), each sorted by path (absolute;
    `relative_to(runtime_dir)` is their place in the library). Compile the first `.c` files of the list:
    `translation_units`."""
    runtime_dir = runtime_dir.resolve()
    c_files = sorted(p.resolve() for p in runtime_dir.rglob("*.c"))
    if not c_files:
        raise TinytrainError(f"no runtime sources in {runtime_dir}")
    raw = {p: p.read_text() for p in c_files}
    units = [p for p in c_files if _included_c(raw[p]) and not is_umbrella(raw[p])]
    # files a unit compiles inside itself are not translation units of their own
    inside = {
        q for u in units for q in (_resolve(n, u, runtime_dir) for n in _included_c(raw[u])) if q is not None
    }
    c_files = [p for p in c_files if not is_umbrella(raw[p]) and p not in inside]
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
    todo: list[tuple[Path | None, str]] = [(None, t) for t in generated.values()]
    todo += [(p, raw[p]) for p in needed]
    while todo:
        including, text = todo.pop()
        for name in _INCLUDE.findall(_strip_comments(text)):
            h = _resolve(name, including, runtime_dir)
            if h is not None and (h.suffix == ".h" or h in inside) and h not in headers:
                headers.append(h)
                todo.append((h, h.read_text()))
    return sorted(needed) + sorted(headers)


def library_path(p: Path, runtime_dir: Path = RUNTIME_DIR) -> str:
    """The place of a runtime file in the exported library: `src/` + its path under the runtime root."""
    return "src/" + p.relative_to(runtime_dir.resolve()).as_posix()


def translation_units(files: list[Path], runtime_dir: Path = RUNTIME_DIR) -> list[Path]:
    """Of `runtime_closure`'s files, those compiled on their own (not included by a unit)."""
    runtime_dir = runtime_dir.resolve()
    raw = {p: p.read_text() for p in files if p.suffix == ".c"}
    inside = {q for u, t in raw.items() for q in (_resolve(n, u, runtime_dir) for n in _included_c(t)) if q}
    return [p for p in files if p.suffix == ".c" and p not in inside]
