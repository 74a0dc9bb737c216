"""The training compiler: IR graph + update scheme + options -> `Program` (tinytrain/program.py).

Stages, all at compile time:

1. **Lowering** to device layout: weights OHWI / depthwise HWC, requantization multipliers, QAS tables.
   Trainable weights and biases become `Storage.SRAM` copies (initialised from the model); frozen ones
   and every table stay in `Storage.FLASH`.
2. **Pruning analysis**: a tensor needs a gradient iff a trainable layer produces it or lies upstream of
   it. Backward stops at the earliest trainable layer; frozen layers get no weight gradient; activations
   are saved only as inputs of weight gradients, and (with `slice_channels`) only their first
   `k = ceil(r·Ci)` channels, copied at forward time so the full tensor can die.
3. **Forward** (int8, as deployed), with a `mask_s8` bit mask of every clamped output whose gradient is
   needed (the logits excepted) and the channel slices of saved activations.
4. **Loss** `softmax_xent` on the int8 logits.
5. **Backward** in reverse graph order through the per-op gradient rules (tinytrain.autodiff): masks
   applied (in place where safe), gradient contributions of fan-out tensors summed (in place), and with
   `reorder` each layer's fused weight-gradient+update and bias update emitted right after its input
   gradient (computed with the old weights), so no weight-gradient buffer ever exists. Without `reorder`,
   the split kernels store every weight/bias gradient and the updates run after the backward pass
   (same results, bit for bit, more memory).
6. The **inference** step list (forward only, same buffers).

Buffer names: `input`; `act:<tensor>` int8 activations (HWC); `mask:<tensor>` u8 bit masks; `saved:<tensor>`
channel slices; `grad:<tensor>[@<layer>]` f32 gradients (HWC), `gmask:<tensor>` / `gsum:<tensor>` the
out-of-place masked / summed ones when in-place is off or unsafe; `loss`; per layer `w:`, `b:` (int8
weights, int32 bias), `m:` (requant multipliers), `sw:` (weight scales), `q:` / `qb:` (QAS update
factors), `shadow:` (f32 shadow copy), `wgrad:` / `bgrad:` (split gradients: reorder off, or buffered mode),
`gacc:` / `gaccb:` (mini-batch gradient accumulators) and `mom:` / `momb:` (momentum buffers), SRAM f32.

Momentum and mini-batches (`momentum`, `accumulate`; docs/numerics.md "Momentum and mini-batches"): every
update goes through the split kernels and SRAM optimizer state (`Builder._split_update`); with mini-batches
the update steps are gated to the last sample of each batch (`Step.when`, tinytrain/program.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.autodiff import forward_rule, gradient_rule, output_clamped
from tinytrain.ir import Graph, Op
from tinytrain.kernels.backward import mask_bytes
from tinytrain.kernels.requant import requant_multipliers
from tinytrain.kernels.update import shadow_init
from tinytrain.ops.conv2d.forward import dw_weight_hwc, weight_ohwi
from tinytrain.ops.residual import add_attrs
from tinytrain.program import WHEN_BATCH_END, Buffer, Program, Step, Storage
from tinytrain.schedule.lifetimes import compute_lifetimes, live_bytes, schedule_of
from tinytrain.schedule.patch import (
    MAX_NETWORK_OVERHEAD,
    MAX_STAGE_OVERHEAD,
    PATCH_GRIDS,
    PatchPlan,
    chain_cuts,
    choose_patch,
    needs_crop,
    op_input_window,
    plan_patch,
    stage_input,
)
from tinytrain.sparse.schemes import Scheme, resolve_scheme

UPDATE_RULES = ("nearest", "stochastic", "shadow")
#: The default int8 update rounding: chosen by measured accuracy (docs/evidence.md, "Update rounding rule").
DEFAULT_UPDATE_RULE = "stochastic"

#: Kernels whose C implementation may write its output over an input (docs/numerics.md, "Aliasing in C").
#: `add_s8` is elementwise too; adding it here lets the residual add overwrite its conv-branch input.
INPLACE_KERNELS = frozenset({"apply_mask_f32", "add_f32"})


@dataclass(frozen=True)
class CompileOptions:
    """Compiler switches. Every optimization is one flag, so an ablation is one switch."""

    update_rule: str = DEFAULT_UPDATE_RULE  # "nearest" | "stochastic" | "shadow" (docs/numerics.md, Update)
    qas: bool = True  # quantization-aware scaling of the update (False: the "int8 without QAS" ablation)
    reorder: bool = True  # fused weight-grad+update right after each layer's input gradient
    inplace: bool = True  # mask application, gradient sums and the residual add in place where safe
    slice_channels: bool = True  # save only the updated input channels (else keep the whole activation)
    # a regular conv trained on k < Ci input channels keeps only those in SRAM (`w:`), the rest in flash
    # (`wrest:`), via the `conv2d_split_*` kernels (memory_ops.py, firmware/runtime/tt_memory_ops.c)
    split_weights: bool = True
    # the input sample is an arena buffer (dead after the first stage, its bytes reused) instead of a separate
    # buffer; the generated code exposes it as tt_input_buffer() (docs/memory.md, "Input in arena")
    input_in_arena: bool = True
    # a stride-1 depthwise input gradient writes dx over its output gradient g (one f32 plane of scratch),
    # its bias update moved before it (it reads g, and does not change the weights dx uses)
    inplace_dw_grad: bool = True
    # a stride-1 depthwise conv whose input no later step reads writes its output over its input, one channel
    # plane at a time through an H*W-byte kernel scratch (`dwconv2d_s8_inplace`, docs/memory.md)
    inplace_dw_forward: bool = True
    # the backward of an inverted-residual block pw1 -> dw -> pw2 with frozen dw and pw2 weights runs one
    # expanded channel at a time (`ir_block_bwd_f32`: two float planes of scratch instead of the expanded
    # gradients); needs `reorder` and `inplace`
    fused_block_backward: bool = True
    # run the first stage (a chain of convs no gradient reaches) tile by tile (MCUNetV2): only its output is
    # ever whole; `patch_cut` ops on a `patch_grid`^2 grid, or (None) chosen by tinytrain.schedule.patch
    patch: bool = True
    # with a patched first stage, the sample is streamed: each tile reads its rows of the sample where the
    # caller keeps it (tt_input_read; flash, a sensor, a file), so it is never whole in SRAM (docs/memory.md)
    stream_input: bool = True
    patch_cut: int | None = None
    patch_grid: int | None = None
    # the automatic choice may recompute at most this fraction of the patched stage's MACs (the first stage;
    # a later one also counts if this is larger than its share of `patch_max_network_overhead`)
    patch_max_overhead: float = MAX_STAGE_OVERHEAD
    # ... and all stages together at most this fraction of the network's forward MACs: later stages (at
    # lower resolution, few MACs of their own) are held to the network, not to their own size
    patch_max_network_overhead: float = MAX_NETWORK_OVERHEAD
    # learning-rate multiplier of the classifier (the layer producing the logits), folded into its `q`/`qb`
    # tables at compile time (docs/numerics.md, "Update"): the new head learns from scratch while the
    # pretrained layers only adapt, so transfer learning usually wants it larger. Costs nothing on device.
    head_lr_scale: float = 1.0
    # SGD momentum mu in [0, 1) (PyTorch's, dampening 0, no Nesterov; used as float32) and gradient
    # accumulation over mini-batches of `accumulate` samples (the update every n-th step, from the batch-mean
    # gradient). Either switches the updates to "buffered" mode: split gradient sums, SRAM optimizer state
    # `mom:` / `gacc:`, the update from it (docs/numerics.md, "Momentum and mini-batches"). Default: plain SGD
    momentum: float = 0.0
    accumulate: int = 1
    # the backward sums' multiply-add contract (docs/numerics.md, "Fused multiply-add"): True = one fused
    # rounding per term (VFMA: fewer instructions; the M7 default), False = two roundings (VMUL + VADD: fewer
    # cycles on the Cortex-M4, whose VFMA takes 3); None = the board's choice (board.json "fma"), fused
    # when no board is given. The program records it (meta["fma"]); the host reference and the generated
    # firmware (tt_config.h) follow it.
    fma: bool | None = None

    def __post_init__(self) -> None:
        if self.update_rule not in UPDATE_RULES:
            raise TinytrainError(
                f"unknown update rule {self.update_rule!r}: choose one of {', '.join(UPDATE_RULES)}"
            )
        if not (math.isfinite(self.head_lr_scale) and self.head_lr_scale > 0):
            raise TinytrainError(f"head_lr_scale must be a positive number, got {self.head_lr_scale!r}")
        for name in ("patch_max_overhead", "patch_max_network_overhead"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value >= 0)
            ):
                raise TinytrainError(
                    f"{name} (--{name.replace('_', '-')}) must be a finite number >= 0, got {value!r}"
                )
        check_optimizer(self.momentum, self.accumulate)
        if self.fma is not None and not isinstance(self.fma, bool):
            raise TinytrainError(f"fma must be true, false or unset (the board's), got {self.fma!r}")

    @property
    def buffered(self) -> bool:
        """Momentum or mini-batches: the updates go through SRAM optimizer state."""
        return self.momentum > 0 or self.accumulate > 1


def check_optimizer(momentum: object, accumulate: object) -> None:
    """TinytrainError unless 0 <= momentum < 1 (also in float32) and accumulate is an integer >= 1."""
    if (
        isinstance(momentum, bool)
        or not isinstance(momentum, (int, float, np.integer, np.floating))
        or not math.isfinite(float(momentum))
        or not 0.0 <= float(momentum) < 1.0
        or np.float32(momentum) >= 1.0
    ):
        raise TinytrainError(f"momentum must be a number in [0, 1), got {momentum!r}")
    if isinstance(accumulate, bool) or not isinstance(accumulate, (int, np.integer)) or int(accumulate) < 1:
        raise TinytrainError(
            f"accumulate (samples per mini-batch) must be an integer >= 1, got {accumulate!r}"
        )


def _hwc(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    c, h, w = shape
    return (h, w, c)


class Builder:
    """Mutable state of one compilation; the per-op rules call its methods (see tinytrain.autodiff)."""

    def __init__(
        self,
        graph: Graph,
        scheme: Scheme,
        options: CompileOptions,
        patch: PatchPlan | list[PatchPlan] | None = None,
    ) -> None:
        self.graph = graph
        # the patched stages (tinytrain/schedule/patch.py), in op order; `patch`: the first stage (from the
        # graph input) if there is one
        self.patches: list[PatchPlan] = sorted(
            [] if patch is None else [patch] if isinstance(patch, PatchPlan) else list(patch),
            key=lambda pp: pp.start,
        )
        self.patch = next((pp for pp in self.patches if pp.start == 0), None)
        self.scheme = scheme
        self.options = options
        self.buffers: dict[str, Buffer] = {}
        self.steps: list[Step] = []
        self.infer_steps: list[Step] = []
        self._target = self.steps
        self._training = True
        self._act: dict[str, str] = {}
        self._params: dict[str, dict[str, str]] = {}
        self._grad: dict[
            str, str
        ] = {}  # tensor -> buffer holding the sum of its gradient contributions so far
        self._deferred: list[Step] = []
        self._deferred_gated: list[Step] = []  # buffered mode, n > 1: the updates at the end of a mini-batch
        self.grad_buffers: dict[str, str] = {}  # tensor -> final (masked) gradient buffer
        self.wgrad_buffers: dict[str, str] = {}
        self.bgrad_buffers: dict[str, str] = {}
        self._producer = {op.output: op for op in graph.ops}
        self._consumers: dict[str, list[Op]] = {}
        for op in graph.ops:
            for t in op.inputs:
                self._consumers.setdefault(t, []).append(op)
        self._analyse()

    # analysis ---------------------------------------------------------------------------------------
    def _analyse(self) -> None:
        trainable = self.scheme.trainable_layers()
        missing = trainable - {op.name for op in self.graph.ops}
        if missing:
            raise TinytrainError(
                f"scheme {self.scheme.name!r} names layers not in the model: {sorted(missing)}"
            )
        need = {self.graph.input: False}
        for op in self.graph.ops:
            need[op.output] = op.name in trainable or any(need[t] for t in op.inputs)
        self._need = need
        # saved activations: the input of every weight-updated layer, first k channels
        self.saved_k: dict[str, int] = {}
        for layer, wu in self.scheme.weights.items():
            x = self.graph.op(layer).inputs[0]
            self.saved_k[x] = max(self.saved_k.get(x, 0), wu.channels)
        self._sliced = {
            t
            for t, k in self.saved_k.items()
            if self.options.slice_channels and k < self.graph.tensors[t].shape[0]
        }
        self._read_in_backward = set(self.saved_k) - self._sliced  # activations kept whole for backward

    def needs_grad(self, tensor: str) -> bool:
        return self._need.get(tensor, False)

    # buffers ----------------------------------------------------------------------------------------
    def buffer(
        self,
        name: str,
        dtype: str,
        shape: tuple[int, ...],
        storage: Storage,
        role: str,
        layer: str = "",
        data: np.ndarray | None = None,
    ) -> str:
        if name in self.buffers:
            raise TinytrainError(f"internal: buffer {name!r} defined twice")
        self.buffers[name] = Buffer(name, dtype, tuple(int(d) for d in shape), storage, data, layer, role)
        return name

    def act(self, tensor: str) -> str:
        try:
            return self._act[tensor]
        except KeyError:
            raise TinytrainError(f"internal: tensor {tensor!r} read before it is produced") from None

    def def_act(self, tensor: str, inplace_of: str | None = None, kernel: str = "") -> str:
        """The buffer an op writes its output activation to: the buffer of its input `inplace_of` when
        `kernel` may run in place and nothing reads that input afterwards, else a new one."""
        if tensor in self._act:  # second pass (inference): same buffers
            return self._act[tensor]
        t = self.graph.tensors[tensor]
        if inplace_of is not None and kernel in INPLACE_KERNELS and self._inplace_ok(inplace_of, tensor):
            self._act[tensor] = self._act[inplace_of]
        else:
            name = "input" if tensor == self.graph.input else f"act:{tensor}"
            self._act[tensor] = self.buffer(
                name, "s8", _hwc(t.shape), Storage.ARENA, "activation", self._producer[tensor].name
            )
        return self._act[tensor]

    def _inplace_ok(self, src: str, dst: str) -> bool:
        """An elementwise op may overwrite its input `src` when nothing reads `src` afterwards."""
        if not self.options.inplace or src == self.graph.input or src in self._read_in_backward:
            return False
        if self.graph.tensors[src].shape != self.graph.tensors[dst].shape:
            return False
        return [op.output for op in self._consumers.get(src, [])] == [dst]

    def params(self, op: Op) -> dict[str, str]:
        """Buffers of a conv's weight, bias, requantization multipliers, weight scales, QAS tables."""
        if op.name in self._params:
            return self._params[op.name]
        out = self.graph.tensors[op.output]
        x_scale = float(op.attrs["x_scale"])
        ws = op.w_scales.astype(np.float64)
        w = dw_weight_hwc(op.weight) if op.depthwise else weight_ohwi(op.weight)
        wu = self.scheme.weights.get(op.name)
        train_b = op.name in self.scheme.bias_layers
        rest = None
        if wu and self.options.split_weights and not op.depthwise and wu.channels < wu.in_channels:
            w, rest = np.ascontiguousarray(w[..., : wu.channels]), np.ascontiguousarray(w[..., wu.channels :])
        p = {
            "w": self.buffer(
                f"w:{op.name}",
                "s8",
                w.shape,
                Storage.SRAM if wu else Storage.FLASH,
                "weight",
                op.name,
                w.copy(),
            ),
            "bias": self.buffer(
                f"b:{op.name}",
                "s32",
                op.bias.shape,
                Storage.SRAM if train_b else Storage.FLASH,
                "bias",
                op.name,
                op.bias.astype(np.int32).copy(),
            ),
            "m": self.buffer(
                f"m:{op.name}",
                "f32",
                ws.shape,
                Storage.FLASH,
                "table",
                op.name,
                requant_multipliers(x_scale, op.w_scales, out.scale),
            ),
        }
        if rest is not None:
            p["w_rest"] = self.buffer(
                f"wrest:{op.name}", "s8", rest.shape, Storage.FLASH, "weight", op.name, rest
            )
        if self.needs_grad(op.inputs[0]):
            p["sw"] = self.buffer(
                f"sw:{op.name}",
                "f32",
                ws.shape,
                Storage.FLASH,
                "table",
                op.name,
                op.w_scales.astype(np.float32),
            )
        lr_mult = self.options.head_lr_scale if op.output == self.graph.output else 1.0
        if wu:
            q = lr_mult * (x_scale / ws if self.options.qas else x_scale * ws)
            p["q"] = self.buffer(
                f"q:{op.name}", "f32", ws.shape, Storage.FLASH, "table", op.name, q.astype(np.float32)
            )
            if self.options.update_rule == "shadow":
                sh = shadow_init(w, wu.channels, op.depthwise)
                p["shadow"] = self.buffer(
                    f"shadow:{op.name}", "f32", sh.shape, Storage.SRAM, "shadow", op.name, sh
                )
        if train_b:
            qb = lr_mult * (1.0 / (x_scale * ws) if self.options.qas else x_scale * ws)
            p["qb"] = self.buffer(
                f"qb:{op.name}", "f32", ws.shape, Storage.FLASH, "table", op.name, qb.astype(np.float32)
            )
        self._params[op.name] = p
        return p

    # steps ------------------------------------------------------------------------------------------
    def emit(
        self,
        kernel: str,
        inputs: dict[str, str],
        outputs: dict[str, str],
        attrs: dict[str, Any] | None = None,
        layer: str = "",
        phase: str = "forward",
    ) -> None:
        for b in (*inputs.values(), *outputs.values()):
            if b not in self.buffers:
                raise TinytrainError(f"internal: step {kernel} of {layer!r} names unknown buffer {b!r}")
        self._target.append(Step(kernel, dict(inputs), dict(outputs), dict(attrs or {}), layer, phase))

    def _after_forward(self, tensor: str) -> None:
        """Training only: the bit mask and the channel slice of a freshly produced tensor."""
        prod = self._producer.get(tensor)
        layer = prod.name if prod else ""
        t = self.graph.tensors[tensor]
        if (
            prod is not None
            and tensor != self.graph.output
            and self.needs_grad(tensor)
            and output_clamped(prod.kind)
        ):
            n = mask_bytes(int(np.prod(t.shape)))
            self.emit(
                "mask_s8",
                {"y": self.act(tensor)},
                {"bits": self.buffer(f"mask:{tensor}", "u8", (n,), Storage.ARENA, "mask", layer)},
                {},
                layer,
            )
        if tensor in self._sliced:
            k = self.saved_k[tensor]
            h, w, _ = _hwc(t.shape)
            saved = self.buffer(f"saved:{tensor}", "s8", (h, w, k), Storage.ARENA, "saved", layer)
            self.emit("slice_channels_s8", {"x": self.act(tensor)}, {"y": saved}, {"k": k}, layer)

    def saved_input(self, op: Op) -> str:
        x = op.inputs[0]
        return f"saved:{x}" if x in self._sliced else self.act(x)

    # gradients --------------------------------------------------------------------------------------
    def grad_buffer(self, tensor: str, layer: str, prefix: str = "grad") -> str:
        name = f"{prefix}:{tensor}"
        if name in self.buffers:
            name = f"{prefix}:{tensor}@{layer}"
        return self.buffer(name, "f32", _hwc(self.graph.tensors[tensor].shape), Storage.ARENA, "grad", layer)

    def _shared(self, buf: str, exclude: str) -> bool:
        return any(b == buf for t, b in self._grad.items() if t != exclude)

    def contribute(self, tensor: str, buf: str) -> None:
        """Add a gradient contribution `buf` (dL/d real value) to `tensor` (summed with earlier ones)."""
        prev = self._grad.get(tensor)
        if prev is None:
            self._grad[tensor] = buf
            return
        layer = self.buffers[buf].layer
        if self.options.inplace and not self._shared(buf, tensor):
            out = buf
        elif self.options.inplace and not self._shared(prev, tensor):
            out = prev
        else:
            out = self.grad_buffer(tensor, layer, "gsum")
        self.emit("add_f32", {"a": buf, "b": prev}, {"y": out}, {}, layer, "backward")
        self._grad[tensor] = out

    def _finalize(self, tensor: str) -> str:
        """The complete gradient of `tensor`, masked by its clamp: dL/d(pre-clamp real value)."""
        buf = self._grad.pop(tensor, None)
        if buf is None:
            raise TinytrainError(f"internal: no gradient reached tensor {tensor!r}")
        prod = self._producer[tensor]
        if tensor != self.graph.output and output_clamped(prod.kind):
            out = (
                buf
                if self.options.inplace and not self._shared(buf, tensor)
                else self.grad_buffer(tensor, prod.name, "gmask")
            )
            self.emit(
                "apply_mask_f32", {"g": buf, "bits": f"mask:{tensor}"}, {"g": out}, {}, prod.name, "backward"
            )
            buf = out
        self.grad_buffers[tensor] = buf
        return buf

    def _runtime_update_attrs(self) -> dict[str, Any]:
        a: dict[str, Any] = {"neg_lr": "$neg_lr", "rule": self.options.update_rule}
        if self.options.update_rule == "stochastic":
            a["rng"] = "$rng"
        return a

    def update_weight(
        self, op: Op, g: str, fused: str, split_grad: str, split_update: str, attrs: dict[str, Any]
    ) -> None:
        """Weight gradient + QAS update of `op` if the scheme trains its weights (fused, or split when not
        reordering: the gradient sums now, the update after the backward pass)."""
        wu = self.scheme.weights.get(op.name)
        if wu is None:
            return
        p = self.params(op)
        x = self.saved_input(op)
        upd_in = {"w": p["w"], "q": p["q"]}
        upd_out = {"w": p["w"]}
        if "shadow" in p:
            upd_in["shadow"] = upd_out["shadow"] = p["shadow"]
        rt = self._runtime_update_attrs()
        if self.options.reorder and not self.options.buffered:
            self.emit(
                fused,
                {"g": g, "x": x, **upd_in},
                upd_out,
                {**attrs, "k_in": wu.channels, **rt},
                op.name,
                "update",
            )
            return
        k = wu.channels
        shape = (
            (op.kernel, op.kernel, k)
            if op.depthwise
            else (self.graph.tensors[op.output].shape[0], op.kernel, op.kernel, k)
        )
        s = self.buffer(f"wgrad:{op.name}", "f32", shape, Storage.ARENA, "grad", op.name)
        self.wgrad_buffers[op.name] = s
        self.emit(
            split_grad,
            {"g": g, "x": x},
            {"s": s},
            {**attrs, "k_in": k, "kernel": op.kernel},
            op.name,
            "backward",
        )
        self._split_update(
            Step(split_update, {"s": s, **upd_in}, upd_out, {"k_in": k, **rt}, op.name, "update"), "w"
        )

    def update_bias(self, op: Op, g: str) -> None:
        if op.name not in self.scheme.bias_layers:
            return
        p = self.params(op)
        if self.options.reorder and not self.options.buffered:
            self.emit(
                "bias_grad_update",
                {"g": g, "bias": p["bias"], "qb": p["qb"]},
                {"bias": p["bias"]},
                {"neg_lr": "$neg_lr"},
                op.name,
                "update",
            )
            return
        s = self.buffer(f"bgrad:{op.name}", "f32", (len(op.bias),), Storage.ARENA, "grad", op.name)
        self.bgrad_buffers[op.name] = s
        self.emit("bias_grad_f32", {"g": g}, {"s": s}, {}, op.name, "backward")
        self._split_update(
            Step(
                "bias_update",
                {"s": s, "bias": p["bias"], "qb": p["qb"]},
                {"bias": p["bias"]},
                {"neg_lr": "$neg_lr"},
                op.name,
                "update",
            ),
            "b",
        )

    def _split_update(self, update: Step, kind: str) -> None:
        """The update of one tensor (`kind` "w" or "b") from its gradient sums `update.inputs["s"]` (an arena
        buffer just written by the split gradient kernel).

        Plain SGD (reorder off): the update runs after the backward pass. Buffered mode (momentum mu > 0 or
        mini-batches of n > 1 samples, docs/numerics.md "Momentum and mini-batches"): per sample, n > 1 adds
        the sums into the SRAM accumulator `gacc:` (`add_f32` in place), or n == 1 steps the momentum buffer
        `mom:` with them (`momentum_f32`) -- right after the gradient with `reorder`, so the arena sums die at
        once, else after the backward pass; then the update (from `mom:` if mu > 0, else `gacc:`) after the
        backward pass. With n > 1 the momentum step, the update (at `$neg_lr_batch`) and clearing the
        accumulator (`zero_f32`) are gated to the last sample of each mini-batch and run, for every tensor in
        update order, after all the ungated steps."""
        o = self.options
        if not o.buffered:
            self._deferred.append(update)
            return
        layer, s = update.layer, update.inputs["s"]
        shape = self.buffers[s].shape
        n, mu = int(o.accumulate), float(np.float32(o.momentum))
        per_sample: list[Step] = []
        gated: list[Step] = []
        src = s
        gacc = None
        zeros = np.zeros(shape, np.float32)
        if n > 1:
            name = f"{'gaccb' if kind == 'b' else 'gacc'}:{layer}"
            gacc = self.buffer(name, "f32", shape, Storage.SRAM, "grad_acc", layer, zeros.copy())
            per_sample.append(Step("add_f32", {"a": s, "b": gacc}, {"y": gacc}, {}, layer, "update"))
            src = gacc
        if o.momentum > 0:
            name = f"{'momb' if kind == 'b' else 'mom'}:{layer}"
            mom = self.buffer(name, "f32", shape, Storage.SRAM, "momentum", layer, zeros.copy())
            step = Step("momentum_f32", {"m": mom, "g": src}, {"m": mom}, {"mu": mu}, layer, "update")
            (gated if n > 1 else per_sample).append(step)
            src = mom
        update.inputs["s"] = src
        gated.append(update)
        if gacc is not None:
            update.attrs["neg_lr"] = "$neg_lr_batch"
            gated.append(Step("zero_f32", {"x": gacc}, {"x": gacc}, {}, layer, "update"))
            for st in gated:
                st.when = WHEN_BATCH_END
        if o.reorder:
            self._target.extend(per_sample)
        else:
            self._deferred.extend(per_sample)
        (self._deferred_gated if gacc is not None else self._deferred).extend(gated)

    # channel-wise fused inverted-residual backward --------------------------------------------------------
    _FUSE_DW = ("apply_mask_f32", "bias_grad_update", "dwconv2d_bwd_input_f32")
    _FUSE_PW1 = (
        "apply_mask_f32",
        "conv2d_bwd_input_f32",
        "conv2d_split_bwd_input_f32",
        "conv2d_wgrad_update",
        "bias_grad_update",
    )

    def _fuse_block_backwards(self) -> None:
        """Replace the backward steps of each block pw1 (1x1) -> dw -> pw2 (1x1) whose dw and pw2 weights
        are frozen, from pw2's input gradient to pw1's updates, by one `ir_block_bwd_f32` step
        (docs/memory.md). In buffered mode (momentum, mini-batches) the updates are split gradient sums
        (`*_wgrad_f32`, `bias_grad_f32`), which the fused kernel does not produce: a block whose dw or pw1 has
        an update reads the chain with a kernel outside `_FUSE_DW`/`_FUSE_PW1` and is left unfused; blocks
        that only pass the gradient through are fused as usual."""

        def pointwise(op: Op | None) -> bool:
            return (
                op is not None
                and op.kind == "conv2d"
                and not op.depthwise
                and op.kernel == 1
                and op.stride == 1
                and len(self.graph.tensors[op.output].shape) == 3
            )

        for dw in self.graph.ops:
            if dw.kind != "conv2d" or not dw.depthwise or not self.needs_grad(dw.output):
                continue
            pw1 = self._producer.get(dw.inputs[0])
            cons = self._consumers.get(dw.output, [])
            if not (pointwise(pw1) and len(cons) == 1 and pointwise(cons[0])):
                continue
            assert pw1 is not None
            pw2 = cons[0]
            if [o.name for o in self._consumers.get(pw1.output, [])] != [dw.name]:
                continue
            if dw.name in self.scheme.weights or pw2.name in self.scheme.weights:
                continue
            self._fuse_block_backward(pw1, dw, pw2)

    def _fuse_block_backward(self, pw1: Op, dw: Op, pw2: Op) -> None:
        steps = self.steps
        first = [t for t, s in enumerate(steps) if s.layer == pw2.name and s.kernel == "conv2d_bwd_input_f32"]
        a = first[0] if first else None
        if a is None:
            return
        g2, d = steps[a].inputs["g"], steps[a].outputs["dx"]
        chain, fused, parts = {d}, [a], {}
        for t in range(a + 1, len(steps)):
            s = steps[t]
            if not set(s.inputs.values()) & chain:
                continue
            role = {dw.name: "dw", pw1.name: "pw1"}.get(s.layer)
            allowed = self._FUSE_DW if role == "dw" else self._FUSE_PW1 if role == "pw1" else ()
            kernel = "bwd_input" if s.kernel.endswith("bwd_input_f32") else s.kernel
            if s.kernel not in allowed or (role, kernel) in parts:
                return
            parts[(role, kernel)] = s
            fused.append(t)
            if s.kernel in ("apply_mask_f32", "dwconv2d_bwd_input_f32"):
                chain |= set(s.outputs.values())
        bwd_dw, bwd1 = parts.get(("dw", "bwd_input")), parts.get(("pw1", "bwd_input"))
        if bwd_dw is None:
            return
        at = steps.index(bwd1) if bwd1 is not None else fused[-1]
        reads = {g2} | {b for t in fused for b in steps[t].inputs.values()} - chain
        for t in range(a + 1, at):  # steps left in between must not write what the fused step reads
            if t not in fused and set(steps[t].outputs.values()) & reads:
                return
        pdw, p1, p2 = self.params(dw), self.params(pw1), self.params(pw2)
        ins = {"g": g2, "w2": p2["w"], "s_w2": p2["sw"], "w_dw": pdw["w"], "s_w_dw": pdw["sw"]}
        attrs = {k: bwd_dw.attrs[k] for k in ("in_h", "in_w", "stride", "pad")}
        outs: dict[str, str] = {}
        if ("dw", "apply_mask_f32") in parts:
            ins["bits_dw"] = parts[("dw", "apply_mask_f32")].inputs["bits"]
        if ("pw1", "apply_mask_f32") in parts:
            ins["bits_pw1"] = parts[("pw1", "apply_mask_f32")].inputs["bits"]
        bdw, b1, wg = (
            parts.get(k)
            for k in (("dw", "bias_grad_update"), ("pw1", "bias_grad_update"), ("pw1", "conv2d_wgrad_update"))
        )
        if bwd1 is not None or wg is not None:
            ins["w1"] = p1["w"]
        if bwd1 is not None:
            if "w_rest" in bwd1.inputs:
                ins["w1_rest"] = bwd1.inputs["w_rest"]
            ins["s_w1"] = bwd1.inputs["s_w"]
            outs["dx"] = bwd1.outputs["dx"]
        if bdw is not None:
            ins.update(b_dw=bdw.inputs["bias"], qb_dw=bdw.inputs["qb"])
            outs["b_dw"] = bdw.inputs["bias"]
            attrs["neg_lr"] = bdw.attrs["neg_lr"]
        if b1 is not None:
            ins.update(b1=b1.inputs["bias"], qb1=b1.inputs["qb"])
            outs["b1"] = b1.inputs["bias"]
            attrs["neg_lr"] = b1.attrs["neg_lr"]
        if wg is not None:
            ins.update(x1=wg.inputs["x"], q1=wg.inputs["q"])
            outs["w1"] = wg.inputs["w"]
            if "shadow" in wg.inputs:
                ins["shadow1"] = outs["shadow1"] = wg.inputs["shadow"]
            keep = ("x_zero", "k_in", "neg_lr", "rule", "rng")
            attrs.update({k: v for k, v in wg.attrs.items() if k in keep})
        step = Step("ir_block_bwd_f32", ins, outs, attrs, dw.name, "backward")
        new = [s for t, s in enumerate(steps) if t not in fused or t == at]
        new[new.index(steps[at])] = step
        steps[:] = new
        used = {b for s in steps for b in (*s.inputs.values(), *s.outputs.values())}
        used |= {b for s in self.infer_steps for b in (*s.inputs.values(), *s.outputs.values())}
        for b in chain - used:
            del self.buffers[b]
        self.grad_buffers = {t: b for t, b in self.grad_buffers.items() if b in self.buffers}

    # in-place depthwise forward ------------------------------------------------------------------------
    def _inplace_dw_forward(self) -> None:
        """Rewrite each stride-1 `dwconv2d_s8` (output shaped like its input) whose input activation no later
        step of its run reads into `dwconv2d_s8_inplace`, y written over x, in the training and the inference
        run alike (they share buffers); later steps read x's buffer where they read y's."""
        runs = (self.steps, self.infer_steps)

        def candidates(steps: list[Step]) -> dict[str, int]:
            found = {}
            for t, st in enumerate(steps):
                if st.kernel != "dwconv2d_s8" or int(st.attrs.get("stride", 1)) != 1:
                    continue
                x, y = st.inputs["x"], st.outputs["y"]
                bx, by = self.buffers[x], self.buffers[y]
                if (
                    bx.storage != Storage.ARENA
                    or bx.role != "activation"
                    or by.role != "activation"
                    or bx.shape != by.shape
                    or max(self.buffers[st.inputs["w"]].shape[:2]) > 7
                    or any(x in u.inputs.values() or x in u.outputs.values() for u in steps[t + 1 :])
                ):
                    continue
                found[st.layer] = t
            return found

        train, infer = (candidates(r) for r in runs)
        for layer in sorted(train.keys() & infer.keys()):
            st = self.steps[train[layer]]
            x, y = st.inputs["x"], st.outputs["y"]
            si = self.infer_steps[infer[layer]]
            if (si.inputs["x"], si.outputs["y"]) != (x, y):
                continue
            for steps, t in ((self.steps, train[layer]), (self.infer_steps, infer[layer])):
                st = steps[t]
                steps[t] = Step(
                    "dwconv2d_s8_inplace", dict(st.inputs), {"y": x}, dict(st.attrs), st.layer, st.phase
                )
                for u in steps[t + 1 :]:
                    u.inputs = {k: (x if v == y else v) for k, v in u.inputs.items()}
                    u.outputs = {k: (x if v == y else v) for k, v in u.outputs.items()}
            for tensor, buf in list(self._act.items()):
                if buf == y:
                    self._act[tensor] = x
            del self.buffers[y]

    # in-place depthwise input gradient -----------------------------------------------------------------
    def _inplace_dw_grads(self) -> None:
        """Rewrite each stride-1 `dwconv2d_bwd_input_f32` whose output gradient g no later step reads except
        its layer's `bias_grad_update` into `dwconv2d_bwd_input_inplace_f32` (dx written over g), the bias
        update moved before it; later steps read g's buffer where they read dx's. In buffered mode (momentum,
        mini-batches) the bias gradient is the split `bias_grad_f32` (its sums then go to the optimizer
        state): that step moves instead (it reads only g, which the rewrite leaves intact until dx)."""
        steps = self.steps
        movable = {"bias_grad_update"} | ({"bias_grad_f32"} if self.options.buffered else set())
        t = 0
        while t < len(steps):
            st = steps[t]
            if st.kernel != "dwconv2d_bwd_input_f32" or int(st.attrs.get("stride", 1)) != 1:
                t += 1
                continue
            g, d = st.inputs["g"], st.outputs["dx"]
            gb, db = self.buffers[g], self.buffers[d]
            later = [
                u
                for u in range(t + 1, len(steps))
                if g in steps[u].inputs.values() or g in steps[u].outputs.values()
            ]
            if (
                gb.storage != Storage.ARENA
                or gb.shape != db.shape
                or any(steps[u].kernel not in movable or steps[u].layer != st.layer for u in later)
            ):
                t += 1
                continue
            moved = [steps[u] for u in later]
            for u in reversed(later):
                del steps[u]
            steps[t:t] = moved
            t += len(moved)
            steps[t] = Step(
                "dwconv2d_bwd_input_inplace_f32",
                dict(st.inputs),
                {"dx": g},
                dict(st.attrs),
                st.layer,
                st.phase,
            )
            for u in range(t + 1, len(steps)):
                su = steps[u]
                su.inputs = {k: (g if v == d else v) for k, v in su.inputs.items()}
                su.outputs = {k: (g if v == d else v) for k, v in su.outputs.items()}
            for tensor, buf in list(self.grad_buffers.items()):
                if buf == d:
                    self.grad_buffers[tensor] = g
            del self.buffers[d]
            t += 1

    # patch-based first stage ----------------------------------------------------------------------------
    def stage_patchable(self, cut: int, start: int = 0) -> bool:
        """No gradient reaches ops[start:cut] and none of their tensors is saved for the backward pass."""
        stage = self.graph.ops[start:cut]
        tensors = {stage_input(self.graph, start)} | {op.output for op in stage}
        return not any(self.needs_grad(t) for t in tensors) and not (
            set(self.saved_k) & (tensors - {stage[-1].output})
        )

    def _tile_buffer(
        self,
        tile: int,
        tensor: str,
        window: tuple[int, int, int, int],
        layer: str,
        start: int = 0,
        reader: str = "",
    ) -> str:
        """The arena buffer of one tile of `tensor` (its `window`), per stage (`start`); with `reader`, the
        copy of the part that op reads."""
        name = (
            ("" if start == 0 else f"s{start}.") + f"tile{tile}:{tensor}" + (f"@{reader}" if reader else "")
        )
        if name not in self.buffers:
            r0, r1, c0, c1 = window
            c = self.graph.tensors[tensor].shape[0]
            self.buffer(name, "s8", (r1 - r0, c1 - c0, c), Storage.ARENA, "tile", reader or layer)
        return name

    def _forward_ops(self) -> None:
        """The forward of every op, the patched stages tile by tile."""
        g = self.graph
        stages = {pp.start: pp for pp in self.patches}
        i = 0
        while i < len(g.ops):
            if i in stages:
                i = self._patched_stage(stages[i])
                continue
            op = g.ops[i]
            forward_rule(op)(self, op)
            if self._training:
                self._after_forward(op.output)
            i += 1

    def _patched_stage(self, pp: PatchPlan) -> int:
        """Emit ops[start:cut] tile by tile (tinytrain/schedule/patch.py); returns cut."""
        g = self.graph
        stage = g.ops[pp.start : pp.cut]
        src = stage_input(g, pp.start)
        out_t = pp.stage_output
        y = self.def_act(out_t)
        _, oh, ow = g.tensors[out_t].shape
        # the padded convs reading each stage tensor: an unclipped tile gets their padding in place
        padded = {
            op.output: [c for c in stage if op.output in c.inputs and c.kind == "conv2d" and c.padding > 0]
            for op in stage
        }
        for tile in pp.tiles:
            op0 = stage[0]
            held = tile.held
            r0, r1, c0, c1 = held[src]
            bufs = {src: self._tile_buffer(tile.index, src, held[src], op0.name, pp.start)}
            self.emit(
                "tile_load_s8",
                {"x": self.act(src)},
                {"t": bufs[src]},
                {"row0": r0, "col0": c0, "rows": r1 - r0, "cols": c1 - c0, "fill": int(op0.attrs["x_zero"])},
                op0.name,
            )
            for op in stage:
                want = op_input_window(op, held[op.output])
                xs = [
                    self._tile_input(tile.index, x, held[x], want, bufs[x], op, pp.start) for x in op.inputs
                ]
                out = g.tensors[op.output]
                t = self._tile_buffer(tile.index, op.output, held[op.output], op.name, pp.start)
                bufs[op.output] = t
                if op.kind == "add":
                    self.emit("add_s8", {"a": xs[0], "b": xs[1]}, {"y": t}, add_attrs(g, op), op.name)
                else:
                    p = self.params(op)
                    self.emit(
                        "dwconv2d_s8" if op.depthwise else "conv2d_s8",
                        {"x": xs[0], "w": p["w"], "bias": p["bias"], "m": p["m"]},
                        {"y": t},
                        {
                            "x_zero": int(op.attrs["x_zero"]),
                            "y_zero": int(out.zero),
                            "stride": op.stride,
                            "pad": 0,
                        },
                        op.name,
                    )
                _, h, wd = out.shape
                w = held[op.output]
                readers = padded[op.output]
                if readers and (w[0] < 0 or w[2] < 0 or w[1] > h or w[3] > wd):  # unclipped: pad in place
                    self.emit(
                        "tile_fill_s8",
                        {"t": t},
                        {"t": t},
                        {
                            "row0": w[0],
                            "col0": w[2],
                            "h": h,
                            "w": wd,
                            "fill": int(readers[0].attrs["x_zero"]),
                        },
                        op.name,
                    )
            x = bufs[out_t]
            a, _, c, _ = tile.out
            if tile.index == 0:
                self.emit(
                    "tile_store_first_s8",
                    {"t": x},
                    {"y": y},
                    {"row0": a, "col0": c, "h": oh, "w": ow},
                    stage[-1].name,
                )
            else:
                self.emit("tile_store_s8", {"t": x, "y": y}, {"y": y}, {"row0": a, "col0": c}, stage[-1].name)
        if self._training:
            self._after_forward(out_t)
        return pp.cut

    def _tile_input(
        self,
        tile: int,
        tensor: str,
        window: tuple[int, int, int, int],
        want: tuple[int, int, int, int],
        buf: str,
        op: Op,
        start: int = 0,
    ) -> str:
        """The tile buffer `op` reads for `tensor`: the tile itself, or a copy of the window it wants, made
        with tile_load_s8 (a crop of a skip connection's larger tile; at the image border, the tile with this
        conv's padding, its x_zero, around it)."""
        if not needs_crop(window, want):
            return buf
        name = self._tile_buffer(tile, tensor, want, op.name, start, reader=op.name)
        self.emit(
            "tile_load_s8",
            {"x": buf},
            {"t": name},
            {
                "row0": want[0] - window[0],
                "col0": want[2] - window[2],
                "rows": want[1] - want[0],
                "cols": want[3] - want[2],
                "fill": int(op.attrs["x_zero"]) if op.kind == "conv2d" else 0,
            },
            op.name,
        )
        return name

    # the whole program ------------------------------------------------------------------------------
    def build(self) -> Program:
        g = self.graph
        if self.patch is not None and self.options.stream_input:
            storage = Storage.STREAM
        else:
            storage = Storage.ARENA if self.options.input_in_arena else Storage.INPUT
        self._act[g.input] = self.buffer("input", "s8", _hwc(g.tensors[g.input].shape), storage, "input")
        self._after_forward(g.input)
        self._forward_ops()
        logits = g.tensors[g.output]
        gz = self.buffer(
            f"grad:{g.output}",
            "f32",
            _hwc(logits.shape),
            Storage.ARENA,
            "grad",
            self._producer[g.output].name,
        )
        loss = self.buffer("loss", "f32", (1,), Storage.ARENA, "loss")
        self.emit(
            "softmax_xent",
            {"z": self.act(g.output)},
            {"g": gz, "loss": loss},
            {"z_scale": float(logits.scale), "label": "$label"},
            "loss",
            "loss",
        )
        self._grad[g.output] = gz
        for op in reversed(g.ops):
            if not self.needs_grad(op.output):
                continue
            rule = gradient_rule(op)
            gbuf = self._finalize(op.output)
            rule(self, op, gbuf)
        if self._grad:
            raise TinytrainError(f"internal: gradients of {sorted(self._grad)} were never consumed")
        self.steps.extend(self._deferred)
        self.steps.extend(self._deferred_gated)
        if self.options.fused_block_backward and self.options.reorder and self.options.inplace:
            self._fuse_block_backwards()
        if self.options.inplace_dw_grad and self.options.inplace:
            self._inplace_dw_grads()
        # inference: the same forward over the same buffers, nothing saved
        self._target, self._training = self.infer_steps, False
        self._forward_ops()
        if self.options.inplace_dw_forward and self.options.inplace:
            self._inplace_dw_forward()
        backward_ops = [op.name for op in g.ops if self.needs_grad(op.output)]
        meta = {
            "options": asdict(self.options),
            "resolution": g.resolution,
            "loss_buffer": "loss",
            "grad_buffers": dict(self.grad_buffers),
            "wgrad_buffers": dict(self.wgrad_buffers),
            "bgrad_buffers": dict(self.bgrad_buffers),
            "saved": {
                t: {
                    "channels": self.saved_k[t],
                    "of": g.tensors[t].shape[0],
                    "buffer": f"saved:{t}" if t in self._sliced else self._act[t],
                }
                for t in self.saved_k
            },
            "backward_layers": backward_ops,
            "earliest_backward_layer": backward_ops[0] if backward_ops else None,
            "activation_buffers": dict(self._act),
            "patch": self.patch.to_dict() if self.patch else None,
            "patches": [pp.to_dict() for pp in self.patches],
            "fma": True if self.options.fma is None else bool(self.options.fma),
            "optimizer": {
                "momentum": float(np.float32(self.options.momentum)),
                "accumulate": int(self.options.accumulate),
                "buffered": self.options.buffered,
            },
        }
        return Program(
            g.name,
            self.scheme.to_dict(),
            self.buffers,
            self.steps,
            "input",
            self._act[g.output],
            g.num_classes,
            self.options.update_rule,
            self.infer_steps,
            meta,
        )


