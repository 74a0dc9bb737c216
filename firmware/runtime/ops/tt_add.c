/* add (residual) forward (tinytrain/ops/residual.py; docs/numerics.md). Compiled through tt_forward.c. */
#include "tt_kernels.h"
#include "tt_math.h"

void tt_add_s8(const int8_t *a, const int8_t *b, int n, float fa, float fb, int32_t a_zero, int32_t b_zero,
               int32_t y_zero, int8_t *y) {
    for (int j = 0; j < n; j++) {
        float ta = (float)(a[j] - a_zero) * fa;
        float tb = (float)(b[j] - b_zero) * fb;
        y[j] = tt_requant_out(ta + tb, y_zero);
    }
}
