"""C sources for one training `Program` and its memory plan: model.h and model.c.

Layout of the generated code (see templates/model.c.j2):

- ONE static arena `uint8_t tt_arena[N] __attribute__((aligned(8)))`; every ARENA buffer is a macro
  `A_<name>` pointing at the planner's offset (kernel scratch too, as `S_<step>`);
- FLASH buffers (frozen weights, biases, tables) are `static const` arrays (.rodata);
- SRAM buffers (trainable copies, shadow copies) are static arrays initialised by `tt_model_init()`
  from `static const` flash images;
- optimizer state (momentum, mini-batch gradient accumulators: SRAM buffers of `OPTIMIZER_ROLES`) are static
  arrays cleared by `tt_model_init()` (no flash image);
- the INPUT buffer is the `sample` argument of `tt_train_step` / `tt_infer`;
- `tt_train_step` is one call per Step (emitters.py maps the Step's named arguments to the C
  signature), each under a comment naming the kernel, the IR layer and the buffers; each run of
  consecutive steps of one phase is bracketed with `tt_phase_begin`/`tt_phase_end` (flat, never nested:
  exact per-phase counts under the profiling plugin, see docs/codegen.md);
- mini-batches (`CompileOptions.accumulate` n > 1): a static sample counter (reset by `tt_model_init`) sets
  `batch_end` on every n-th call; the steps with `when == "batch_end"` sit in `if (batch_end) { ... }`, a
  phase run of their own opened and closed inside the braces (a step that applies no update has no such
  phase event; the other phases count the same instructions either way).

Only buffers some step touches are emitted (no dead arrays).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from tinytrain import TinytrainError
from tinytrain.codegen.emitters import CTYPE, EMITTERS, EmitContext
from tinytrain.program import OPTIMIZER_ROLES, WHEN_ALWAYS, WHEN_BATCH_END, Buffer, Program, Step, Storage

PHASE_ENUM = {
    "forward": "TT_PHASE_FORWARD",
    "loss": "TT_PHASE_LOSS",
    "backward": "TT_PHASE_BACKWARD",
    "update": "TT_PHASE_UPDATE",
}
KERNELS_HEADER = "tt_kernels.h"


def phase_begin(phase: str) -> str:
    """The C statement opening a phase of the training step (flat phases: the previous one is closed)."""
    return f"TT_PHASE_BEGIN({PHASE_ENUM[phase]}, tt_phase_name_{phase});"


def phase_end(phase: str) -> str:
    return f"TT_PHASE_END({PHASE_ENUM[phase]}, tt_phase_name_{phase});"


VALUES_PER_LINE = {"s8": 24, "u8": 24, "s32": 10, "f32": 6}


@dataclass
class ParamInfo:
    """A trainable (SRAM) tensor as the device dumps it: `bytes` at `offset` of params.bin."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int
    layer: str
    role: str


@dataclass
class GeneratedModel:
    files: dict[str, str]  # file name -> text
    arena_bytes: int
    input_shape: tuple[int, ...]
    num_classes: int
    params: list[ParamInfo] = field(default_factory=list)  # dump order of params.bin
    flash_bytes: int = 0  # frozen constants + initial images of the trainable copies
    sram_param_bytes: int = 0
    kernels: list[str] = field(default_factory=list)  # kernels called, sorted

    def write(self, directory: str | Path) -> list[Path]:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name, text in self.files.items():
            p = d / name
            if not p.exists() or p.read_text() != text:  # keep mtimes of unchanged files (incremental builds)
                p.write_text(text)
            out.append(p)
        return out

    def read_params(self, data: bytes) -> dict[str, np.ndarray]:
        """The trainable tensors from the bytes the device wrote (params.bin)."""
        expected = sum(p.nbytes for p in self.params)
        if len(data) != expected:
            raise TinytrainError(f"params dump has {len(data)} bytes, expected {expected}")
        from tinytrain.program import NUMPY_DTYPE

        return {
            p.name: np.frombuffer(data, NUMPY_DTYPE[p.dtype], int(np.prod(p.shape)), p.offset)
            .reshape(p.shape)
            .copy()
            for p in self.params
        }


