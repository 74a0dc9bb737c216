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

/* ---- fast paths: register-blocked sums over an int8 -> float converted block of the saved input ----
 * The input block (4 channels x every position, (x - x_zero) as float) is converted once and reused by every
 * output (1x1) or tap (depthwise). Each element's sum is still the sequential raster-order sum of the contract
 * (blocks interleave independent elements only, never the terms of one). The elements are then updated in
 * block order, which equals memory order except for the rng draws: so these paths serve the nearest and
 * shadow rules and the split sums (tt_*_wgrad_f32); the stochastic rule keeps the memory-order loops below.
 * Stack: the block, 4 * positions floats, positions <= TT_WG_MAX_POS = 64 (1 KB): maps up to 8x8. */
#define TT_WG_MAX_POS 64

/* Where finished sums go: s != NULL: s[idx] = sum (split kernels); else the update rule on wt[widx]. */
typedef struct {
    float *s;
    int8_t *wt;
    float *sh;
    int rule;
} wg_sink;

static inline void wg_emit(const wg_sink *k, size_t idx, size_t widx, float sum, float f) {
    if (k->s) k->s[idx] = sum;
    else k->wt[widx] = update_one(k->wt[widx], sum * f, k->rule, 0, k->sh ? k->sh + idx : 0);
}

/* xf[p][j] = f32(x[p * x_c + j] - x_zero) for j < n, 0 for n <= j < 4; p < np. */
static void wg_convert(const int8_t *x, int np, int x_c, int n, int32_t x_zero, float *xf) {
    for (int p = 0; p < np; p++, x += x_c, xf += 4)
        for (int j = 0; j < 4; j++) xf[j] = j < n ? (float)(x[j] - x_zero) : 0.0f;
}

/* r[oo][j] = sum_{p asc} g[p * gs + oo] * xf[p][j]: 4 x 4 sums in registers, per p 8 loads and 32 VMUL/VADD. */
static inline void wg_block4x4(const float *gp, int gs, const float *xp, int np, float r[4][4]) {
    float a00 = 0.0f, a01 = 0.0f, a02 = 0.0f, a03 = 0.0f, a10 = 0.0f, a11 = 0.0f, a12 = 0.0f, a13 = 0.0f;
    float a20 = 0.0f, a21 = 0.0f, a22 = 0.0f, a23 = 0.0f, a30 = 0.0f, a31 = 0.0f, a32 = 0.0f, a33 = 0.0f;
    for (int p = 0; p < np; p++, gp += gs, xp += 4) {
        const float g0 = gp[0], g1 = gp[1], g2 = gp[2], g3 = gp[3];
        const float x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
        a00 = a00 + g0 * x0;
        a01 = a01 + g0 * x1;
        a02 = a02 + g0 * x2;
        a03 = a03 + g0 * x3;
        a10 = a10 + g1 * x0;
        a11 = a11 + g1 * x1;
        a12 = a12 + g1 * x2;
        a13 = a13 + g1 * x3;
        a20 = a20 + g2 * x0;
        a21 = a21 + g2 * x1;
        a22 = a22 + g2 * x2;
        a23 = a23 + g2 * x3;
        a30 = a30 + g3 * x0;
        a31 = a31 + g3 * x1;
        a32 = a32 + g3 * x2;
        a33 = a33 + g3 * x3;
    }
    r[0][0] = a00; r[0][1] = a01; r[0][2] = a02; r[0][3] = a03;
    r[1][0] = a10; r[1][1] = a11; r[1][2] = a12; r[1][3] = a13;
    r[2][0] = a20; r[2][1] = a21; r[2][2] = a22; r[2][3] = a23;
    r[3][0] = a30; r[3][1] = a31; r[3][2] = a32; r[3][3] = a33;
}

