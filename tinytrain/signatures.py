"""One signature per kernel: the C headers of the runtime are the table, parsed here.

`firmware/runtime/tt_kernels.h` (shared machinery and the zoo ops), `tt_memory_ops.h` (memory levers) and
`ops/tt_ops.h` (the imported models' ops) declare every kernel `tt_<name>` once. From the parsed declarations
follow the ctypes binding of the host-native build (`tinytrain.native`: restype and argtypes), the
emitters' argument count (`check_call`, run by `tinytrain.codegen.emitters.call` on every generated call) and
the scratch queries the C side offers (`tt_<kernel>_scratch_bytes`, static inline in the headers, twinned by
the op's `<kernel>_scratch_bytes` in Python: tests/test_signatures.py). Nothing else spells a signature.

The parser reads the headers' own restricted style: one declaration `ret tt_name(type name, ...);` (possibly
over several lines), comments anywhere; `static inline` functions are helpers or scratch queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tinytrain import FIRMWARE_DIR, TinytrainError

RUNTIME_DIR = FIRMWARE_DIR / "runtime"
#: the headers that declare kernels, relative to firmware/runtime
HEADERS = ("tt_kernels.h", "tt_memory_ops.h", "ops/tt_ops.h")

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*|^\s*#[^\n]*", re.S | re.M)
_DECL = re.compile(
    r"(?P<static>static\s+inline\s+)?(?P<ret>[A-Za-z_][\w\s\*]*?)\b(?P<name>tt_\w+)\s*"
    r"\((?P<params>[^()]*)\)\s*(?P<end>[;{])"
)
_PARAM = re.compile(r"^(?P<type>.*?[\s\*])(?P<name>[A-Za-z_]\w*)$")


@dataclass(frozen=True)
class Param:
    name: str
    ctype: str  # the C type as written, without const and the pointer star(s): int8_t, float, int, ...
    pointer: bool
    const: bool


@dataclass(frozen=True)
class Signature:
    name: str  # tt_<kernel>
    ret: str
    params: tuple[Param, ...]
    header: str  # which header declares it
    inline: bool  # a static inline function (a scratch query), not a library symbol

    @property
    def kernel(self) -> str:
        return self.name[3:]


def _param(text: str, where: str) -> Param:
    text = " ".join(text.split())
    m = _PARAM.match(text)
    if m is None:
        raise TinytrainError(f"{where}: cannot read the parameter {text!r}")
    typ = m["type"]
    pointer = "*" in typ
    const = bool(re.search(r"\bconst\b", typ))
    base = " ".join(re.sub(r"\bconst\b|\*", " ", typ).split())
    return Param(m["name"], base, pointer, const)


def parse_header(text: str, header: str) -> dict[str, Signature]:
    """Every `tt_*` function a header declares (prototype) or defines static inline, by name."""
    out: dict[str, Signature] = {}
    for m in _DECL.finditer(_COMMENT.sub(" ", text)):
        inline = bool(m["static"])
        if not inline and m["end"] != ";":
            continue
        name = m["name"]
        raw = m["params"].strip()
        params = () if raw in ("", "void") else tuple(_param(p, f"{header}: {name}") for p in raw.split(","))
        ret = " ".join(m["ret"].split())
        if name in out:
            raise TinytrainError(f"{header}: {name} is declared twice")
        out[name] = Signature(name, ret, params, header, inline)
    return out


@lru_cache(maxsize=4)
def table(runtime_dir: Path = RUNTIME_DIR) -> dict[str, Signature]:
    """The signature table: every kernel (and scratch query) the runtime headers declare, by C name."""
    out: dict[str, Signature] = {}
    for h in HEADERS:
        path = runtime_dir / h
        if not path.is_file():
            raise TinytrainError(f"runtime header {path} is missing")
        for name, sig in parse_header(path.read_text(), h).items():
            if name in out:
                raise TinytrainError(f"{name} is declared in {out[name].header} and in {h}")
            out[name] = sig
    return out


def signature(name: str) -> Signature:
    """The signature of `tt_<kernel>` (name with or without the `tt_` prefix)."""
    full = name if name.startswith("tt_") else f"tt_{name}"
    try:
        return table()[full]
    except KeyError:
        raise TinytrainError(f"{full} is declared in no runtime header ({', '.join(HEADERS)})") from None


def check_call(kernel: str, nargs: int) -> None:
    """An emitter's call of `tt_<kernel>` passes as many arguments as the header declares."""
    sig = signature(kernel)
    if len(sig.params) != nargs:
        names = ", ".join(p.name for p in sig.params)
        raise TinytrainError(
            f"emitter of {kernel}: {nargs} arguments, but {sig.header} declares {len(sig.params)} ({names})"
        )