def _cname(prefix: str, name: str, taken: set[str]) -> str:
    base = prefix + re.sub(r"[^0-9A-Za-z_]", "_", name)
    c, i = base, 2
    while c in taken:
        c, i = f"{base}_{i}", i + 1
    taken.add(c)
    return c


def _literal(dtype: str, v: Any) -> str:
    """A C literal of exactly this value (float32: numpy's shortest round-tripping decimal)."""
    if dtype == "f32":
        f = np.float32(v)
        if not np.isfinite(f):
            raise TinytrainError(f"non-finite constant {f} in a float table")
        s = str(f)
        return s + ("f" if ("." in s or "e" in s) else ".0f")
    i = int(v)
    if dtype == "s32" and i == -(2**31):
        return "(-2147483647 - 1)"
    return str(i)


def _init_list(buf: Buffer) -> str:
    if buf.data is None:
        raise TinytrainError(f"buffer {buf.name!r} ({buf.storage.value}) has no initial data")
    arr = np.asarray(buf.data).reshape(-1)
    n = VALUES_PER_LINE[buf.dtype]
    if buf.dtype == "f32":
        vals = [_literal("f32", v) for v in arr.astype(np.float32)]
    else:
        vals = [str(v) for v in arr.astype(np.int64).tolist()]
        if buf.dtype == "s32":
            vals = [_literal("s32", v) if v == str(-(2**31)) else v for v in vals]
    return ",\n".join("  " + ", ".join(vals[i : i + n]) for i in range(0, len(vals), n))


def _decl(buf: Buffer) -> str:
    dims = "x".join(str(d) for d in buf.shape) or "1"
    what = ", ".join(x for x in (buf.role, f"layer {buf.layer}" if buf.layer else "") if x)
    return f"{buf.name}: {buf.dtype}[{dims}]" + (f" ({what})" if what else "")


def _used(program: Program) -> list[str]:
    seen: dict[str, None] = {}
    for st in list(program.steps) + list(program.infer_steps):
        for name in list(st.inputs.values()) + list(st.outputs.values()):
            if name not in program.buffers:
                raise TinytrainError(f"step {st.kernel} (layer {st.layer!r}) names unknown buffer {name!r}")
            seen.setdefault(name, None)
    return list(seen)


def _comment(step: Step, program: Program) -> str:
    args = ", ".join(
        f"{k}={v}"
        for k, v in list(step.inputs.items())
        + [(k, v) for k, v in step.outputs.items() if step.inputs.get(k) != v]
    )
    return f"{step.phase}: {step.kernel} [{step.layer or '-'}] {args}".replace("*/", "* /")


