"""Multiply-accumulates per training step, counted from the lowered `Program` (what the firmware executes).

Three kinds, matching the three families of conv kernels in a training step:

- `forward`: int8 convolutions (`conv2d*_s8`, `dwconv2d*_s8`), including the halo recomputed by a patched
  first stage (the program's tile convs run on overlapping windows: that is real work);
- `backward`: input gradients (`*bwd_input*`);
- `wgrad`: weight gradients (fused with the update: `*wgrad*`).

The fused inverted-residual backward (`ir_block_bwd_f32`: pw2 input gradient -> dw input gradient -> pw1
input gradient and pw1 weight-gradient update, one expanded channel at a time) is split into its parts:
the input gradients are `backward`; the pw1 weight gradient is `wgrad` and, in `macs_by_kernel`, belongs to
`conv2d_wgrad_update`, which the fused kernel calls per channel (the profile counts its instructions there).

Everything else (masks, adds, pooling, the loss, bias updates, copies) is counted as no MACs.
"""

from __future__ import annotations

from math import prod
from typing import Any

from tinytrain.program import Program, Step

KINDS = ("forward", "backward", "wgrad")


def _shape(program: Program, step: Step, arg: str) -> tuple[int, ...] | None:
    name = step.inputs.get(arg) or step.outputs.get(arg)
    return tuple(program.buffers[name].shape) if name else None


def block_macs(program: Program, step: Step) -> dict[str, int]:
    """Parts of one `ir_block_bwd_f32` step: {"backward": input-gradient MACs, "wgrad": pw1 weight grad}."""
    g = _shape(program, step, "g")  # [Ho, Wo, Co2]
    w2 = _shape(program, step, "w2")  # [Co2, 1, 1, E]
    wdw = _shape(program, step, "w_dw")  # [kh, kw, E]
    w1 = _shape(program, step, "w1")  # [E, 1, 1, k1]
    if g is None or w2 is None or wdw is None:
        return {"backward": 0, "wgrad": 0}
    e = w2[3]
    h, w = int(step.attrs.get("in_h", g[0])), int(step.attrs.get("in_w", g[1]))
    back = g[0] * g[1] * g[2] * e + g[0] * g[1] * e * wdw[0] * wdw[1]
    dx = _shape(program, step, "dx")
    if dx is not None:
        back += h * w * e * dx[2]
    wgrad = 0
    if "x1" in step.inputs and w1 is not None:
        wgrad = h * w * e * int(step.attrs.get("k_in", w1[3]))
    return {"backward": back, "wgrad": wgrad}


def step_macs(program: Program, step: Step) -> tuple[str, int] | None:
    """(kind, MACs) of one step, or None when the kernel is not a convolution."""
    k = step.kernel
    if "conv2d" not in k:
        return None
    dw = k.startswith("dw")
    w = _shape(program, step, "w")
    if w is None:
        return None
    if dw:  # depthwise weights are [kh, kw, C] (or [kh, kw, k] when trained on k channels)
        taps = w[0] * w[1]
    else:  # [Co, kh, kw, Ci]; a split layer keeps the rest of the input channels in `w_rest`
        rest = _shape(program, step, "w_rest")
        taps = w[1] * w[2] * (w[3] + (rest[3] if rest else 0))
    if "wgrad" in k:
        g = _shape(program, step, "g")
        assert g is not None
        k_in = int(step.attrs.get("k_in", w[-1]))
        if dw:
            return "wgrad", g[0] * g[1] * w[0] * w[1] * min(k_in, g[2])
        return "wgrad", g[0] * g[1] * g[2] * w[1] * w[2] * k_in
    if "bwd_input" in k:
        g = _shape(program, step, "g")
        assert g is not None
        return "backward", prod(g) * taps
    y = _shape(program, step, "y")
    if y is None:
        return None
    return "forward", prod(y) * taps


def program_macs(program: Program) -> dict[str, int]:
    """MACs per training step by kind (`forward`, `backward`, `wgrad`) and `total`."""
    out = dict.fromkeys(KINDS, 0)
    for st in program.steps:
        if st.kernel == "ir_block_bwd_f32":
            for kind, v in block_macs(program, st).items():
                out[kind] += v
            continue
        r = step_macs(program, st)
        if r is not None:
            out[r[0]] += r[1]
    out["total"] = sum(out[k] for k in KINDS)
    return out


def macs_by_kernel(program: Program) -> dict[str, Any]:
    """MACs per step by kernel name (for instructions-per-MAC of each kernel)."""
    out: dict[str, int] = {}
    for st in program.steps:
        if st.kernel == "ir_block_bwd_f32":
            parts = block_macs(program, st)
            out[st.kernel] = out.get(st.kernel, 0) + parts["backward"]
            out["conv2d_wgrad_update"] = out.get("conv2d_wgrad_update", 0) + parts["wgrad"]
            continue
        r = step_macs(program, st)
        if r is not None:
            out[st.kernel] = out.get(st.kernel, 0) + r[1]
    return out