/* 1x1: S[o][i] = sum_{p asc} g[p][o] * f32(x[p][i] - x_zero); blocks of 4 outputs x 4 input channels. */
static __attribute__((noinline)) void wg1x1_fast(const float *g, const int8_t *x, int np, int x_c, int32_t x_zero,
                                                 int co, int ci, int k_in, const float *q, float neg_lr,
                                                 const wg_sink *sink) {
    float xf[4 * np] __attribute__((aligned(8)));
    for (int i = 0; i < k_in; i += 4) {
        const int n = k_in - i < 4 ? k_in - i : 4;
        wg_convert(x + i, np, x_c, n, x_zero, xf);
        for (int o = 0; o < co; o += 4) {
            const int no = co - o < 4 ? co - o : 4;
            float r[4][4];
            int sh = 0; /* r row of output o */
            if (no == 4) {
                wg_block4x4(g + o, co, xf, np, r);
            } else if (co >= 4) { /* last outputs: the block of the last four columns (earlier ones recomputed) */
                sh = 4 - no;
                wg_block4x4(g + co - 4, co, xf, np, r);
            } else { /* fewer than four outputs in all */
                for (int oo = 0; oo < no; oo++)
                    for (int j = 0; j < 4; j++) {
                        float v = 0.0f;
                        for (int p = 0; p < np; p++) v = v + g[(size_t)p * co + o + oo] * xf[4 * p + j];
                        r[oo][j] = v;
                    }
            }
            for (int oo = 0; oo < no; oo++) {
                const float f = sink->s ? 0.0f : neg_lr * q[o + oo];
                for (int j = 0; j < n; j++)
                    wg_emit(sink, (size_t)(o + oo) * k_in + i + j, (size_t)(o + oo) * ci + i + j, r[oo + sh][j], f);
            }
        }
    }
}


/* Sums of one tap (a, b) for 4 channels over its valid output rectangle; d1..d3: g offsets of channels 1..3. */
static inline __attribute__((always_inline)) void wgdw_tap(const float *g, const float *xf, int w, int c, int wo,
                                                           int stride, int pad, int a, int b, int oh0, int oh1,
                                                           int ow0, int ow1, int d1, int d2, int d3, float *r) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (int oh = oh0; oh < oh1; oh++) {
        const float *gp = g + ((size_t)oh * wo + ow0) * c;
        const float *xp = xf + ((size_t)(oh * stride - pad + a) * w + ow0 * stride - pad + b) * 4;
        for (int ow = ow0; ow < ow1; ow++, gp += c, xp += 4 * stride) {
            s0 = s0 + gp[0] * xp[0];
            s1 = s1 + gp[d1] * xp[1];
            s2 = s2 + gp[d2] * xp[2];
            s3 = s3 + gp[d3] * xp[3];
        }
    }
    r[0] = s0;
    r[1] = s1;
    r[2] = s2;
    r[3] = s3;
}

/* Depthwise: S[a][b][c] = sum_{valid (oh, ow) raster asc} g[oh][ow][c] * f32(x[ih][iw][c] - x_zero); per block of
 * 4 channels and per tap, over the tap's valid output rectangle (padded taps add nothing). The last block is
 * the last four channels (sums of channels already done are recomputed, not emitted again). */
static __attribute__((noinline)) void wgdw_fast(const float *g, const int8_t *x, int h, int w, int x_c,
                                                int32_t x_zero, int c, int kh, int kw, int k_in, int stride, int pad,
                                                const float *q, float neg_lr, const wg_sink *sink) {
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    float xf[4 * h * w] __attribute__((aligned(8)));
    for (int c0 = 0; c0 < k_in; c0 += 4) {
        const int cb = k_in >= 4 && c0 + 4 > k_in ? k_in - 4 : c0; /* block start */
        const int n = k_in - cb < 4 ? k_in - cb : 4;
        const int d1 = n > 1 ? 1 : 0, d2 = n > 2 ? 2 : d1, d3 = n > 3 ? 3 : d2;
        wg_convert(x + cb, h * w, x_c, n, x_zero, xf);
        for (int a = 0; a < kh; a++) {
            int oh0 = 0, oh1 = ho;
            while (oh0 < oh1 && oh0 * stride - pad + a < 0) oh0++;
            while (oh1 > oh0 && (oh1 - 1) * stride - pad + a >= h) oh1--;
            for (int b = 0; b < kw; b++) {
                int ow0 = 0, ow1 = wo;
                while (ow0 < ow1 && ow0 * stride - pad + b < 0) ow0++;
                while (ow1 > ow0 && (ow1 - 1) * stride - pad + b >= w) ow1--;
                float r[4];
                if (n == 4) wgdw_tap(g + cb, xf, w, c, wo, stride, pad, a, b, oh0, oh1, ow0, ow1, 1, 2, 3, r);
                else wgdw_tap(g + cb, xf, w, c, wo, stride, pad, a, b, oh0, oh1, ow0, ow1, d1, d2, d3, r);
                const size_t base = ((size_t)a * kw + b);
                for (int j = c0 - cb; j < n; j++)
                    wg_emit(sink, base * k_in + cb + j, base * c + cb + j, r[j], sink->s ? 0.0f : neg_lr * q[cb + j]);
            }
        }
    }
}

