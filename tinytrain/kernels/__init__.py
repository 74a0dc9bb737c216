"""Shared numpy machinery below the ops (docs/numerics.md): requantization math (`requant`), the update rules
(`update`), the shared rng (`rng`), the FMA option (`fma`), and the kernels that belong to no op: masks,
gradient sums and saved slices (`backward`), the loss (`loss`), patch tiles (`memory_ops`), optimizer state
(`optim`), the scratch catalogue (`scratch`). Each kernel has a C twin `tt_<name>` in firmware/runtime/ that
must give bit-identical results. The ops' own kernels live with their op: tinytrain/ops/<op> (registry.py).

Conventions: arrays in device layout (activations HWC, regular conv weights OHWI, depthwise HWC); a kernel
returns its outputs (one array, or a tuple in documented order) and never modifies its inputs, except the
`*_update` kernels, which update weights/biases/shadow/rng in place and return None.
"""

from tinytrain.kernels.backward import (  # noqa: F401
    add_f32,
    apply_mask_f32,
    mask_bytes,
    mask_s8,
    slice_channels_s8,
)
from tinytrain.kernels.loss import softmax_xent, tt_expf, tt_logf  # noqa: F401
from tinytrain.kernels.memory_ops import (  # noqa: F401  (patch tiles, docs/memory.md)
    tile_fill_s8,
    tile_load_s8,
    tile_store_first_s8,
    tile_store_s8,
)
from tinytrain.kernels.optim import momentum_f32, zero_f32  # noqa: F401  (momentum, mini-batches)
from tinytrain.kernels.requant import out_size, requant_multipliers, rne, sat_add32  # noqa: F401
from tinytrain.kernels.rng import Xorshift32  # noqa: F401
from tinytrain.kernels.scratch import KERNELS, scratch_bytes  # noqa: F401
from tinytrain.kernels.update import RULES, shadow_init, step_factors  # noqa: F401
