/* mask_range_s8: the clamp mask of a fused activation (tinytrain/ops/conv.py, backward). */
#include "ops/tt_ops.h"

void tt_mask_range_s8(const int8_t *y, int n, int32_t act_min, int32_t act_max, uint8_t *bits) {
    for (int i = 0; i < (n + 7) / 8; ++i) bits[i] = 0;
    for (int i = 0; i < n; ++i) {
        if (y[i] > act_min && y[i] < act_max) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}
