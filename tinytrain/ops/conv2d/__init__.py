"""`conv2d`: the zoo's convolution (regular k×k, pointwise 1×1, depthwise, the linear classifier as a 1×1 conv
on a [C] vector), one home:

- `lowering.py`: IR shape rule (`out_shape`), reference over the IR (`reference`), forward lowering and
  gradient rule;
- `forward.py`: numpy `conv2d_s8`, `dwconv2d_s8`, the device weight layouts (`weight_ohwi`, `dw_weight_hwc`);
- `backward.py`: numpy input gradients `conv2d_bwd_input_f32` (1×1 / classifier), `dwconv2d_bwd_input_f32`;
- `update.py`: numpy weight/bias gradient + QAS-SGD update, fused (`*_wgrad_update`, `bias_grad_update`) and
  split (`*_wgrad_f32`, `bias_grad_f32`, `*_weight_update`, `bias_update`);
- `memory.py`: numpy memory levers (split weights, in-place depthwise, the fused block backward);
- `emit.py`: the C emitters (argument order of the C signatures).

C twins: firmware/runtime/ops/tt_conv2d.c (forward), tt_conv2d_bwd.c, tt_conv2d_update.c, tt_conv2d_split.c,
tt_conv2d_inplace.c, tt_ir_block_bwd.c; declared in tt_kernels.h / tt_memory_ops.h (the signature table,
tinytrain/signatures.py). Shared machinery below it: tinytrain/kernels (requantization, update rules, rng,
FMA).
"""

from tinytrain.ops.conv2d import emit  # noqa: F401  (registers the emitters)
from tinytrain.ops.conv2d.backward import conv2d_bwd_input_f32, dwconv2d_bwd_input_f32
from tinytrain.ops.conv2d.forward import conv2d_s8, dw_weight_hwc, dwconv2d_s8, weight_ohwi
from tinytrain.ops.conv2d.lowering import KIND, macs, out_shape, reference
from tinytrain.ops.conv2d.memory import (
    conv2d_split_bwd_input_f32,
    conv2d_split_s8,
    dwconv2d_bwd_input_inplace_f32,
    dwconv2d_bwd_input_inplace_f32_scratch_bytes,
    dwconv2d_s8_inplace,
    dwconv2d_s8_inplace_scratch_bytes,
    ir_block_bwd_f32,
    ir_block_bwd_f32_scratch_bytes,
)
from tinytrain.ops.conv2d.update import (
    bias_grad_f32,
    bias_grad_update,
    bias_update,
    conv2d_weight_update,
    conv2d_wgrad_f32,
    conv2d_wgrad_update,
    dwconv2d_weight_update,
    dwconv2d_wgrad_f32,
    dwconv2d_wgrad_update,
)

__all__ = [
    "KIND",
    "KERNELS",
    "out_shape",
    "macs",
    "reference",
    "weight_ohwi",
    "dw_weight_hwc",
    "conv2d_s8",
    "dwconv2d_s8",
    "conv2d_bwd_input_f32",
    "dwconv2d_bwd_input_f32",
    "conv2d_wgrad_update",
    "dwconv2d_wgrad_update",
    "bias_grad_update",
    "conv2d_wgrad_f32",
    "dwconv2d_wgrad_f32",
    "bias_grad_f32",
    "conv2d_weight_update",
    "dwconv2d_weight_update",
    "bias_update",
    "conv2d_split_s8",
    "conv2d_split_bwd_input_f32",
    "dwconv2d_bwd_input_inplace_f32",
    "dwconv2d_bwd_input_inplace_f32_scratch_bytes",
    "dwconv2d_s8_inplace",
    "dwconv2d_s8_inplace_scratch_bytes",
    "ir_block_bwd_f32",
    "ir_block_bwd_f32_scratch_bytes",
]

#: the numpy reference kernels of this op (each `tt_<name>` in C)
KERNELS = frozenset(
    {
        "conv2d_s8",
        "dwconv2d_s8",
        "conv2d_bwd_input_f32",
        "dwconv2d_bwd_input_f32",
        "conv2d_wgrad_update",
        "dwconv2d_wgrad_update",
        "bias_grad_update",
        "conv2d_wgrad_f32",
        "dwconv2d_wgrad_f32",
        "bias_grad_f32",
        "conv2d_weight_update",
        "dwconv2d_weight_update",
        "bias_update",
        "conv2d_split_s8",
        "conv2d_split_bwd_input_f32",
        "dwconv2d_bwd_input_inplace_f32",
        "dwconv2d_s8_inplace",
        "ir_block_bwd_f32",
    }
)