/* 1x1 with one output channel (the channel-wise fused block backward updates pw1 one row at a time): four sums
 * in registers per block of four input channels, x converted inline (no block buffer: each input element serves
 * one MAC). Elements finish in memory order (i ascending), so every rule is served, stochastic included. Any
 * number of positions. */
static __attribute__((noinline)) void wg1x1_row(const float *g, const int8_t *x, int np, int x_c, int32_t x_zero,
                                                int k_in, float *s, int8_t *wt, float k, int rule, uint32_t *rng,
                                                float *sh) {
    for (int i = 0; i < k_in; i += 4) {
        const int n = k_in - i < 4 ? k_in - i : 4;
        float r[4];
        if (n == 4) {
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            const int8_t *xp = x + i;
            for (int p = 0; p < np; p++, xp += x_c) {
                const float gv = g[p];
                s0 = s0 + gv * (float)(xp[0] - x_zero);
                s1 = s1 + gv * (float)(xp[1] - x_zero);
                s2 = s2 + gv * (float)(xp[2] - x_zero);
                s3 = s3 + gv * (float)(xp[3] - x_zero);
            }
            r[0] = s0;
            r[1] = s1;
            r[2] = s2;
            r[3] = s3;
        } else {
            for (int j = 0; j < n; j++) {
                float v = 0.0f;
                for (int p = 0; p < np; p++) v = v + g[p] * (float)(x[(size_t)p * x_c + i + j] - x_zero);
                r[j] = v;
            }
        }
        if (s) {
            for (int j = 0; j < n; j++) s[i + j] = r[j];
        } else {
            update_run(wt + i, sh, r, n, k, rule, rng);
            if (sh) sh += n;
        }
    }
}

void tt_conv2d_wgrad_update(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int8_t *wt,
                            int co, int kh, int kw, int ci, int k_in, const float *q, float neg_lr, int rule,
                            uint32_t *rng, float *shadow, int stride, int pad) {
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    float *sh = rule == TT_RULE_SHADOW ? shadow : 0;
    if (co == 1 && kh == 1 && kw == 1 && stride == 1 && pad == 0) {
        wg1x1_row(g, x, h * w, x_c, x_zero, k_in, 0, wt, neg_lr * q[0], rule, rng, sh);
        return;
    }
    if (rule != TT_RULE_STOCHASTIC && kh == 1 && kw == 1 && stride == 1 && pad == 0 && h * w <= TT_WG_MAX_POS) {
        const wg_sink sink = {0, wt, sh, rule};
        wg1x1_fast(g, x, h * w, x_c, x_zero, co, ci, k_in, q, neg_lr, &sink);
        return;
    }
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
    if (rule != TT_RULE_STOCHASTIC && h * w <= TT_WG_MAX_POS && ho > 0 && wo > 0) {
        const wg_sink sink = {0, wt, sh, rule};
        wgdw_fast(g, x, h, w, x_c, x_zero, c, kh, kw, k_in, stride, pad, q, neg_lr, &sink);
        return;
    }
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
    if (co == 1 && kernel == 1 && stride == 1 && pad == 0) {
        wg1x1_row(g, x, h * w, x_c, x_zero, k_in, s, 0, 0.0f, 0, 0, 0);
        return;
    }
    if (kernel == 1 && stride == 1 && pad == 0 && h * w <= TT_WG_MAX_POS) {
        const wg_sink sink = {s, 0, 0, 0};
        wg1x1_fast(g, x, h * w, x_c, x_zero, co, k_in, k_in, 0, 0.0f, &sink);
        return;
    }
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
    if (h * w <= TT_WG_MAX_POS && ho > 0 && wo > 0) {
        const wg_sink sink = {s, 0, 0, 0};
        wgdw_fast(g, x, h, w, x_c, x_zero, c, kernel, kernel, k_in, stride, pad, 0, 0.0f, &sink);
        return;
    }
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
