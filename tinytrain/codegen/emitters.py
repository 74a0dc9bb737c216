"""One C emitter per kernel: maps a Step's named arguments (the numpy kernel's keyword names, see
`tinytrain.program`) to the argument list of the C kernel `tt_<kernel>` (firmware/runtime).

An emitter receives the Step and an `EmitContext` and returns one C statement. Buffers become C
expressions through the context (arena macro, flash/SRAM array, or `sample`); shapes come from the
buffers; run-time attrs (`$label`, `$neg_lr`, `$neg_lr_batch`, `$rng`) become the step function's locals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.program import Program, Step, Storage
from tinytrain.signatures import check_call

CTYPE = {"s8": "int8_t", "u8": "uint8_t", "s32": "int32_t", "f32": "float"}
RUNTIME = {"$label": "label", "$neg_lr": "neg_lr", "$neg_lr_batch": "neg_lr_batch", "$rng": "&tt_rng_state"}
RULES = {"nearest": "TT_RULE_NEAREST", "stochastic": "TT_RULE_STOCHASTIC", "shadow": "TT_RULE_SHADOW"}


class EmitContext:
    def __init__(self, program: Program, names: dict[str, str], scratch_keys: set[str] | None = None) -> None:
        self.program = program
        self.names = names
        self.scratch_keys = scratch_keys or set()
        self.time = 0  # the step's index on the planner's time line (training steps, then inference)
        self.loss_expr = ""  # set by the loss emitter: what tt_train_step returns
        self.uses_rng = False
        self.skip_buffers: set[str] = set()  # buffers an emitter replaced by a local (no arena macro)

    def bufname(self, step: Step, arg: str) -> str:
        """The buffer bound to `arg`: the input of that name (what the kernel reads), else the output."""
        name = step.inputs.get(arg, step.outputs.get(arg))
        if name is None:
            raise TinytrainError(f"step {step.kernel} (layer {step.layer!r}) has no argument {arg!r}")
        return name

    def has(self, step: Step, arg: str) -> bool:
        return arg in step.inputs or arg in step.outputs

    def buf(self, step: Step, arg: str) -> str:
        """The C expression of the buffer bound to `arg`."""
        return self.names[self.bufname(step, arg)]

    def opt(self, step: Step, arg: str) -> str:
        """Like buf, or a null pointer when the step does not bind `arg`."""
        return self.buf(step, arg) if self.has(step, arg) else "0"

    def out(self, step: Step) -> str:
        """The C expression of the step's one output (whatever the compiler named it)."""
        outs = [k for k in step.outputs if step.inputs.get(k) != step.outputs[k]] or list(step.outputs)
        if len(outs) != 1:
            raise TinytrainError(
                f"step {step.kernel} (layer {step.layer!r}) should have one output, "
                f"has {sorted(step.outputs)}"
            )
        return self.names[step.outputs[outs[0]]]

    def shape(self, step: Step, arg: str) -> tuple[int, ...]:
        return tuple(self.program.buffers[self.bufname(step, arg)].shape)

    def size(self, step: Step, arg: str) -> int:
        return int(np.prod(self.shape(step, arg)))

    def attr(self, step: Step, key: str, default: Any = None) -> str:
        """A C expression for attr `key` (a literal or a run-time local)."""
        v = step.attrs.get(key, default)
        if v is None:
            raise TinytrainError(f"step {step.kernel} (layer {step.layer!r}) lacks attr {key!r}")
        if isinstance(v, str) and v.startswith("$"):
            if v not in RUNTIME:
                raise TinytrainError(f"step {step.kernel}: unknown run-time value {v!r}")
            if v == "$rng":
                self.uses_rng = True
            return RUNTIME[v]
        if isinstance(v, bool):
            return "1" if v else "0"
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            s = str(np.float32(v))
            return s + ("f" if ("." in s or "e" in s) else ".0f")
        raise TinytrainError(f"step {step.kernel}: attr {key!r} = {v!r} has no C form")

    def scratch(self, step: Step) -> str:
        for key in self.scratch_keys:
            if key.startswith(f"scratch#{self.time}:"):
                return self.names[key]
        return "0"


def call(kernel: str, *args: object) -> str:
    """One C call of `tt_<kernel>`; argument count checked against its header (tinytrain.signatures)."""
    check_call(kernel, len(args))
    return f"tt_{kernel}({', '.join(str(a) for a in args)});"


Emitter = Callable[[Step, EmitContext], str]
EMITTERS: dict[str, Emitter] = {}


def emitter(kernel: str) -> Callable[[Emitter], Emitter]:
    def register(fn: Emitter) -> Emitter:
        EMITTERS[kernel] = fn
        return fn

    return register


def hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(H, W, C) of an activation shaped [H, W, C] or a vector [C]."""
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    if len(shape) == 1:
        return 1, 1, shape[0]
    raise TinytrainError(f"activation shape {shape} is neither HWC nor a vector")


# ---- the shared machinery's kernels, one emitter each (the ops' emitters: tinytrain/ops/<op>) ------------


@emitter("slice_channels_s8")
def _slice_channels_s8(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc(c.shape(s, "x"))
    return call("slice_channels_s8", c.buf(s, "x"), h, w, ch, c.attr(s, "k"), c.out(s))


@emitter("softmax_xent")
def _softmax_xent(s: Step, c: EmitContext) -> str:
    # the loss goes to a local of tt_train_step (its arena slot would die right after this step)
    c.loss_expr = "loss"
    c.skip_buffers.add(c.bufname(s, "loss"))
    return "float loss;\n  " + call(
        "softmax_xent",
        c.buf(s, "z"),
        c.size(s, "z"),
        c.attr(s, "z_scale"),
        c.attr(s, "label"),
        c.buf(s, "g"),
        "&loss",
    )


@emitter("mask_s8")
def _mask_s8(s: Step, c: EmitContext) -> str:
    return call("mask_s8", c.buf(s, "y"), c.size(s, "y"), c.out(s))


@emitter("apply_mask_f32")
def _apply_mask_f32(s: Step, c: EmitContext) -> str:
    out = c.out(s) if s.outputs else c.buf(s, "g")  # in place unless the step names another output
    return call("apply_mask_f32", c.buf(s, "g"), c.buf(s, "bits"), c.size(s, "g"), out)


@emitter("add_f32")
def _add_f32(s: Step, c: EmitContext) -> str:
    return call("add_f32", c.buf(s, "a"), c.buf(s, "b"), c.size(s, "a"), c.out(s))


def update_tail(s: Step, c: EmitContext) -> tuple[str, str, str]:
    rule = str(s.attrs.get("rule", c.program.update_rule))
    if rule not in RULES:
        raise TinytrainError(f"step {s.kernel} (layer {s.layer!r}): unknown update rule {rule!r}")
    rng = "0"
    if rule == "stochastic":
        c.uses_rng = True
        rng = "&tt_rng_state"
    shadow = c.opt(s, "shadow")
    if rule == "shadow" and shadow == "0":
        raise TinytrainError(f"step {s.kernel} (layer {s.layer!r}): rule 'shadow' needs a shadow buffer")
    return RULES[rule], rng, shadow


# ---- optimizer state (firmware/runtime/tt_optim.c; docs/numerics.md "Momentum and mini-batches") --------


@emitter("momentum_f32")
def _momentum_f32(s: Step, c: EmitContext) -> str:
    if c.size(s, "g") != c.size(s, "m"):
        raise TinytrainError(f"step momentum_f32 (layer {s.layer!r}): buffer sizes differ")
    return call("momentum_f32", c.buf(s, "m"), c.buf(s, "g"), c.size(s, "m"), c.attr(s, "mu"))


@emitter("zero_f32")
def _zero_f32(s: Step, c: EmitContext) -> str:
    return call("zero_f32", c.buf(s, "x"), c.size(s, "x"))


# ---- patch tiles (firmware/runtime/tt_memory_ops.h) ----------------------------------------------------


@emitter("tile_load_s8")
def _tile_load_s8(s: Step, c: EmitContext) -> str:
    h, w, ch = hwc(c.shape(s, "x"))
    streamed = c.program.buffers[c.bufname(s, "x")].storage == Storage.STREAM  # rows via tt_input_read
    return call(
        "tile_load_stream_s8" if streamed else "tile_load_s8",
        c.buf(s, "x"),
        h,
        w,
        ch,
        c.attr(s, "row0"),
        c.attr(s, "col0"),
        c.attr(s, "rows"),
        c.attr(s, "cols"),
        c.attr(s, "fill"),
        c.out(s),
    )


@emitter("tile_fill_s8")
def _tile_fill_s8(s: Step, c: EmitContext) -> str:
    rows, cols, ch = hwc(c.shape(s, "t"))
    return call(
        "tile_fill_s8",
        c.buf(s, "t"),
        rows,
        cols,
        ch,
        c.attr(s, "row0"),
        c.attr(s, "col0"),
        c.attr(s, "h"),
        c.attr(s, "w"),
        c.attr(s, "fill"),
    )


@emitter("tile_store_s8")
@emitter("tile_store_first_s8")
def _tile_store_s8(s: Step, c: EmitContext) -> str:
    rows, cols, ch = hwc(c.shape(s, "t"))
    y = c.names[s.outputs["y"]]
    h, w, _ = hwc(tuple(c.program.buffers[s.outputs["y"]].shape))
    return call("tile_store_s8", c.buf(s, "t"), rows, cols, ch, y, h, w, c.attr(s, "row0"), c.attr(s, "col0"))