def board_contract(options: CompileOptions, board: Any = None) -> CompileOptions:
    """`options` with the multiply-add contract decided: its own `fma`, else the board's (a name or Board;
    board.json "fma"), else fused."""
    if options.fma is not None:
        return options
    fma = True
    if board is not None:
        from emulation.boards import get_board

        fma = get_board(board).fma
    return replace(options, fma=fma)


def compile_training(
    graph: Graph,
    scheme: str | dict[str, Any] | Scheme = "last",
    options: CompileOptions | None = None,
    board: Any = None,
) -> Program:
    """Compile `graph` (with its final head already in place) for training under `scheme`; `board` (a name
    or Board) decides what the options leave to it (the multiply-add contract)."""
    resolved = scheme if isinstance(scheme, Scheme) else resolve_scheme(scheme, graph)
    opts = board_contract(options or CompileOptions(), board)
    patch = choose_stage_patch(graph, resolved, opts) if opts.patch else None
    if patch is None or opts.patch_cut is not None or opts.patch_grid is not None:
        return Builder(graph, resolved, opts, patch).build()
    return Builder(graph, resolved, opts, choose_stages(graph, resolved, opts, patch)).build()


def choose_stage_patch(
    graph: Graph, scheme: Scheme, options: CompileOptions, later: list[PatchPlan] | None = None
) -> PatchPlan | None:
    """The patched first stage for `options.patch`: the given cut/grid (checked), or the configuration
    `tinytrain.schedule.patch.choose_patch` picks, where each candidate cut's floor is the peak live bytes
    of the training program without a first stage (with the `later` stages) outside that stage's forward
    steps (going below buys nothing). None when no stage is patchable (a gradient reaches the first op, e.g.
    scheme `full`)."""
    probe = Builder(graph, scheme, options)
    limit = min((pp.start for pp in later or []), default=len(graph.ops))
    cuts = [c for c in chain_cuts(graph) if c <= limit and probe.stage_patchable(c)]
    in_arena = options.input_in_arena and not options.stream_input  # where the sample is during the stage
    if options.patch_cut is not None or options.patch_grid is not None:
        cut = options.patch_cut if options.patch_cut is not None else (cuts[-1] if cuts else 0)
        if cut not in cuts:
            raise TinytrainError(
                f"cannot patch the first {cut} ops of {graph.name}: patchable cuts are {cuts} "
                f"(convs and residual adds from the input that no gradient reaches)"
            )
        grid = options.patch_grid or 2
        try:
            return plan_patch(graph, cut, grid, in_arena)
        except ValueError as exc:
            raise TinytrainError(str(exc)) from None
    if not cuts:
        return None
    base = Builder(graph, scheme, replace(options, patch=bool(later)), later or None).build()
    steps = list(base.steps)
    live = live_bytes(list(compute_lifetimes(base, steps).values()), len(steps))
    floors = {}
    for cut in cuts:
        stage = {op.name for op in graph.ops[:cut]}
        floors[cut] = max(
            (
                int(v)
                for v, st in zip(live, steps, strict=True)
                if not (st.phase == "forward" and st.layer in stage)
            ),
            default=0,
        )
    return choose_patch(graph, floors, in_arena, max_overhead=options.patch_max_overhead, cuts=tuple(cuts))


