/* qadd forward, TFLite Micro numerics (tinytrain/ops/add.py). */
#include "ops/tt_ops.h"
#include "ops/tt_tflm.h"

void tt_qadd_s8(const int8_t *a, const int8_t *b, int n, int32_t a_zero, int32_t b_zero, int32_t y_zero,
                int left_shift, int32_t a_mult, int32_t a_shift, int32_t b_mult, int32_t b_shift, int32_t y_mult,
                int32_t y_shift, int32_t act_min, int32_t act_max, int8_t *y) {
    for (int i = 0; i < n; ++i) {
        int32_t va = (int32_t)((uint32_t)((int32_t)a[i] - a_zero) << left_shift);
        int32_t vb = (int32_t)((uint32_t)((int32_t)b[i] - b_zero) << left_shift);
        int32_t sa = tt_rdbpot(tt_srdhm(va, a_mult), -a_shift);
        int32_t sb = tt_rdbpot(tt_srdhm(vb, b_mult), -b_shift);
        int32_t s = (int32_t)((uint32_t)sa + (uint32_t)sb);
        int32_t v = tt_rdbpot(tt_srdhm(s, y_mult), -y_shift) + y_zero;
        y[i] = (int8_t)tt_clamp32(v, act_min, act_max);
    }
}
