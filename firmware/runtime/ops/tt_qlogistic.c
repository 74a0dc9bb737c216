/* qlogistic: LOGISTIC forward (TFLite Micro: gemmlowp's fixed-point logistic on Q4.27) and backward
 * (tinytrain/ops/logistic.py). */
#include "ops/tt_ops.h"
#include "ops/tt_tflm.h"

static inline int32_t wadd(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t wsub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

static inline int32_t sat_shl(int32_t x, int e) {
    int32_t thr = (int32_t)((1u << (31 - e)) - 1u);
    if (x > thr) return INT32_MAX;
    if (x < -thr) return INT32_MIN;
    return (int32_t)((uint32_t)x << e);
}

static int32_t exp_quarter(int32_t a) {
    const int32_t const_term = 1895147668, third = 715827883;
    int32_t x = wadd(a, 1 << 28);
    int32_t x2 = tt_srdhm(x, x), x3 = tt_srdhm(x2, x), x4 = tt_srdhm(x2, x2);
    int32_t x4_4 = tt_rdbpot(x4, 2);
    int32_t inner = tt_rdbpot(wadd(tt_srdhm(wadd(x4_4, x3), third), x2), 1);
    return wadd(const_term, tt_srdhm(const_term, wadd(x, inner)));
}

static int32_t exp_neg(int32_t a) {
    const int32_t quarter = 1 << 25;
    static const int32_t mults[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    int32_t amq = wsub(a & (quarter - 1), quarter);
    int32_t result = exp_quarter(sat_shl(amq, 4));
    int32_t remainder = wsub(amq, a);
    for (int k = 0; k < 7; ++k) {
        if (remainder & (1 << (25 + k))) result = tt_srdhm(result, mults[k]);
    }
    return a == 0 ? INT32_MAX : result;
}

static int32_t one_over_one_plus(int32_t a) {
    int64_t s = (int64_t)a + INT32_MAX;
    int32_t half = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
    int32_t x = wadd(1515870810, tt_srdhm(half, -1010580540));
    for (int i = 0; i < 3; ++i) {
        int32_t hx = tt_srdhm(half, x);
        int32_t one_minus = wsub(1 << 29, hx);
        x = wadd(x, sat_shl(tt_srdhm(x, one_minus), 2));
    }
    return sat_shl(x, 1);
}

static int32_t logistic_q4_27(int32_t a) {
    if (a == 0) return 1 << 30;
    int32_t absa = a > 0 ? a : -a;
    int32_t pos = one_over_one_plus(exp_neg(-absa));
    return a > 0 ? pos : wsub(INT32_MAX, pos);
}

void tt_logistic_s8(const int8_t *x, int n, int32_t x_zero, int32_t mult, int32_t shift, int32_t radius,
                    int8_t *y) {
    for (int i = 0; i < n; ++i) {
        int32_t v = (int32_t)x[i] - x_zero;
        if (v <= -radius) {
            y[i] = -128;
        } else if (v >= radius) {
            y[i] = 127;
        } else {
            int32_t q0 = logistic_q4_27(tt_mbqm(v, mult, shift));
            y[i] = (int8_t)tt_clamp32(tt_rdbpot(q0, 23) - 128, -128, 127);
        }
    }
}

void tt_logistic_bwd_f32(const float *g, const int8_t *y, int n, float y_scale, int32_t y_zero, float *dx) {
    for (int i = 0; i < n; ++i) {
        float s = (float)((int32_t)y[i] - y_zero) * y_scale;
        dx[i] = g[i] * (s * (1.0f - s));
    }
}
