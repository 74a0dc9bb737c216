/* Float backward kernels (docs/numerics.md, "Float backward"): masks and gradient sums here; the zoo ops'
 * input gradients one file per op in ops/ (tinytrain/ops/registry.py), compiled in this translation unit. */
#include "tt_dw_plane.h"
#include "tt_kernels.h"
#include "tt_math.h"

void tt_mask_s8(const int8_t *y, int n, uint8_t *bits) {
    const int nb = (n + 7) / 8;
    for (int k = 0; k < nb; k++) {
        uint8_t v = 0;
        for (int b = 0; b < 8; b++) {
            const int j = 8 * k + b;
            if (j < n && y[j] != -128 && y[j] != 127) v |= (uint8_t)(1u << b);
        }
        bits[k] = v;
    }
}

void tt_apply_mask_f32(const float *g, const uint8_t *bits, int n, float *out) {
    for (int j = 0; j < n; j++) out[j] = ((bits[j >> 3] >> (j & 7)) & 1u) ? g[j] : 0.0f;
}

void tt_add_f32(const float *a, const float *b, int n, float *y) {
    for (int j = 0; j < n; j++) y[j] = a[j] + b[j];
}

#include "ops/tt_avgpool_bwd.c"

#include "ops/tt_conv2d_bwd.c"