def generate_model(
    program: Program,
    offsets: dict[str, int],
    arena_bytes: int,
    *,
    template_dir: str | Path | None = None,
    caller_arena: bool = False,
) -> GeneratedModel:
    """model.h + model.c for `program` with arena buffers at `offsets` (the planner's placement).

    `caller_arena`: the arena is not a static array but the caller's memory, bound at run time with
    `tt_model_bind_arena(uint8_t *)` (tinytrain export's library); the rest of the code is the same."""
    import tinytrain.ops.registry  # noqa: F401  (every op's emitters register on import; lazy: ops import codegen)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir))
        if template_dir
        else jinja2.PackageLoader("tinytrain.codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    used = _used(program)
    taken: set[str] = set()
    names: dict[str, str] = {}
    arena, flash, sram = [], [], []
    flash_bytes = 0
    for name in used:
        buf = program.buffers[name]
        entry = {
            "name": name,
            "ctype": CTYPE[buf.dtype],
            "count": int(np.prod(buf.shape)) if buf.shape else 1,
            "nbytes": buf.nbytes,
            "decl": _decl(buf),
            "note": "",
        }
        if buf.storage in (Storage.INPUT, Storage.STREAM):
            names[name] = "sample"
            continue
        if buf.storage == Storage.ARENA:
            if name not in offsets:
                raise TinytrainError(f"arena buffer {name!r} has no offset in the memory plan")
            off = int(offsets[name])
            if off % 8 or off + buf.nbytes > arena_bytes:
                raise TinytrainError(
                    f"arena buffer {name!r} at offset {off} ({buf.nbytes} B) is misaligned "
                    f"or outside the {arena_bytes}-byte arena"
                )
            entry.update(cname=_cname("A_", name, taken), offset=off)
            arena.append(entry)
        elif buf.storage == Storage.FLASH:
            entry.update(cname=_cname("tt_c_", name, taken), init=_init_list(buf))
            flash.append(entry)
            flash_bytes += buf.nbytes
        elif buf.storage == Storage.SRAM and buf.role in OPTIMIZER_ROLES:
            # optimizer state starts at zero: cleared by tt_model_init, no flash image
            entry.update(cname=_cname("tt_p_", name, taken), init="", zero_init=True, note=", zero at start")
            sram.append(entry)
        elif buf.storage == Storage.SRAM:
            entry.update(cname=_cname("tt_p_", name, taken), init=_init_list(buf), zero_init=False)
            sram.append(entry)
            flash_bytes += buf.nbytes
        else:
            raise TinytrainError(f"buffer {name!r}: unknown storage {buf.storage!r}")
        names[name] = entry["cname"]
    arena.sort(key=lambda e: (e["offset"], e["name"]))
    scratch = {k: v for k, v in offsets.items() if k.startswith("scratch#")}
    for key, off in sorted(scratch.items(), key=lambda kv: kv[1]):
        cname = _cname("S_", key.split(":")[0].replace("#", "_"), taken)
        names[key] = cname
        arena.append(
            {
                "name": key,
                "ctype": "uint8_t",
                "cname": cname,
                "offset": int(off),
                "nbytes": 0,
                "decl": f"kernel scratch of {key}",
                "note": "",
            }
        )

    ctx = EmitContext(program, names, scratch_keys=set(scratch))
    kernels: set[str] = set()

    def calls(steps: list[Step], t0: int, phases: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        prev, prev_gated = None, False
        for i, st in enumerate(steps):
            fn = EMITTERS.get(st.kernel)
            if fn is None:
                raise TinytrainError(
                    f"no C emitter for kernel {st.kernel!r} (layer {st.layer!r}); "
                    f"known: {', '.join(sorted(EMITTERS))}"
                )
            if st.when not in (WHEN_ALWAYS, WHEN_BATCH_END) or (st.when and not phases):
                raise TinytrainError(f"step {st.kernel} (layer {st.layer!r}): cannot gate it on {st.when!r}")
            kernels.add(st.kernel)
            ctx.time = t0 + i
            gated = st.when == WHEN_BATCH_END
            mark = ""
            if phases and (st.phase != prev or gated != prev_gated):
                # a gated run is its own flat phase run, opened and closed inside `if (batch_end) { }`
                if st.phase not in PHASE_ENUM:
                    raise TinytrainError(f"step {st.kernel} (layer {st.layer!r}): unknown phase {st.phase!r}")
                lines = [("  " if prev_gated else "") + phase_end(prev)] if prev is not None else []
                if prev_gated and not gated:
                    lines.append("}")
                if gated and not prev_gated:
                    lines.append("if (batch_end) {")
                lines.append(("  " if gated else "") + phase_begin(st.phase))
                mark = "\n  ".join(lines)
                prev = st.phase
            out.append(
                {
                    "call": fn(st, ctx),
                    "comment": _comment(st, program),
                    "phase_mark": mark,
                    "phase_enum": PHASE_ENUM.get(st.phase, ""),
                    "indent": "  " if gated else "",
                    "gate_open": gated and not prev_gated,
                    "gate_close": prev_gated and not gated,
                }
            )
            prev_gated = gated
        return out

    train = calls(list(program.steps), 0, True)
    gated_tail = bool(program.steps) and program.steps[-1].when == WHEN_BATCH_END
    last_phase_end = phase_end(program.steps[-1].phase) if program.steps else ""
    if gated_tail:
        last_phase_end = f"  {last_phase_end}\n  }}"
    loss_expr = ctx.loss_expr or "0.0f"
    infer = calls(list(program.infer_steps), len(program.steps), False)
    if not program.infer_steps:
        raise TinytrainError("the program has no inference steps (infer_steps)")
    infer_logits = names.get(program.meta.get("infer_logits_buffer", program.logits_buffer))
    if infer_logits is None:
        raise TinytrainError(f"logits buffer {program.logits_buffer!r} is not used by the inference steps")
    if not ctx.loss_expr:
        raise TinytrainError("the training steps compute no loss (no softmax_xent step)")
    arena = [e for e in arena if e["name"] not in ctx.skip_buffers]

    inp = program.buffers[program.input_buffer]
    params, off = [], 0
    for e in sram:
        b = program.buffers[e["name"]]
        e_off = off
        params.append(ParamInfo(b.name, b.dtype, tuple(b.shape), e_off, b.nbytes, b.layer, b.role))
        off += b.nbytes
    phases_used = [p for p in PHASE_ENUM if any(s.phase == p for s in program.steps)]
    scheme = program.scheme
    scheme_name = str(scheme.get("name", "?")) if isinstance(scheme, dict) else str(scheme)
    common: dict[str, Any] = {
        "model": program.model,
        "scheme_name": scheme_name,
        "arena_bytes": int(arena_bytes),
        "input_shape": tuple(inp.shape),
        "input_bytes": inp.nbytes,
        "num_classes": program.num_classes,
        "trainable": sram,
        "n_steps": len(program.steps),
        "n_infer": len(program.infer_steps),
        "phase_summary": ", ".join(f"{sum(s.phase == p for s in program.steps)} {p}" for p in phases_used),
        "sram_param_bytes": sum(e["nbytes"] for e in sram),
        "flash_bytes": flash_bytes,
        # CompileOptions.input_in_arena: the sample lives in the arena (tt_input_buffer(); docs/memory.md)
        "input_in_arena": inp.storage == Storage.ARENA,
        # CompileOptions.stream_input: the patched first stage reads the sample tile by tile (tt_input_read)
        "input_streamed": inp.storage == Storage.STREAM,
        "input_cname": names.get(program.input_buffer, "sample"),
        # mini-batches (CompileOptions.accumulate): the gated update steps, the sample counter, 1/n
        "accumulate": int(program.meta.get("optimizer", {}).get("accumulate", 1)),
        "gated": any(st.when == WHEN_BATCH_END for st in program.steps),
        "gated_tail": gated_tail,
        "zero_init": [e for e in sram if e.get("zero_init")],
        "caller_arena": caller_arena,
    }
    common["inv_accumulate"] = _literal("f32", 1.0 / common["accumulate"])
    if common["gated"] and common["accumulate"] < 2:
        raise TinytrainError("the program gates steps on mini-batch ends but its mini-batch is one sample")
    fma = int(bool(program.meta.get("fma", True)))
    files = {
        # the program's multiply-add contract for every runtime file of this model's build (tt_math.h)
        "tt_config.h": (
            "/* Generated by tinytrain: the build configuration of this model (tt_math.h includes it). */\n"
            "#ifndef TT_CONFIG_H\n#define TT_CONFIG_H\n"
            "/* the backward multiply-add: 1 fused (fmaf, VFMA), 0 two roundings (docs/numerics.md) */\n"
            f"#define TT_MODEL_FMA {fma}\n#endif\n"
        ),
        "model.h": env.get_template("model.h.j2").render(**common),
        "model.c": env.get_template("model.c.j2").render(
            **common,
            kernels_header=KERNELS_HEADER,
            ops_header=_ops_header(program),
            arena=arena,
            flash=flash,
            sram=sram,
            train=train,
            infer=infer,
            last_phase_end=last_phase_end,
            phases_used=phases_used,
            loss_expr=loss_expr,
            infer_logits=infer_logits,
            uses_rng=ctx.uses_rng,
        ),
    }
    return GeneratedModel(
        files=files,
        arena_bytes=int(arena_bytes),
        input_shape=tuple(inp.shape),
        num_classes=program.num_classes,
        params=params,
        flash_bytes=flash_bytes,
        sram_param_bytes=common["sram_param_bytes"],
        kernels=sorted(kernels),
    )


def _ops_header(program: Program) -> str:
    from tinytrain.ops.registry import ops_header  # imported models' kernels (firmware/runtime/ops)

    return ops_header(program)


def generate(program: Program, plan: Any) -> GeneratedModel:
    """model.h + model.c from a Program and its `MemoryPlan` (tinytrain.schedule.plan_memory)."""
    return generate_model(program, plan.offsets, plan.arena)
