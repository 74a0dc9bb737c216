/* qrequant forward: a 256-entry table from one int8 quantization to another (tinytrain/ops/requant.py). */
#include "ops/tt_ops.h"

void tt_lut_s8(const int8_t *x, int n, const int8_t *table, int8_t *y) {
    for (int i = 0; i < n; ++i) y[i] = table[(int)x[i] + 128];
}
