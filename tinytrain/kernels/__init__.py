"""Reference kernels (numpy): the executable specification of docs/numerics.md.

Each function here has a C twin `tt_<name>` in firmware/runtime/ that must give bit-identical
results. Arrays are in device layout (activations HWC, regular conv weights OHWI, depthwise HWC).
Conventions: a kernel returns its outputs (one array, or a tuple in documented order) and never
modifies its inputs, except the `*_update` kernels, which update weights/biases/shadow/rng in place
and return None.
"""

from tinytrain.kernels.backward import (  # noqa: F401
    add_f32,
    apply_mask_f32,
    avgpool_bwd_f32,
    conv2d_bwd_input_f32,
    dwconv2d_bwd_input_f32,
    mask_bytes,
    mask_s8,
    slice_channels_s8,
)
from tinytrain.kernels.forward import (  # noqa: F401
    add_s8,
    avgpool_s8,
    conv2d_s8,
    dw_weight_hwc,
    dwconv2d_s8,
    out_size,
    requant_multipliers,
    rne,
    weight_ohwi,
)
from tinytrain.kernels.loss import softmax_xent, tt_expf, tt_logf  # noqa: F401
from tinytrain.kernels.memory_ops import (  # noqa: F401, E402  (memory levers, docs/memory.md)
    conv2d_split_bwd_input_f32,
    conv2d_split_s8,
    dwconv2d_bwd_input_inplace_f32,
    dwconv2d_bwd_input_inplace_f32_scratch_bytes,
    dwconv2d_s8_inplace,
    dwconv2d_s8_inplace_scratch_bytes,
    ir_block_bwd_f32,
    ir_block_bwd_f32_scratch_bytes,
    tile_fill_s8,
    tile_load_s8,
    tile_store_first_s8,
    tile_store_s8,
)
from tinytrain.kernels.optim import momentum_f32, zero_f32  # noqa: F401  (momentum, mini-batches)
from tinytrain.kernels.rng import Xorshift32  # noqa: F401
from tinytrain.kernels.scratch import KERNELS, scratch_bytes  # noqa: F401
from tinytrain.kernels.update import (  # noqa: F401
    RULES,
    bias_grad_update,
    conv2d_wgrad_update,
    dwconv2d_wgrad_update,
    shadow_init,
    step_factors,
)
