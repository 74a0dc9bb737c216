/* qhardswish: HARD_SWISH forward (TFLite Micro's int16 fixed point) and backward (tinytrain/ops/hardswish.py). */
#include "ops/tt_ops.h"
#include "ops/tt_tflm.h"

static inline int32_t srdhm16(int32_t a, int32_t b) {
    if (a == b && a == -32768) return 32767;
    int32_t ab = a * b;
    int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (ab + nudge) / (1 << 15);
}

static inline int32_t sdhm16(int32_t a, int32_t b) {
    if (a == b && a == -32768) return 32767;
    return (a * b) / (1 << 15);
}

static inline int32_t shl_sat16(int32_t v, int n) { return tt_clamp32(v * (1 << n), -32768, 32767); }

void tt_hardswish_s8(const int8_t *x, int n, int32_t x_zero, int32_t y_zero, int32_t out_mult16, int32_t out_exp,
                     int32_t relu_mult16, int32_t relu_exp, int8_t *y) {
    for (int i = 0; i < n; ++i) {
        int32_t v = ((int32_t)x[i] - x_zero) * 128;
        int32_t p = srdhm16(v, out_mult16);
        int32_t r = v;
        if (relu_exp > 0) r = shl_sat16(r, relu_exp - 1);
        r = srdhm16(r, relu_mult16);
        if (relu_exp > 0) r = shl_sat16(r, 1);
        if (relu_exp < 0) r = tt_rdbpot(r, -relu_exp);
        r = (r + (1 << 15)) >> 1;
        int32_t o = tt_rdbpot(sdhm16(r, p), -out_exp) + y_zero;
        y[i] = (int8_t)tt_clamp32(o, -128, 127);
    }
}

void tt_hardswish_bwd_f32(const float *g, const int8_t *x, int n, float x_scale, int32_t x_zero, float *dx) {
    for (int i = 0; i < n; ++i) {
        float xr = (float)((int32_t)x[i] - x_zero) * x_scale;
        float d = xr <= -3.0f ? 0.0f : (xr >= 3.0f ? 1.0f : (xr * 2.0f + 3.0f) * (float)(1.0 / 6.0));
        dx[i] = g[i] * d;
    }
}
