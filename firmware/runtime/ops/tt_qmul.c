/* qmul: MUL forward (TFLite Micro numerics, optional per-channel broadcast of b) and backward
 * (tinytrain/ops/mul.py). */
#include "ops/tt_ops.h"
#include "ops/tt_tflm.h"

void tt_mul_s8(const int8_t *a, const int8_t *b, int n, int c, int nb, int32_t a_zero, int32_t b_zero,
               int32_t y_zero, int32_t mult, int32_t shift, int32_t act_min, int32_t act_max, int8_t *y) {
    for (int i = 0; i < n; ++i) {
        int32_t bv = (int32_t)b[nb == c ? i % c : i] - b_zero;
        int32_t v = tt_mbqm(((int32_t)a[i] - a_zero) * bv, mult, shift) + y_zero;
        y[i] = (int8_t)tt_clamp32(v, act_min, act_max);
    }
}

void tt_mul_bwd_f32(const float *g, int n, int c, const int8_t *other, int n_other, float other_scale,
                    int32_t other_zero, int reduce, float *dx) {
    if (reduce) {
        for (int ch = 0; ch < c; ++ch) dx[ch] = 0.0f;
        for (int i = 0; i < n; ++i) {
            float o = (float)((int32_t)other[i] - other_zero) * other_scale;
            dx[i % c] += g[i] * o;
        }
        return;
    }
    for (int i = 0; i < n; ++i) {
        float o = (float)((int32_t)other[n_other == c ? i % c : i] - other_zero) * other_scale;
        dx[i] = g[i] * o;
    }
}