#: at most this many rounds of adding (or re-gridding) a patched stage after the first
MAX_LATER_STAGES = 6
#: the best candidates by estimate that are compiled to compare their real peak
LATER_STAGE_TRIALS = 6


def _peak(graph: Graph, scheme: Scheme, options: CompileOptions, plans: list[PatchPlan]) -> tuple[int, int]:
    """(peak live bytes of the program with these stages, its recomputed MACs): what the stages are chosen by
    (no placement can beat the peak; the placement follows it closely)."""
    prog = Builder(graph, scheme, options, plans).build()
    lts = compute_lifetimes(prog)
    return int(live_bytes(list(lts.values()), len(schedule_of(prog))).max()), sum(
        pp.extra_macs for pp in plans
    )


def choose_stages(graph: Graph, scheme: Scheme, options: CompileOptions, first: PatchPlan) -> list[PatchPlan]:
    """The first stage and, greedily, more patched stages after it (`choose_later_stage`), each kept only if
    the program's real peak falls; then the first stage split in two if that recomputes fewer MACs."""
    plans = [first]
    best = _peak(graph, scheme, options, plans)
    for _ in range(MAX_LATER_STAGES):
        trial = choose_later_stage(graph, scheme, options, plans, best[0])
        if trial is None:
            break
        plans, best = trial
    return split_first_stage(graph, scheme, options, plans, best)


