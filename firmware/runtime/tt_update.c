/* Weight gradient + QAS-SGD update kernels (docs/numerics.md, "Weight gradient sums", "Update").
 * Elements are summed and updated in device memory order (regular: o, kh, kw, i < k_in; depthwise:
 * kh, kw, c < k_in), four independent elements at a time, each sum over output positions in raster order. */
#include "tt_kernels.h"
#include "tt_math.h"

uint32_t tt_rng_state = 0x2545F491u;

uint32_t tt_xorshift32(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static inline int8_t update_one(int8_t w, float delta, int rule, uint32_t *rng, float *sh) {
    if (rule == TT_RULE_SHADOW) {
        const float v = *sh + delta;
        *sh = v;
        return (int8_t)tt_clampi((int32_t)tt_rne(tt_clampf(v, 256.0f)), -127, 127);
    }
    float d = tt_clampf(delta, 256.0f);
    if (rule == TT_RULE_STOCHASTIC) {
        const float u = (float)(tt_xorshift32(rng) >> 8) * 5.9604644775390625e-8f; /* 2^-24 */
        const float v = d + u;
        d = tt_rne(v);
        if (d > v) d -= 1.0f; /* floor(v) */
    } else {
        d = tt_rne(d);
    }
    return (int8_t)tt_clampi((int32_t)w + (int32_t)d, -127, 127);
}

/* Update n consecutive elements (n <= 4) of wt / shadow from sums s[] and factor k. */
static inline void update_run(int8_t *wt, float *sh, const float *s, int n, float k, int rule, uint32_t *rng) {
    for (int j = 0; j < n; j++) wt[j] = update_one(wt[j], s[j] * k, rule, rng, sh ? sh + j : 0);
}

/* Sums of n <= 4 consecutive updated elements: regular conv (o, a, b, i..i+n). */
static inline void conv_sums(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int co,
                             int ho, int wo, int o, int a, int b, int i, int n, int stride, int pad, float *s) {
    s[0] = s[1] = s[2] = s[3] = 0.0f;
    for (int oh = 0; oh < ho; oh++) {
        const int ih = oh * stride - pad + a;
        if (ih < 0 || ih >= h) continue;
        for (int ow = 0; ow < wo; ow++) {
            const int iw = ow * stride - pad + b;
            if (iw < 0 || iw >= w) continue;
            const float gv = g[((size_t)oh * wo + ow) * co + o];
            const int8_t *xp = x + ((size_t)ih * w + iw) * x_c + i;
            if (n == 4) {
                s[0] = s[0] + gv * (float)(xp[0] - x_zero);
                s[1] = s[1] + gv * (float)(xp[1] - x_zero);
                s[2] = s[2] + gv * (float)(xp[2] - x_zero);
                s[3] = s[3] + gv * (float)(xp[3] - x_zero);
            } else {
                for (int j = 0; j < n; j++) s[j] = s[j] + gv * (float)(xp[j] - x_zero);
            }
        }
    }
}

/* Sums of n <= 4 consecutive updated elements: depthwise (a, b, c..c+n). */
static inline void dw_sums(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int c,
                           int ho, int wo, int a, int b, int i, int n, int stride, int pad, float *s) {
    s[0] = s[1] = s[2] = s[3] = 0.0f;
    for (int oh = 0; oh < ho; oh++) {
        const int ih = oh * stride - pad + a;
        if (ih < 0 || ih >= h) continue;
        for (int ow = 0; ow < wo; ow++) {
            const int iw = ow * stride - pad + b;
            if (iw < 0 || iw >= w) continue;
            const float *gp = g + ((size_t)oh * wo + ow) * c + i;
            const int8_t *xp = x + ((size_t)ih * w + iw) * x_c + i;
            if (n == 4) {
                s[0] = s[0] + gp[0] * (float)(xp[0] - x_zero);
                s[1] = s[1] + gp[1] * (float)(xp[1] - x_zero);
                s[2] = s[2] + gp[2] * (float)(xp[2] - x_zero);
                s[3] = s[3] + gp[3] * (float)(xp[3] - x_zero);
            } else {
                for (int j = 0; j < n; j++) s[j] = s[j] + gp[j] * (float)(xp[j] - x_zero);
            }
        }
    }
}

void tt_conv2d_wgrad_update(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int8_t *wt,
                            int co, int kh, int kw, int ci, int k_in, const float *q, float neg_lr, int rule,
                            uint32_t *rng, float *shadow, int stride, int pad) {
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    float *sh = rule == TT_RULE_SHADOW ? shadow : 0;
    float s[4];
    for (int o = 0; o < co; o++) {
        const float k = neg_lr * q[o];
        for (int a = 0; a < kh; a++) {
            for (int b = 0; b < kw; b++) {
                int8_t *wrow = wt + (((size_t)o * kh + a) * kw + b) * ci;
                for (int i = 0; i < k_in; i += 4) {
                    const int n = k_in - i < 4 ? k_in - i : 4;
                    conv_sums(g, x, h, w, x_c, x_zero, co, ho, wo, o, a, b, i, n, stride, pad, s);
                    update_run(wrow + i, sh, s, n, k, rule, rng);
                    if (sh) sh += n;
                }
            }
        }
    }
}

void tt_dwconv2d_wgrad_update(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int8_t *wt,
                              int kh, int kw, int c, int k_in, const float *q, float neg_lr, int rule,
                              uint32_t *rng, float *shadow, int stride, int pad) {
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    float *sh = rule == TT_RULE_SHADOW ? shadow : 0;
    float s[4];
    for (int a = 0; a < kh; a++) {
        for (int b = 0; b < kw; b++) {
            int8_t *wrow = wt + ((size_t)a * kw + b) * c;
            for (int i = 0; i < k_in; i += 4) {
                const int n = k_in - i < 4 ? k_in - i : 4;
                dw_sums(g, x, h, w, x_c, x_zero, c, ho, wo, a, b, i, n, stride, pad, s);
                for (int j = 0; j < n; j++)
                    wrow[i + j] = update_one(wrow[i + j], s[j] * (neg_lr * q[i + j]), rule, rng, sh ? sh + j : 0);
                if (sh) sh += n;
            }
        }
    }
}

/* ---- split (unfused) kernels: the same sums and updates in two steps (tinytrain/kernels/memory_ops.py) ---- */

void tt_conv2d_wgrad_f32(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int co,
                         int kernel, int k_in, int stride, int pad, float *s) {
    const int ho = (h + 2 * pad - kernel) / stride + 1, wo = (w + 2 * pad - kernel) / stride + 1;
    float r[4];
    for (int o = 0; o < co; o++)
        for (int a = 0; a < kernel; a++)
            for (int b = 0; b < kernel; b++)
                for (int i = 0; i < k_in; i += 4) {
                    const int n = k_in - i < 4 ? k_in - i : 4;
                    conv_sums(g, x, h, w, x_c, x_zero, co, ho, wo, o, a, b, i, n, stride, pad, r);
                    for (int j = 0; j < n; j++) *s++ = r[j];
                }
}

void tt_dwconv2d_wgrad_f32(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int c,
                           int kernel, int k_in, int stride, int pad, float *s) {
    const int ho = (h + 2 * pad - kernel) / stride + 1, wo = (w + 2 * pad - kernel) / stride + 1;
    float r[4];
    for (int a = 0; a < kernel; a++)
        for (int b = 0; b < kernel; b++)
            for (int i = 0; i < k_in; i += 4) {
                const int n = k_in - i < 4 ? k_in - i : 4;
                dw_sums(g, x, h, w, x_c, x_zero, c, ho, wo, a, b, i, n, stride, pad, r);
                for (int j = 0; j < n; j++) *s++ = r[j];
            }
}

void tt_bias_grad_f32(const float *g, int p, int co, float *s) {
    for (int o = 0; o < co; o++) {
        float v = 0.0f;
        for (int j = 0; j < p; j++) v = v + g[(size_t)j * co + o];
        s[o] = v;
    }
}

void tt_conv2d_weight_update(const float *s, int8_t *wt, int co, int kh, int kw, int ci, int k_in, const float *q,
                             float neg_lr, int rule, uint32_t *rng, float *shadow) {
    float *sh = rule == TT_RULE_SHADOW ? shadow : 0;
    for (int o = 0; o < co; o++) {
        const float k = neg_lr * q[o];
        for (int ab = 0; ab < kh * kw; ab++) {
            int8_t *wrow = wt + ((size_t)o * kh * kw + ab) * ci;
            for (int i = 0; i < k_in; i++, s++) {
                wrow[i] = update_one(wrow[i], *s * k, rule, rng, sh);
                if (sh) sh++;
            }
        }
    }
}

void tt_dwconv2d_weight_update(const float *s, int8_t *wt, int kh, int kw, int c, int k_in, const float *q,
                               float neg_lr, int rule, uint32_t *rng, float *shadow) {
    float *sh = rule == TT_RULE_SHADOW ? shadow : 0;
    for (int ab = 0; ab < kh * kw; ab++) {
        int8_t *wrow = wt + (size_t)ab * c;
        for (int i = 0; i < k_in; i++, s++) {
            wrow[i] = update_one(wrow[i], *s * (neg_lr * q[i]), rule, rng, sh);
            if (sh) sh++;
        }
    }
}

void tt_bias_update(const float *s, int co, int32_t *bias, const float *qb, float neg_lr) {
    for (int o = 0; o < co; o++) {
        const int64_t v = (int64_t)bias[o] + (int64_t)tt_rne(tt_clampf(s[o] * (neg_lr * qb[o]), 4194304.0f));
        bias[o] = (int32_t)(v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : v));
    }
}

void tt_bias_grad_update(const float *g, int p, int co, int32_t *bias, const float *qb, float neg_lr) {
    for (int o = 0; o < co; o++) {
        float s = 0.0f;
        for (int j = 0; j < p; j++) s = s + g[(size_t)j * co + o];
        const float k = neg_lr * qb[o];
        const int64_t v = (int64_t)bias[o] + (int64_t)tt_rne(tt_clampf(s * k, 4194304.0f));
        bias[o] = (int32_t)(v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : v));
    }
}
