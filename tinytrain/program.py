"""The lowered training program: the contract between the training compiler, the host reference
executor, the memory planner and the C code generator.

A `Program` is a straight-line list of `Step`s over named `Buffer`s. Each step names one kernel of
the catalogue in `docs/numerics.md`: the same name is a numpy function in `tinytrain.kernels`
(the reference) and a C function `tt_<kernel>` in `firmware/runtime/` (the device). Codegen emits
one call per step; the reference executor calls the numpy function with the same arguments; the
planner computes buffer lifetimes from the step order and packs `arena` buffers into one arena.

Step arguments: `inputs`/`outputs` map the kernel's parameter names (the numpy function's keyword
names) to buffer names; `attrs` hold the remaining keyword arguments. An attr whose value is a string
starting with `$` is a run-time value supplied by the caller of the step function:
`$label` (the sample's class), `$neg_lr` (-learning rate of this step, float32), `$neg_lr_batch`
(`f32(neg_lr * f32(1/n))`, the step of a mini-batch of n samples, see below), `$rng` (the global
xorshift32 state). `steps` is the training step (forward, loss, backward, updates interleaved as
reordered); `infer_steps` is the forward-only inference of the same network (no saved activations).

Mini-batches (`CompileOptions.accumulate` n > 1, docs/numerics.md "Momentum and mini-batches"): a step
with `when == "batch_end"` runs only on the last sample of each mini-batch, i.e. on every n-th call of the
training step counting from the start (the `Trainer`'s construction, the firmware's `tt_model_init`);
every other step (`when == ""`) runs on every call. The gated steps are the optimizer's update steps
(momentum, weight/bias update, clearing the accumulator), all at the end of `steps` in one run of phase
"update"; `meta["optimizer"]` holds `momentum` (float32 value), `accumulate` and `buffered`.
SRAM buffers of the optimizer-state roles (`OPTIMIZER_ROLES`: "grad_acc", "momentum") start at zero (no
flash image: the firmware clears them in `tt_model_init`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class Storage(str, Enum):  # noqa: UP042 (str() and f-strings of members must stay as they are)
    ARENA = "arena"  # activations, saved activations, gradients, masks, scratch: planned into one arena
    FLASH = "flash"  # frozen constants: weights, biases, tables (.rodata)
    SRAM = "sram"  # trainable copies (updated weights/biases, shadow copies), initialised from flash;
    # optimizer state (momentum, gradient accumulators), initialised to zero
    INPUT = "input"  # the input sample buffer
    # the input sample read tile by tile by a patched first stage (CompileOptions.stream_input): never whole
    # in SRAM; the generated code fetches its rows with tt_input_read (default: from the caller's pointer)
    STREAM = "stream"


DTYPE_BYTES = {"s8": 1, "u8": 1, "s32": 4, "f32": 4}
NUMPY_DTYPE = {"s8": np.int8, "u8": np.uint8, "s32": np.int32, "f32": np.float32}
#: `Step.when` values: every call of the training step / only the last sample of each mini-batch.
WHEN_ALWAYS = ""
WHEN_BATCH_END = "batch_end"
#: Roles of the optimizer-state SRAM buffers (zero-initialised; planner category "optimizer_state").
OPTIMIZER_ROLES = ("grad_acc", "momentum")


@dataclass
class Buffer:
    name: str
    dtype: str  # one of DTYPE_BYTES
    shape: tuple[int, ...]
    storage: Storage
    data: np.ndarray | None = None  # initial contents for FLASH / SRAM buffers
    layer: str = ""  # source layer this buffer belongs to, for reports
    role: str = ""  # e.g. "activation", "saved", "grad", "mask", "weight", "bias", "table", "shadow",
    # "grad_acc", "momentum"

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        if self.dtype == "u8" and self.role == "mask":
            return n  # shape of a mask is already in bytes
        return n * DTYPE_BYTES[self.dtype]


@dataclass
class Step:
    kernel: str  # catalogue name, e.g. "conv2d_s8"
    inputs: dict[str, str]  # kernel argument name -> buffer name (read)
    outputs: dict[str, str]  # kernel argument name -> buffer name (written; may equal an input: in place)
    attrs: dict[str, Any] = field(default_factory=dict)  # ints / floats / strings
    layer: str = ""  # IR layer name, for comments and per-layer reports
    phase: str = "forward"  # "forward" | "loss" | "backward" | "update"
    when: str = WHEN_ALWAYS  # WHEN_ALWAYS, or WHEN_BATCH_END: only on the last sample of a mini-batch


@dataclass
class Program:
    model: str
    scheme: dict[str, Any]
    buffers: dict[str, Buffer]
    steps: list[Step]
    input_buffer: str
    logits_buffer: str
    num_classes: int
    update_rule: str = "stochastic"
    infer_steps: list[Step] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def buffer(self, name: str) -> Buffer:
        return self.buffers[name]