def split_first_stage(
    graph: Graph, scheme: Scheme, options: CompileOptions, plans: list[PatchPlan], best: tuple[int, int]
) -> list[PatchPlan]:
    """A long first stage recomputes many MACs (its halos grow with depth): try it as two stages, cut at its
    last inner cut from which the rest is a stage (on the first stage's grid and one finer), the first part
    chosen again; kept if the peak is no higher and fewer MACs are recomputed."""
    first = plans[0]
    later = plans[1:]
    inner = [m for m in chain_cuts(graph) if m < first.cut and first.cut in chain_cuts(graph, m)]
    probe = Builder(graph, scheme, options)
    if not inner or not probe.stage_patchable(first.cut, inner[-1]):
        return plans
    m = inner[-1]
    for grid in (first.grid, first.grid + 1):
        try:
            part = plan_patch(graph, first.cut, grid, True, True, m)
        except ValueError:
            continue
        again = choose_stage_patch(graph, scheme, options, [part, *later])
        if again is None:
            continue
        trial = [again, part, *later]
        got = _peak(graph, scheme, options, trial)
        if got[0] <= best[0] and got[1] < best[1]:
            plans, best = trial, got
    return plans


def choose_later_stage(
    graph: Graph, scheme: Scheme, options: CompileOptions, plans: list[PatchPlan], peak: int
) -> tuple[list[PatchPlan], tuple[int, int]] | None:
    """One more patched stage, if the program's peak step is the forward of an op after the last stage: the
    stages ops[s:n] around it (convs and residual adds no gradient reaches; the input whole in the arena,
    loaded tile by tile), within `options.patch_max_network_overhead` for all stages together (or its own
    `patch_max_overhead`), ranked by their estimated peak (the stage's
    tiles plus what else is live then, not counting below the peak of the other steps) then recomputed MACs;
    the best few compiled (each with the first stage chosen again around it), the one with the lowest real
    peak kept if it is below `peak`. None otherwise."""
    prog = Builder(graph, scheme, options, plans).build()
    steps = schedule_of(prog)
    lts = compute_lifetimes(prog)
    live = live_bytes(list(lts.values()), len(steps))
    t_peak = int(np.argmax(live))
    index = {op.name: i for i, op in enumerate(graph.ops)}
    st = steps[t_peak]
    k = index.get(st.layer, -1)
    prev = max(pp.cut for pp in plans)
    inside_stage = [i for i, pp in enumerate(plans) if i > 0 and pp.start <= k < pp.cut]
    if st.phase != "forward" or (k < prev and not inside_stage):
        return None
    acts = prog.meta["activation_buffers"]
    stage0 = {op.name for op in graph.ops[: plans[0].cut]}
    first = {t for t, x in enumerate(steps) if x.phase == "forward" and x.layer in stage0}
    probe = Builder(graph, scheme, options)
    ranked: list[tuple[tuple[int, int], PatchPlan]] = []
    # the peak inside a later stage: that stage on another grid; else a new stage around the peak op
    spans = (
        [(plans[inside_stage[0]].start, plans[inside_stage[0]].cut)]
        if inside_stage
        else [(start, cut) for start in range(prev, k + 1) for cut in chain_cuts(graph, start) if cut > k]
    )
    rest = [pp for i, pp in enumerate(plans) if i > 0 and i not in inside_stage]
    network = options.patch_max_network_overhead * graph.macs()
    budget = network - plans[0].extra_macs - sum(pp.extra_macs for pp in rest)
    for start, cut in spans:
        if not probe.stage_patchable(cut, start):
            continue
        stage = graph.ops[start:cut]
        names = {op.name for op in stage}
        own = {acts[t] for t in [stage_input(graph, start)] + [op.output for op in stage] if t in acts}
        inside = {t for t, x in enumerate(steps) if x.phase == "forward" and x.layer in names}
        # the first stage is chosen again with the new stage: its steps set no floor
        floor = max((int(v) for t, v in enumerate(live) if t not in inside and t not in first), default=0)
        background = max(
            int(live[t]) - sum(lts[b].nbytes for b in own if b in lts and lts[b].live_at(t)) for t in inside
        )
        _, h, w = graph.tensors[stage[-1].output].shape
        for grid, clip in ((p, c) for p in PATCH_GRIDS for c in (True, False)):
            if grid > min(h, w):
                continue
            pp = plan_patch(graph, cut, grid, True, clip, start)
            if pp.extra_macs <= budget or pp.overhead <= options.patch_max_overhead:
                ranked.append(((max(pp.stage_peak + background, floor), pp.extra_macs), pp))
    ranked.sort(key=lambda kv: kv[0])
    best: tuple[list[PatchPlan], tuple[int, int]] | None = None
    for _, pp in ranked[:LATER_STAGE_TRIALS]:
        later = sorted([*rest, pp], key=lambda x: x.start)
        again = choose_stage_patch(graph, scheme, options, later) or plans[0]
        trial = [again, *later]
        if sum(x.extra_macs for x in trial) > max(network, sum(x.extra_macs for x in plans)):
            continue
        got = _peak(graph, scheme, options, trial)
        if got[0] < peak and (best is None or got < best[1]):
            best = (trial, got)
    return best


def updated_elements(program: Program) -> int:
    """Number of weight and bias elements a training step updates (for reports)."""
    n = 0
    for w in program.scheme["weights"]:
        b = program.buffers[f"w:{w['layer']}"]
        n += math.prod(b.shape) // b.shape[-1] * w["channels"]  # last axis: input channels (or split part)
    return n + sum(program.buffers[f"b:{layer}"].shape[0] for layer in program.scheme["bias_layers"])
