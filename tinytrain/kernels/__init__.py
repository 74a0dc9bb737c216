"""Reference kernels (numpy): the executable specification of docs/numerics.md.

Each function here has a C twin `tt_<name>` in firmware/runtime/ that must give bit-identical
results. Arrays are in device layout (activations HWC, regular conv weights OHWI, depthwise HWC).
"""

from tinytrain.kernels.forward import (  # noqa: F401
    add_s8,
    avgpool_s8,
    conv2d_s8,
    dw_weight_hwc,
    dwconv2d_s8,
    requant_multipliers,
    rne,
    weight_ohwi,
)
