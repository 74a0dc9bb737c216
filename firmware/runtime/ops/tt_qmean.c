/* qmean forward: MEAN over H and W, reference_ops::QuantizedMeanOrSum (tinytrain/ops/mean.py). */
#include "ops/tt_ops.h"
#include "ops/tt_tflm.h"
#include "tt_math.h"

void tt_mean_s8(const int8_t *x, int h, int w, int c, int32_t x_zero, int32_t y_zero, int32_t multiplier,
                int32_t shift, int8_t *y) {
    int32_t n = h * w;
    int k = 0;
    while ((2LL << k) <= n) ++k; /* floor(log2 n) */
    if (k > 32) k = 32;
    if (k > 31 + shift) k = 31 + shift;
    int32_t m = (int32_t)(((int64_t)multiplier << k) / n);
    for (int ch = 0; ch < c; ++ch) {
        int32_t s = 0;
        for (int p = 0; p < n; ++p) s += x[(long)p * c + ch];
        s = (int32_t)((uint32_t)s - (uint32_t)(x_zero * n));
        y[ch] = (int8_t)tt_clamp32(tt_mbqm(s, m, shift - k) + y_zero, -128, 127);
    }
}

/* onnxruntime's QLinearGlobalAveragePool (numerics "ort"): f32(sum - x_zero * n) * scale, clamped, rne. */
void tt_mean_f_s8(const int8_t *x, int h, int w, int c, int32_t x_zero, int32_t y_zero, float scale, int8_t *y) {
    int32_t n = h * w;
    float lo = (float)(-128 - y_zero), hi = (float)(127 - y_zero);
    for (int ch = 0; ch < c; ++ch) {
        int32_t s = 0;
        for (int p = 0; p < n; ++p) s += x[(long)p * c + ch];
        float v = (float)(s - x_zero * n) * scale;
        v = v < lo ? lo : (v > hi ? hi : v);
        y[ch] = (int8_t)((int32_t)tt_rne(v) + y_zero);
    }
}
